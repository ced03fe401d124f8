"""Parsing raw text against parsing the gold words, for trained models.

For each ``TREEBANK=MODEL_DIR`` given: `unnparse evaluate` on the test split with the gold words (accuracies), then
with `--raw-text` (the test file's text parsed from scratch, scored by F1 over the text as in the CoNLL 2018 shared
task) with the model's trained tokenizer and with the rule-based one. Models without a trained tokenizer are
evaluated with the rules only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"
EXE = str(ROOT / ".venv" / "bin" / "unnparse")


def evaluate(model: str, treebank: str, *extra: str) -> dict:
    cmd = [EXE, "evaluate", "--model", model, "--treebank", treebank, "--data-dir", str(SHARED), "--json"]
    cmd += ["--device", "cpu", *extra]
    print("+", " ".join(cmd), flush=True)
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="TREEBANK=MODEL_DIR[=LABEL]")
    ap.add_argument("--section", default="raw-text")
    args = ap.parse_args()
    rows = []
    for spec in args.models:
        treebank, model, *label = spec.split("=")
        name = label[0] if label else Path(model).name
        has_tokenizer = "tokenizer" in json.loads((Path(model) / "config.json").read_text())
        gold = evaluate(model, treebank)
        rows.append((treebank, name, "gold words", None, gold["uas"], gold["las"], gold["clas"], gold.get("upos")))
        for tokenizer in ("model", "rules") if has_tokenizer else ("rules",):
            raw = evaluate(model, treebank, "--raw-text", "--tokenizer", tokenizer)
            f1 = {k: v["f1"] for k, v in raw["scores"].items()}
            label = "trained tokenizer" if tokenizer == "model" else "rules"
            rows.append((treebank, name, label, f1, raw["uas"], raw["las"], raw["clas"], raw.get("upos")))
            print(treebank, name, tokenizer, f1, flush=True)
    lines = [
        f"{measured_on()}: test split. *gold words*: the parser given the gold tokenization (accuracies); *trained "
        "tokenizer* and *rules*: `unnparse evaluate --raw-text`, the text of the test file (sentences joined by "
        "spaces, no paragraph breaks) split, tokenized and parsed from scratch, every score an F1 over the text as "
        "in the CoNLL 2018 shared task.",
        "",
        f"Command: `{command_line()}`",
        "",
        "| treebank | model | input | tokens | sentences | words | UPOS | UAS | LAS | CLAS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for treebank, name, source, f1, uas, las, clas, upos in rows:
        seg = ["–", "–", "–"] if f1 is None else [f"{f1[k]:.2f}" for k in ("tokens", "sentences", "words")]
        tag = "–" if upos is None else f"{upos:.2f}"
        cells = [treebank, name, source, *seg, tag, f"{uas:.2f}", f"{las:.2f}", f"{clas:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    write_section(args.section, "Parsing raw text", "\n".join(lines))


if __name__ == "__main__":
    main()
