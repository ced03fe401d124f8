"""Tests for unnparse.text.raw_text."""

from __future__ import annotations

import io

import pytest

from unnparse.conllu import Sentence, read_conllu, write_conllu
from unnparse.text.raw_text import (
    iter_sentences_from_text,
    iter_sentences_from_tokenized,
    normalize_text,
    sentences_from_text,
    sentences_from_tokenized,
    split_sentences,
    tokenize,
)


def _forms(text: str) -> list[str]:
    return [form for form, _ in tokenize(text)]


def _rebuild(sentence: Sentence) -> str:
    """Text from FORM + SpaceAfter, as UD defines it."""
    parts = []
    for tok in sentence.word_tokens:
        misc = tok["misc"] or {}
        parts.append(tok["form"] + ("" if misc.get("SpaceAfter") == "No" else " "))
    return "".join(parts).rstrip(" ")


# ---------------------------------------------------------------------------- splitting


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello world. This is it.", ["Hello world.", "This is it."]),
        ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
        ("We use tools, e.g. hammers. Fine!", ["We use tools, e.g. hammers.", "Fine!"]),
        ("Pi is 3.14. Really? Yes!", ["Pi is 3.14.", "Really?", "Yes!"]),
        ("See No. 5 and Fig. 3 for details.", ["See No. 5 and Fig. 3 for details."]),
        ("J. K. Rowling wrote it. So did I. Then", ["J. K. Rowling wrote it.", "So did I.", "Then"]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ('"Stop!" he said.', ['"Stop!" he said.']),
        ("Wait… What happened?! Nothing.", ["Wait…", "What happened?!", "Nothing."]),
        ("no final stop", ["no final stop"]),
        (
            "Line one\ncontinues here.\n\nNew paragraph without stop\n\nThird.",
            [
                "Line one continues here.",
                "New paragraph without stop",
                "Third.",
            ],
        ),
        ("नमस्ते दुनिया। यह परीक्षण है।", ["नमस्ते दुनिया।", "यह परीक्षण है।"]),
        ("مرحبا بالعالم؟ كيف حالك؟", ["مرحبا بالعالم؟", "كيف حالك؟"]),
        ("我爱北京。你好！谢谢", ["我爱北京。", "你好！", "谢谢"]),
        ("   \n\n \t ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


# ---------------------------------------------------------------------------- tokenizing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("Don't stop John's well-known rock'n'roll.", ["Don't", "stop", "John's", "well-known", "rock'n'roll", "."]),
        (
            "It costs $3,000.50 (approx.) or 1.5%.",
            ["It", "costs", "$", "3,000.50", "(", "approx.", ")", "or", "1.5", "%", "."],
        ),
        ("Mr. Smith lives in the U.S. now.", ["Mr.", "Smith", "lives", "in", "the", "U.S.", "now", "."]),
        ("e.g. this", ["e.g.", "this"]),
        ("Visit https://example.com/a?b=1&c=2. Now", ["Visit", "https://example.com/a?b=1&c=2", ".", "Now"]),
        ("(see www.example.org/x_y)", ["(", "see", "www.example.org/x_y", ")"]),
        ("Mail joe.doe+x@mail.co.uk, please", ["Mail", "joe.doe+x@mail.co.uk", ",", "please"]),
        ("Wait... what?!", ["Wait", "...", "what", "?!"]),
        ("a -- b", ["a", "--", "b"]),
        ("?!... ###", ["?!", "...", "#", "#", "#"]),
        ("तेलुगु: తెలుగు భాష", ["तेलुगु", ":", "తెలుగు", "భాష"]),
        ("नमस्ते दुनिया।", ["नमस्ते", "दुनिया", "।"]),
        ("مَرْحَبًا بِكُمْ", ["مَرْحَبًا", "بِكُمْ"]),
        ("٣٫١٤ and ١٢٣", ["٣", "٫", "١٤", "and", "١٢٣"]),
        ("我爱北京", ["我", "爱", "北", "京"]),
        ("I ❤️ 👍🏽 🇫🇷!", ["I", "❤️", "👍🏽", "🇫🇷", "!"]),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert _forms(text) == expected


def test_space_after() -> None:
    assert tokenize("Hello, world!") == [("Hello", False), (",", True), ("world", False), ("!", True)]
    assert tokenize("  ") == []


def test_combining_marks_and_normalization() -> None:
    # "é" as e + COMBINING ACUTE is NFC-normalized and stays one token
    assert _forms("cafe\u0301 ok") == ["café", "ok"]
    # a combining mark alone still yields a token
    assert _forms("\u0301") == ["\u0301"]
    # Telugu vowel signs and viramas are not split off
    assert _forms("ప్రపంచం") == ["ప్రపంచం"]


def test_invisible_and_control_characters() -> None:
    # zero-width space / joiner / non-joiner, BOM, LRM and control characters are dropped
    assert normalize_text("a\u200bb\u200cc\u200dd\ufeffe\u200ef\x00g\x07h\tx\ny") == "abcdefgh\tx\ny"
    # the emoji ZWJ sequence falls apart into its emoji
    assert _forms("👨\u200d👩\u200d👧") == ["👨", "👩", "👧"]
    # NBSP and other Unicode spaces separate tokens
    assert tokenize("10\u00a0kg\u2009now") == [("10", True), ("kg", True), ("now", True)]
    assert normalize_text("a\r\nb\rc\u2028d\u2029e") == "a\nb\nc\nd\n\ne"


# ---------------------------------------------------------------------------- sentences


def test_sentences_from_text_builds_valid_conllu() -> None:
    text = "Hello world. It's 3.5 km\u00a0away!\n\n¿Qué? Sí… 😀😀\nEnd"
    sentences = sentences_from_text(text, source="in.txt")
    assert [s.text for s in sentences] == ["Hello world.", "It's 3.5 km away!", "¿Qué?", "Sí… 😀😀 End"]
    assert [s.sent_id for s in sentences] == ["1", "2", "3", "4"]
    assert [s.line for s in sentences] == [1, 1, 3, 3]
    assert all(s.source == "in.txt" for s in sentences)
    assert sentences[1].words == ["It's", "3.5", "km", "away", "!"]
    for s in sentences:
        assert _rebuild(s) == s.text
        assert s.heads is None
    assert sentences[0].to_conllu() == (
        "# sent_id = 1\n# text = Hello world.\n"
        "1\tHello\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "2\tworld\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No\n"
        "3\t.\t_\t_\t_\t_\t_\t_\t_\t_\n\n"
    )
    buf = io.StringIO()
    write_conllu(sentences, buf)
    back = read_conllu(io.StringIO(buf.getvalue()), require_heads=False)
    assert [s.words for s in back] == [s.words for s in sentences]


def test_cjk_sentences_without_spaces_keep_space_after() -> None:
    first, second = sentences_from_text("你好。我很好。")
    assert first.words == ["你", "好", "。"]
    assert _rebuild(first) == "你好。"
    misc = first.word_tokens[-1]["misc"]
    assert misc == {"SpaceAfter": "No"}  # the next sentence follows without a space
    assert second.text == "我很好。"


def test_text_without_word_characters() -> None:
    (s,) = sentences_from_text("?!?! ... ***")
    assert s.words == ["?!?!", "...", "*", "*", "*"]
    assert sentences_from_text("\u200b\u200d \n\n\x00") == []


def test_streaming_text_is_incremental_and_flat() -> None:
    consumed = 0
    sentence = "The quick brown fox jumps over the lazy dog again and again. "

    def lines():
        nonlocal consumed
        for _ in range(5000):  # one huge paragraph: ~300k characters, no blank line
            consumed += 1
            yield sentence

    it = iter_sentences_from_text(lines())
    first = next(it)
    assert first.text == sentence.strip()
    assert consumed < 5000  # emitted long before the end of the input
    rest = list(it)
    assert len(rest) == 4999
    assert rest[-1].sent_id == "5000" and rest[-1].line == 5000
    assert all(s.text == sentence.strip() for s in rest)


def test_streaming_huge_sentence_without_terminator() -> None:
    words = ["word"] * 250_000  # 1.25M characters, no sentence end, one line per 10 words
    lines = (" ".join(words[i : i + 10]) + "\n" for i in range(0, len(words), 10))
    sentences = list(iter_sentences_from_text(lines))
    assert 1 <= len(sentences) <= 2  # cut once the buffer passed the hard limit
    assert sum(len(s) for s in sentences) == len(words)


def test_streaming_matches_batch_splitting() -> None:
    text = "A b. C d!\nE f? G\n\nH i. " * 50
    streamed = [s.text for s in iter_sentences_from_text(io.StringIO(text))]
    assert streamed == split_sentences(text)


def test_tokenized_input() -> None:
    lines = ["The  cat\u00a0sat .\n", "\n", "   \n", "Ça va ?\n", "\u200b\n", "x"]
    sentences = sentences_from_tokenized(lines, source="tok.txt")
    assert [s.words for s in sentences] == [["The", "cat", "sat", "."], ["Ça", "va", "?"], ["x"]]
    assert [s.line for s in sentences] == [1, 4, 6]
    assert [s.sent_id for s in sentences] == ["1", "2", "3"]
    assert sentences[0].text == "The cat sat ."
    assert all(tok["misc"] is None for s in sentences for tok in s.tokens)
    assert [s.words for s in sentences_from_tokenized("a b\n\nc")] == [["a", "b"], ["c"]]
    it = iter_sentences_from_tokenized(iter(["a\n"] * 3))
    assert next(it).words == ["a"]
