"""Output formats of ``unnparse parse``: CoNLL-U, JSON lines, a dependency tree drawn in the terminal, SVG drawings
and an HTML page of them (:mod:`unnparse.parser.tree_drawing`)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from unnparse.conllu.sentence import Sentence
from unnparse.parser.tree_drawing import html_page_end, html_page_start, html_section, sentence_svg

if TYPE_CHECKING:
    from unnparse.parser.predictor import ParsedSentence

__all__ = [
    "OUTPUT_FORMATS",
    "STREAMABLE_FORMATS",
    "conllu_with_probs",
    "document_end",
    "document_start",
    "draw_tree",
    "render",
    "to_json_line",
]

#: The formats :func:`render` writes: CoNLL-U, JSON lines, a tree drawn for the terminal, one SVG drawing per
#: sentence (each a standalone ``<svg>`` element, one per line), an HTML page of drawings.
OUTPUT_FORMATS = ("conllu", "json", "tree", "svg", "html")
#: Those whose records can be split into shards and merged back (``--shard``, ``--devices``).
STREAMABLE_FORMATS = ("conllu", "json", "tree")


def render(parsed: ParsedSentence, fmt: str) -> str:
    """``parsed`` as ``unnparse parse`` writes it, ending with a newline: ``conllu`` (with ``ArcProb`` in MISC when it
    has marginals, see :func:`conllu_with_probs`), ``json`` (:func:`to_json_line`), ``tree`` (:func:`draw_tree`,
    followed by an empty line), ``svg`` (one ``<svg>`` element) or ``html`` (a section of the page that
    :func:`document_start` and :func:`document_end` open and close).

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "conllu":
        if parsed.marginals is not None:
            return conllu_with_probs(parsed.sentence, parsed.marginals)
        return parsed.sentence.to_conllu()
    if fmt == "json":
        return to_json_line(parsed.sentence, parsed.marginals) + "\n"
    if fmt == "tree":
        return draw_tree(parsed.sentence, parsed.marginals) + "\n"
    if fmt == "svg":
        return sentence_svg(parsed.sentence, parsed.marginals) + "\n"
    if fmt == "html":
        return html_section(parsed.sentence, parsed.marginals)
    raise ValueError(f"unknown output format {fmt!r}: expected one of {', '.join(OUTPUT_FORMATS)}")


def document_start(fmt: str) -> str:
    """What an output of format ``fmt`` begins with, before its first sentence (the head of an HTML page)."""
    return html_page_start() if fmt == "html" else ""


def document_end(fmt: str) -> str:
    """What an output of format ``fmt`` ends with, after its last sentence."""
    return html_page_end() if fmt == "html" else ""


def conllu_with_probs(sentence: Sentence, marginals: Sequence[Sequence[float]]) -> str:
    """CoNLL-U with ``ArcProb=p`` (the probability of the chosen arc, 4 decimals) in MISC of each word;
    ``marginals[d - 1][h]`` is P(h → d)."""
    s = sentence.copy()
    heads = s.heads or []
    for tok, h, row in zip(s.word_tokens, heads, marginals, strict=True):
        misc = dict(tok["misc"] or {})
        misc["ArcProb"] = f"{row[h]:.4f}"
        tok["misc"] = misc
    return s.to_conllu()


def to_json_line(sentence: Sentence, marginals: Sequence[Sequence[float]] | None = None) -> str:
    """One JSON object (one line): sent_id, text, words with UPOS/XPOS/FEATS/head/deprel, optionally the marginals."""
    heads = sentence.heads or [0] * len(sentence)
    rels = sentence.deprels or ["_"] * len(sentence)
    obj = {
        "sent_id": sentence.sent_id,
        "text": sentence.text,
        "words": [
            {"id": i + 1, "form": f, "upos": u, "xpos": x, "feats": t, "head": h, "deprel": r}
            for i, (f, u, x, t, h, r) in enumerate(
                zip(
                    sentence.words,
                    sentence.upos,
                    sentence.column("xpos"),
                    sentence.column("feats"),
                    heads,
                    rels,
                    strict=True,
                )
            )
        ],
    }
    if marginals is not None:
        obj["marginals"] = [list(row) for row in marginals]  # row d-1: P(h -> d) for heads h = 0..n
    return json.dumps(obj, ensure_ascii=False)


def _width(text: str) -> int:
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def draw_tree(sentence: Sentence, marginals: Sequence[Sequence[float]] | None = None) -> str:
    """Draw the tree with one word per row and arcs as brackets on the left (head ─┐ … ►dependent)."""
    words = sentence.words
    n = len(words)
    heads = sentence.heads or [0] * n
    rels = sentence.deprels or ["_"] * n
    arcs = sorted(((h, d) for d, h in enumerate(heads, start=1) if h != 0), key=lambda a: (abs(a[0] - a[1]), min(a)))
    lanes: list[list[tuple[int, int]]] = []  # arcs per lane (lane 0 is nearest to the words)
    lane_of: dict[tuple[int, int], int] = {}
    for h, d in arcs:
        lo, hi = min(h, d), max(h, d)
        for k, lane in enumerate(lanes):
            if all(max(lo, min(a)) > min(hi, max(a)) for a in lane):  # no overlap, touching ends excluded
                lane.append((h, d))
                lane_of[(h, d)] = k
                break
        else:
            lanes.append([(h, d)])
            lane_of[(h, d)] = len(lanes) - 1
    width = len(lanes)
    grid = [[" "] * (2 * width + 1) for _ in range(n + 1)]
    for (h, d), k in lane_of.items():
        col = 2 * (width - 1 - k)
        lo, hi = min(h, d), max(h, d)
        for row in range(lo, hi + 1):
            ch = grid[row][col]
            if row == h:
                grid[row][col] = "┌" if h < d else "└"
                if ch not in (" ",):
                    grid[row][col] = "├"
            elif row == d:
                grid[row][col] = "└" if h < d else "┌"
                if ch not in (" ",):
                    grid[row][col] = "├"
            else:
                grid[row][col] = "│" if ch in (" ", "│") else ch
        for row in (h, d):
            for c in range(col + 1, 2 * width + 1):
                if grid[row][c] == " ":
                    grid[row][c] = "─"
        grid[d][2 * width] = "►"
    lines = []
    if sentence.text:
        lines.append(f"# {sentence.text}")
    form_width = max((_width(w) for w in words), default=0)
    for i, (w, h, r) in enumerate(zip(words, heads, rels, strict=True), start=1):
        prefix = "".join(grid[i])
        if h == 0:
            prefix = prefix[:-1] + "►"
        label = "root" if h == 0 else r
        prob = ""
        if marginals is not None:
            prob = f"  p={marginals[i - 1][h]:.2f}"
        pad = " " * (form_width - _width(w))
        lines.append(f"{prefix} {i:>3} {w}{pad}  {label}{prob}")
    return "\n".join(lines) + "\n"
