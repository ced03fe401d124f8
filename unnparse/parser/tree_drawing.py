"""Dependency trees to look at: SVG drawings (arcs above the words, their labels on them, UPOS under the words, the
root marked) and a self-contained HTML page of many sentences. With marginals, an arc's width and opacity show how
sure the parser is of it, and hovering an arc names the most likely other head.

>>> from unnparse.conllu import Sentence
>>> s = Sentence.from_words(["Dogs", "bark"]).with_predictions([2, 0], ["nsubj", "root"])
>>> svg = sentence_svg(s)
>>> svg.count('class="arc"'), 'nsubj' in svg, svg.startswith("<svg")
(1, True, True)
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from unnparse.conllu.sentence import Sentence

__all__ = ["html_page_end", "html_page_start", "html_section", "sentence_svg", "tree_css"]

_CHAR = 8.4  # width of a character of the 14 px font
_PAD = 18  # space between two words
_LEVEL = 22  # height of one level of arcs
_TOP = 24  # above the highest arc: the label of the root
_WORDS = 20  # the line of the words (below the arcs), and of the UPOS below it


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def _levels(heads: Sequence[int]) -> list[int]:
    """The drawing level of each word's arc (1 for the shortest): an arc sits above every arc inside its span."""
    n = len(heads)
    spans = sorted(
        ((min(h, d), max(h, d), d) for d, h in enumerate(heads, start=1) if h != 0), key=lambda a: a[1] - a[0]
    )
    level = [0] * (n + 1)
    for lo, hi, d in spans:
        inner = [level[e] for lo2, hi2, e in spans if lo <= lo2 and hi2 <= hi and (lo2, hi2) != (lo, hi)]
        level[d] = 1 + max(inner, default=0)
    return level[1:]


def sentence_svg(sentence: Sentence, marginals: Sequence[Sequence[float]] | None = None) -> str:
    """One sentence as a standalone SVG element: its words on a line, each arc from head to dependent drawn above
    them (an arrow at the dependent, the relation on the arc), UPOS under each word, the root marked by a line
    from the top. ``marginals[d - 1][h]`` (P(h → d)) sets each arc's width and opacity and its hover text."""
    words = sentence.words
    heads = sentence.heads or [0] * len(words)
    rels = sentence.deprels or ["_"] * len(words)
    upos = sentence.upos
    widths = [max(len(w), len(u), 2) * _CHAR + _PAD for w, u in zip(words, upos, strict=True)]
    centers, x = [], 0.0
    for width in widths:
        centers.append(x + width / 2)
        x += width
    levels = _levels(heads)
    top_level = max(levels, default=0)
    base = _TOP + _LEVEL * (top_level + 1)  # where arcs end, just above the words
    height = base + 2 * _WORDS + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tree" width="{x:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {x:.0f} {height:.0f}" role="img" aria-label="{_attr(" ".join(words))}">'
    ]
    for d, (head, rel, level) in enumerate(zip(heads, rels, levels, strict=True), start=1):
        p = None if marginals is None else marginals[d - 1][head]
        style = "" if p is None else f' stroke-width="{1 + 2.5 * p:.2f}" stroke-opacity="{0.3 + 0.7 * p:.2f}"'
        hover = _hover(words, d, head, marginals)
        if head == 0:
            xd = centers[d - 1]
            parts.append(
                f'<g class="root"><title>{_attr(hover)}</title>'
                f'<line x1="{xd:.1f}" y1="{_TOP - 8}" x2="{xd:.1f}" y2="{base - 4:.1f}" stroke="#444"{style}/>'
                f'<text x="{xd:.1f}" y="{_TOP - 12}" text-anchor="middle" class="label">{_attr(rel)}</text></g>'
            )
            continue
        xh, xd = centers[head - 1], centers[d - 1]
        top = base - _LEVEL * level
        xh_off = xh + (4 if xd > xh else -4)
        path = f"M{xh_off:.1f},{base - 4:.1f} C{xh_off:.1f},{top:.1f} {xd:.1f},{top:.1f} {xd:.1f},{base - 6:.1f}"
        mid = (xh_off + xd) / 2
        label_y = base - 0.75 * _LEVEL * level - 3
        parts.append(
            f'<g class="arc"><title>{_attr(hover)}</title>'
            f'<path d="{path}" fill="none" stroke="#444"{style}/>'
            f'<path d="M{xd - 4:.1f},{base - 11:.1f} L{xd:.1f},{base - 4:.1f} L{xd + 4:.1f},{base - 11:.1f}" '
            f'fill="#444" stroke="none"/>'
            f'<text x="{mid:.1f}" y="{label_y:.1f}" text-anchor="middle" class="label">{_attr(rel)}</text></g>'
        )
    for i, (word, tag) in enumerate(zip(words, upos, strict=True)):
        parts.append(
            f'<text x="{centers[i]:.1f}" y="{base + _WORDS - 4:.1f}" text-anchor="middle" class="word">'
            f"{_attr(word)}</text>"
            f'<text x="{centers[i]:.1f}" y="{base + 2 * _WORDS - 2:.1f}" text-anchor="middle" class="upos">'
            f"{_attr(tag if tag != '_' else '')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _hover(words: Sequence[str], d: int, head: int, marginals: Sequence[Sequence[float]] | None) -> str:
    """What hovering word ``d``'s arc says: the arc, and with marginals its probability and the likeliest other
    head."""
    name = "ROOT" if head == 0 else f"{head} {words[head - 1]}"
    text = f"{name} → {d} {words[d - 1]}"
    if marginals is None:
        return text
    row = marginals[d - 1]
    text += f" (p = {row[head]:.2f})"
    others = [(p, h) for h, p in enumerate(row) if h != head and h != d]
    if others:
        p, h = max(others)
        other = "ROOT" if h == 0 else f"{h} {words[h - 1]}"
        text += f"; next most likely head: {other} (p = {p:.2f})"
    return text


def html_page_start(title: str = "unnparse") -> str:
    """The start of a self-contained HTML page of trees (no script, font or style from elsewhere)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_attr(title)}</title><style>body{{font-family:sans-serif;margin:1.5em;color:#222}}{tree_css()}"
        "</style></head><body>\n"
    )


def tree_css() -> str:
    """The style sheet of the drawings and of the sections that hold them (:func:`html_section`)."""
    return (
        "section{margin-bottom:1.5em;overflow-x:auto}"
        "h2{font-size:0.9em;color:#666;margin:0 0 .2em}p.text{margin:0 0 .4em}"
        "svg.tree text{font-family:monospace;font-size:14px}"
        "svg.tree text.label{font-size:11px;fill:#a33;paint-order:stroke;stroke:#fff;stroke-width:3px}"
        "svg.tree text.upos{font-size:11px;fill:#378}"
        "svg.tree g.arc:hover path,svg.tree g.root:hover line{stroke:#c60}"
    )


def html_section(sentence: Sentence, marginals: Sequence[Sequence[float]] | None = None) -> str:
    """One sentence of the page: its ``sent_id`` and text, then its tree."""
    head = f"<h2>{_attr(sentence.sent_id)}</h2>" if sentence.sent_id else ""
    text = sentence.text or " ".join(sentence.words)
    return f'<section>{head}<p class="text">{_attr(text)}</p>{sentence_svg(sentence, marginals)}</section>\n'


def html_page_end() -> str:
    """The end of the page :func:`html_page_start` began."""
    return "</body></html>\n"
