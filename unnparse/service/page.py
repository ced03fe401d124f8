"""The page ``unnparse serve`` shows at ``/``: type or paste text, choose a model, see the trees and the CoNLL-U
(copyable). Self-contained: its style and script are inline, and it asks nothing of any server but its own
(``GET models`` and ``POST parse``, relative to the page, so that it also works behind a path prefix)."""

from __future__ import annotations

from unnparse.parser.tree_drawing import tree_css

__all__ = ["page_html"]

_EXAMPLE = "The old man saw a small dog in the park. She cannot read the letter that her neighbor wrote."

_STYLE = """
body{font-family:sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;color:#222}
h1{font-size:1.3em;margin:0 0 .6em}h1 span{font-weight:normal;color:#666;font-size:.8em}
textarea{width:100%;box-sizing:border-box;font:14px monospace;padding:.5em}
.controls{display:flex;flex-wrap:wrap;gap:1em;align-items:center;margin:.5em 0 1em}
button{font-size:1em;padding:.3em 1.2em}
#status{color:#555;min-height:1.2em}#status.error{color:#b00}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:13px}
details{margin-top:1em}
"""

_SCRIPT = """
const $ = (id) => document.getElementById(id);
function say(text, error) { $("status").textContent = text; $("status").className = error ? "error" : ""; }
async function loadModels() {
  try {
    const response = await fetch("models");
    for (const m of await response.json()) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.treebank && m.treebank !== m.name ? `${m.name} (${m.treebank})` : m.name;
      $("model").append(option);
    }
  } catch (err) { say(`cannot list the models: ${err}`, true); }
}
async function parse(event) {
  event.preventDefault();
  say("parsing\u2026");
  $("parse").disabled = true;
  const request = {
    input: $("input").value, model: $("model").value || null, input_format: $("input-format").value,
    output_format: "html", also: ["conllu"], marginals: $("marginals").checked,
  };
  try {
    const response = await fetch("parse", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(request),
    });
    const answer = await response.json();
    if (!response.ok) { say(answer.detail || response.statusText, true); return; }
    const drawn = new DOMParser().parseFromString(answer.output, "text/html");
    $("trees").replaceChildren(...drawn.body.children);
    $("conllu").textContent = answer.outputs.conllu;
    $("conllu-box").hidden = answer.sentences === 0;
    const notes = answer.warnings.length ? ` \u2014 ${answer.warnings.join("; ")}` : "";
    say(`${answer.sentences} sentence(s), ${answer.words} word(s), parsed by ${answer.model}${notes}`);
  } catch (err) {
    say(`the service did not answer: ${err}`, true);
  } finally {
    $("parse").disabled = false;
  }
}
async function copyConllu() {
  const text = $("conllu").textContent;
  try { await navigator.clipboard.writeText(text); say("CoNLL-U copied"); }
  catch (err) {
    const range = document.createRange(); range.selectNodeContents($("conllu"));
    const selection = getSelection(); selection.removeAllRanges(); selection.addRange(range);
    say("CoNLL-U selected: copy it with Ctrl+C");
  }
}
$("form").addEventListener("submit", parse);
$("input").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) parse(e); });
$("copy").addEventListener("click", copyConllu);
loadModels();
"""


def page_html() -> str:
    """The page, as one self-contained HTML document."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>unnparse</title><style>{_STYLE}{tree_css()}</style></head><body>
<h1>unnparse <span>dependency parsing with undirected neural networks</span></h1>
<form id="form">
<textarea id="input" rows="5" spellcheck="false" aria-label="Text to parse">{_EXAMPLE}</textarea>
<div class="controls">
<label>Model <select id="model"></select></label>
<label>Input <select id="input-format"><option value="text">text</option>
<option value="tokenized">tokenized (one sentence per line)</option>
<option value="conllu">CoNLL-U</option></select></label>
<label><input type="checkbox" id="marginals"> arc probabilities</label>
<button type="submit" id="parse">Parse</button> <small>(Ctrl+Enter)</small>
</div>
</form>
<p id="status" role="status"></p>
<div id="trees"></div>
<details id="conllu-box" hidden><summary>CoNLL-U</summary><button type="button" id="copy">Copy</button>
<pre id="conllu"></pre></details>
<script>{_SCRIPT}</script>
</body></html>
"""
