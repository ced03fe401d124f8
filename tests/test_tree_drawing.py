"""Trees to look at: the SVG drawing's structure, escaping, marginals, long sentences, and the HTML page."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from tests.parser_fixtures import conllu_text
from unnparse.conllu import Sentence, read_conllu
from unnparse.parser.output_formats import document_end, document_start, render
from unnparse.parser.predictor import ParsedSentence
from unnparse.parser.tree_drawing import html_section, sentence_svg

SVG = "{http://www.w3.org/2000/svg}"


def _sentences(n: int = 3):
    return read_conllu(io.StringIO(conllu_text(n, 4)), name="toy")


def test_one_arc_per_word_a_root_mark_labels_and_tags():
    for sentence in _sentences():
        svg = ET.fromstring(sentence_svg(sentence))  # well-formed XML
        arcs = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "arc"]
        roots = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "root"]
        assert len(arcs) == len(sentence) - 1 and len(roots) == 1
        labels = sorted(t.text for g in arcs + roots for t in g.iter(f"{SVG}text"))
        assert labels == sorted(sentence.deprels)
        words = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "word"]
        tags = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "upos"]
        assert words == sentence.words and tags == sentence.upos
        # each arc's hover text names its head and dependent
        for g in arcs:
            assert "→" in g.find(f"{SVG}title").text


def test_nested_arcs_are_drawn_above_the_arcs_inside_them():
    from unnparse.parser.tree_drawing import _levels

    # 1 <- 3 -> 2? : word 1 and word 2 attach to 3; word 4 attaches to 1 (spans 1..4 over everything)
    assert _levels([3, 3, 0, 1]) == [2, 1, 0, 3]


def test_user_text_is_escaped():
    sentence = Sentence.from_words(['<script>alert("x")</script>', "&", "'q'"]).with_predictions(
        [0, 1, 1], ["root", "dep", "punct"]
    )
    svg = sentence_svg(sentence)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ET.fromstring(svg)
    page = document_start("html") + html_section(sentence) + document_end("html")
    assert "<script>" not in page and page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from elsewhere


def test_marginals_set_arc_width_and_name_the_next_head():
    sentence = Sentence.from_words(["a", "b", "c"]).with_predictions([2, 0, 2], ["det", "root", "obj"])
    marginals = [[0.05, 0.0, 0.9, 0.05], [0.8, 0.1, 0.0, 0.1], [0.1, 0.3, 0.6, 0.0]]
    svg = ET.fromstring(sentence_svg(sentence, marginals))
    arcs = {g.find(f"{SVG}title").text: g for g in svg.iter(f"{SVG}g") if g.get("class") == "arc"}
    sure = next(g for t, g in arcs.items() if "→ 1 a" in t)
    unsure = next(g for t, g in arcs.items() if "→ 3 c" in t)
    width = [float(g.find(f"{SVG}path").get("stroke-width")) for g in (sure, unsure)]
    assert width[0] > width[1]
    assert "next most likely head: 1 a (p = 0.30)" in next(t for t in arcs if "→ 3 c" in t)


def test_a_sixty_word_sentence_stays_readable():
    words = [f"w{i}" for i in range(60)]
    heads = [0] + [1] * 59  # every word on the first: the widest fan
    svg = ET.fromstring(sentence_svg(Sentence.from_words(words).with_predictions(heads, ["root"] + ["dep"] * 59)))
    width, height = float(svg.get("width")), float(svg.get("height"))
    assert width >= 60 * 2 * 8 and height < 60 * 30  # every word its own room; arcs nested, one level each


def test_render_svg_and_html_through_the_output_formats():
    parsed = [ParsedSentence(s) for s in _sentences(2)]
    svg_lines = "".join(render(p, "svg") for p in parsed).splitlines()
    assert len(svg_lines) == 2 and all(line.startswith("<svg") for line in svg_lines)
    page = document_start("html") + "".join(render(p, "html") for p in parsed) + document_end("html")
    assert page.count("<section>") == 2 and page.count("<svg") == 2
