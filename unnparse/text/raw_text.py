"""Raw or pre-tokenized text -> :class:`~unnparse.conllu.Sentence` objects to parse.

A light, rule-based, Unicode-aware sentence splitter and tokenizer:

* text is normalized to NFC; control characters (except tab and newline) and invisible
  format characters (zero-width space / joiner / non-joiner, BOM, bidi marks: Unicode
  category ``Cf``) are dropped.  Dropping the zero-width joiner splits emoji ZWJ sequences
  (family emoji) into their parts;
* sentences end at ``. ! ? …`` and their kin in other scripts (``؟ ۔ । ॥ ። ։ ။``) when
  followed by whitespace and then an uppercase or uncased letter, a digit, an opening quote
  or bracket (or the end), at the CJK ``。！？`` regardless of spacing, and at paragraph
  breaks (blank lines); common abbreviations (``Mr.``, ``Dr.``, ``e.g.``, ``No. 5``) and
  initials do not end a sentence;
* tokens are runs of letters/digits of any script together with their combining marks;
  numbers keep inner ``,`` / ``.``; clitics and hyphenated words stay whole (``don't``,
  ``John's``, ``well-known``); URLs and e-mail addresses stay whole; each punctuation mark
  or symbol (emoji with its modifiers) is a token, with runs like ``...``, ``?!`` and
  ``--`` kept together; Han ideographs are one token each.

The streaming functions take any iterable of lines (a file, ``sys.stdin``) and yield
sentences as soon as they are complete, so memory stays flat on huge inputs.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from unnparse.conllu.errors import CoNLLUError
from unnparse.conllu.sentence import Sentence
from unnparse.text.lines import MAX_SENTENCE_WORDS, LineLimitError, LinePiece, bounded_lines, text_pieces

__all__ = [
    "SENTENCE_CHAR_LIMIT",
    "iter_sentences_from_text",
    "iter_sentences_from_tokenized",
    "normalize_text",
    "normalized_lines",
    "sentences_from_text",
    "sentences_from_tokenized",
    "stream_paragraphs",
    "split_sentences",
    "tokenize",
]

# Abbreviations (lowercase, without the final dot).
_NO_SPLIT_ABBREVS = frozenset(
    "mr mrs ms messrs dr prof st mt vs cf viz gen col lt sgt capt cmdr adm rev hon sen rep gov pres "
    "fr mme mlle mgr e.g i.e".split()
)
_NUMERIC_ABBREVS = frozenset(
    "no nos vol vols fig figs pp p ch sec art eq jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_TOKEN_ABBREVS = _NO_SPLIT_ABBREVS | frozenset("etc inc ltd co corp jr sr al approx ca dept est univ assn bros".split())

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_TERMINATORS = ".!?\u2026\u203c\u2047\u2048\u2049\u061f\u06d4\u0964\u0965\u1362\u0589\u104b"
_CJK_TERMINATORS = "\u3002\uff01\uff1f"
_CLOSERS = "\"'\u201d\u2019\u00bb\u203a)\\]}\u300d\u300f\u3011\uff09"
_BOUNDARY_RE = re.compile(f"(?:[{re.escape(_TERMINATORS)}]+|(?P<cjk>[{_CJK_TERMINATORS}]+))[{_CLOSERS}]*")
_OPENERS = "\"'\u00bf\u00a1"
_PREV_WORD_RE = re.compile(r"[\w.]+$")
_NONSPACE_RE = re.compile(r"\S")
_PARAGRAPH_RE = re.compile(r"\n\s*\n")
_SPACE_RE = re.compile(r"\s+")

_STREAM_SOFT_LIMIT = 1 << 16  # chars buffered before complete sentences are emitted early
#: Characters of a sentence at most: an unfinished "sentence" this long is emitted as it is (cut there), so that the
#: text held and re-read while streaming stays bounded whatever the input (one line of 100 MB without a full stop).
SENTENCE_CHAR_LIMIT = 1 << 20
_STREAM_HARD_LIMIT = SENTENCE_CHAR_LIMIT


def _ranges(predicate: Iterable[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in predicate:
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


def _code_points() -> Iterator[int]:
    yield from range(0x20000)
    yield from range(0xE0000, 0xE1000)


@functools.lru_cache(maxsize=1)
def _drop_table() -> dict[int, None]:
    table: dict[int, None] = {}
    for cp in _code_points():
        cat = unicodedata.category(chr(cp))
        if cat == "Cf" or (cat == "Cc" and cp not in (9, 10)):
            table[cp] = None
    return table


@functools.lru_cache(maxsize=1)
def _token_re() -> re.Pattern[str]:
    marks = _ranges(cp for cp in _code_points() if unicodedata.category(chr(cp)).startswith("M"))
    ext = _class_body(marks) + "\\U0001f3fb-\\U0001f3ff"  # combining marks + emoji skin tones
    letter = f"(?:[^\\W{_HAN}]|[{ext}])"
    pattern = "|".join(
        [
            r"(?P<url>(?:(?:https?|ftp)://|www\.)[^\s<>\"]*[^\s<>\".,;:!?'\")\]}\u2026])",
            # an e-mail address: local part and domain labels bounded as the RFCs bound them (64 and 63
            # characters), which also keeps the search linear on long runs such as "+a+a+a..."
            r"(?P<email>[\w.+-]{1,64}@\w[\w-]{0,62}(?:\.\w[\w-]{0,62})+)",
            r"(?P<dotted>(?:[^\W\d_]\.){2,})",
            r"(?P<number>\d+(?:[.,]\d+)+)",
            f"(?P<han>[{_HAN}][{ext}]*)",
            f"(?P<word>{letter}+(?:['\u2019\\-]{letter}+)*)",
            r"(?P<dots>\.{2,}|[!?]+|-{2,})",
            "(?P<flag>[\U0001f1e6-\U0001f1ff]{2})",
            f"(?P<other>\\S[{ext}]*)",
        ]
    )
    return re.compile(pattern)


def normalize_text(text: str) -> str:
    """NFC-normalize, unify line breaks to ``\\n`` and drop control/format characters.

    Tabs and newlines are kept; ``\\r\\n``, ``\\r``, NEL and U+2028 become ``\\n`` and
    U+2029 (paragraph separator) becomes a blank line.
    """
    text = (
        text.replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\x85", "\n")
        .replace("\u2028", "\n")
        .replace("\u2029", "\n\n")
    )
    return unicodedata.normalize("NFC", text.translate(_drop_table()))


def _starts_sentence(char: str) -> bool:
    """Whether ``char`` may begin a sentence: not a lowercase letter, nor a symbol like an emoji."""
    if char.isalpha():
        return not char.islower()  # uppercase, titlecase, or a script without case
    if char.isdigit():
        return True
    return char in _OPENERS or unicodedata.category(char) in ("Pi", "Ps")


def _boundary_ok(text: str, match: re.Match[str]) -> bool:
    """Whether the terminator ``match`` ends a sentence (``text`` is one paragraph)."""
    end = match.end()
    if end >= len(text):
        return True
    if match.group("cjk"):
        return True
    if not text[end].isspace():
        return False
    following = _NONSPACE_RE.search(text, end)
    if following is None:
        return True
    nxt = following.group(0)
    if not _starts_sentence(nxt):
        return False
    if match.group(0).rstrip(_CLOSERS.replace("\\", "")) == ".":
        prev = _PREV_WORD_RE.search(text, max(0, match.start() - 64), match.start())
        if prev:
            word = prev.group(0).lower()
            if word in _NO_SPLIT_ABBREVS:
                return False
            if word in _NUMERIC_ABBREVS and nxt.isdigit():
                return False
            if len(word) == 1 and prev.group(0).isupper() and word != "i" and nxt.isupper():  # "J. Smith"
                return False
    return True


def _sentence_spans(paragraph: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence in ``paragraph`` (no surrounding whitespace)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY_RE.finditer(paragraph):
        if _boundary_ok(paragraph, match):
            spans.append((start, match.end()))
            start = match.end()
    spans.append((start, len(paragraph)))
    out = []
    for a, b in spans:
        chunk = paragraph[a:b]
        stripped = chunk.strip()
        if stripped:
            a += len(chunk) - len(chunk.lstrip())
            out.append((a, a + len(stripped)))
    return out


def _collapse(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Split raw text into sentences (normalized, inner whitespace collapsed to one space)."""
    text = normalize_text(text)
    sentences = []
    for paragraph in _PARAGRAPH_RE.split(text):
        sentences.extend(_collapse(paragraph[a:b]) for a, b in _sentence_spans(paragraph))
    return sentences


def _tokenize_normalized(text: str, end_space: bool = True) -> list[tuple[str, bool]]:
    pieces: list[tuple[str, str, int]] = []  # (token, kind, end offset)
    for match in _token_re().finditer(text):
        pieces.append((match.group(0), match.lastgroup or "other", match.end()))
    tokens: list[tuple[str, bool]] = []
    i = 0
    while i < len(pieces):
        form, kind, end = pieces[i]
        if kind == "word" and i + 1 < len(pieces) and pieces[i + 1][0] == "." and pieces[i + 1][2] == end + 1:
            low = form.lower()
            following = _NONSPACE_RE.search(text, end + 1)
            after = following.group(0) if following else ""
            is_last = i + 2 == len(pieces)
            if (
                low in _TOKEN_ABBREVS
                or (low in _NUMERIC_ABBREVS and after[:1].isdigit())
                or (len(form) == 1 and form.isupper() and form != "I" and not is_last)
            ):
                form, end = form + ".", end + 1
                i += 1
        space_after = end_space if end >= len(text) else text[end].isspace()
        tokens.append((form, space_after))
        i += 1
    return tokens


def tokenize(sentence: str) -> list[tuple[str, bool]]:
    """Split one sentence into ``(token, space_after)`` pairs.

    ``space_after`` tells whether whitespace follows the token in the (normalized) input;
    it is ``True`` for the last token.  Whitespace-only input gives ``[]``.
    """
    return _tokenize_normalized(normalize_text(sentence).strip())


class _Counter:
    def __init__(self) -> None:
        self.value = 0

    def next(self) -> str:
        self.value += 1
        return str(self.value)


def _make_sentence(paragraph: str, a: int, b: int, first_line: int, counter: _Counter, source: str) -> Sentence | None:
    chunk = paragraph[a:b]
    end_space = b >= len(paragraph) or paragraph[b].isspace()
    tokens = _tokenize_normalized(chunk, end_space=end_space)
    if not tokens:
        return None
    return Sentence.from_words(
        [form for form, _ in tokens],
        space_after=[space for _, space in tokens],
        sent_id=counter.next(),
        text=_collapse(chunk),
        source=source,
        line=first_line + paragraph.count("\n", 0, a),
    )


def normalized_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of raw text, normalized (:func:`normalize_text`) and without its line
    break; a raw line that holds several (``\\r``, U+2028, ...) gives each of them with its number."""
    for lineno, raw in enumerate(lines, start=1):
        text = normalize_text(raw)
        if text.endswith("\n"):
            text = text[:-1]
        yield from ((lineno, part) for part in text.split("\n"))


def _line_parts(lines: Iterable[str]) -> Iterator[tuple[int, str, bool, bool]]:
    """``(line number, text, starts a line, ends its line)`` of each part of raw text, normalized like
    :func:`normalized_lines`; a :class:`~unnparse.text.lines.LinePiece` item is continued by the next item
    (a line read in pieces, see :func:`~unnparse.text.lines.text_pieces`)."""
    lineno, continuing = 0, False
    for raw in lines:
        piece = isinstance(raw, LinePiece)
        if not continuing:
            lineno += 1
        text = normalize_text(raw)
        if text.endswith("\n"):
            text = text[:-1]
        parts = text.split("\n")
        last = len(parts) - 1
        for k, part in enumerate(parts):
            yield lineno, part, k > 0 or not continuing, k < last or not piece
        continuing = piece


#: ``split(paragraph, final, first_line)`` -> the sentences complete so far and, unless ``final``, the offset in
#: ``paragraph`` from which its unfinished rest is kept for the next call (None: nothing is kept).
ParagraphSplitter = Callable[[str, bool, int], tuple[list[Sentence], int | None]]


def stream_paragraphs(
    lines: Iterable[str], split: ParagraphSplitter, *, soft_limit: int = _STREAM_SOFT_LIMIT
) -> Iterator[Sentence]:
    """Feed streamed raw text to a paragraph splitter: each paragraph (lines up to a blank line) as a whole, and a
    long one whenever more than ``soft_limit`` characters are buffered (then the rest that ``split`` keeps is
    re-read with what follows, and the limit doubles with it: linear time overall). A line longer than
    ``soft_limit`` is buffered in pieces of that size, so that the splitter also sees a huge line a part at a time;
    with splitters that keep at most :data:`SENTENCE_CHAR_LIMIT` characters, memory stays flat."""
    if isinstance(lines, str):
        lines = lines.split("\n")
    buffer: list[str] = []  # the paragraph's text so far; line breaks are pieces of their own
    buffered = 0
    limit = soft_limit
    first_line = 1

    def flush(final: bool) -> Iterator[Sentence]:
        nonlocal buffer, buffered, first_line, limit
        paragraph = "".join(buffer)
        sentences, keep_from = split(paragraph, final, first_line)
        yield from sentences
        if keep_from is None:
            buffer, buffered = [], 0
        else:
            first_line += paragraph.count("\n", 0, keep_from)
            rest = paragraph[keep_from:]
            buffer, buffered = [rest], len(rest)
        limit = max(soft_limit, 2 * buffered)

    for lineno, part, new_line, line_done in _line_parts(lines):
        if new_line and line_done and part.strip() == "":  # a blank line: the paragraph ends
            if buffer:
                yield from flush(final=True)
            continue
        if buffer and new_line:
            buffer.append("\n")
            buffered += 1
        for start in range(0, len(part), soft_limit):
            if not buffer:
                first_line = lineno
            piece = part[start : start + soft_limit]
            buffer.append(piece)
            buffered += len(piece)
            if buffered > limit:
                yield from flush(final=False)
    if buffer:
        yield from flush(final=True)


def iter_sentences_from_text(lines: Iterable[str], *, source: str = "<stdin>") -> Iterator[Sentence]:
    """Stream raw text (an iterable of lines) into unannotated sentences.

    Sentences are yielded as soon as they are known to be complete: at each paragraph
    break, and whenever more than ~64k characters are buffered (a sentence longer than ~1M
    characters is cut there), so memory use does not grow with the input.  ``sent_id`` counts
    from 1; ``Sentence.line`` is the line where the sentence starts.
    """
    counter = _Counter()

    def split(paragraph: str, final: bool, first_line: int) -> tuple[list[Sentence], int | None]:
        spans = _sentence_spans(paragraph)
        keep_from = None
        if not final and spans and len(paragraph) < _STREAM_HARD_LIMIT:
            keep_from = spans[-1][0]
            spans = spans[:-1]
        made = (_make_sentence(paragraph, a, b, first_line, counter, source) for a, b in spans)
        return [sentence for sentence in made if sentence is not None], keep_from

    return stream_paragraphs(lines, split)


def sentences_from_text(text: str, *, source: str = "<stdin>") -> list[Sentence]:
    """Split and tokenize raw text into unannotated sentences (see :func:`iter_sentences_from_text`)."""
    return list(iter_sentences_from_text(text.split("\n"), source=source))


def read_text(stream: IO[bytes], name: str) -> Iterator[str]:
    """Raw UTF-8 text of a binary stream for the sentence splitters, a huge line in pieces (see
    :func:`~unnparse.text.lines.text_pieces`), so that memory stays bounded whatever the input.

    Raises:
        CoNLLUError: invalid UTF-8 (``name:line: ...``).
    """
    try:
        yield from text_pieces(stream)
    except LineLimitError as err:
        raise CoNLLUError(name, err.line, err.message) from None


def read_lines(stream: IO[bytes], name: str) -> Iterator[str]:
    """The lines of a binary stream of one-sentence-per-line UTF-8 text, each at most
    :data:`~unnparse.text.lines.MAX_LINE_BYTES` long (a byte-order mark at the start is dropped).

    Raises:
        CoNLLUError: invalid UTF-8 or an over-long line (``name:line: ...``).
    """
    lineno = 0
    try:
        for raw in bounded_lines(stream):
            lineno += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CoNLLUError(name, lineno, f"invalid UTF-8 ({err.reason} at byte {err.start + 1})") from None
            yield text.removeprefix("\ufeff") if lineno == 1 else text
    except LineLimitError as err:
        raise CoNLLUError(name, err.line, err.message) from None


def iter_sentences_from_tokenized(lines: Iterable[str], *, source: str = "<stdin>") -> Iterator[Sentence]:
    """Stream pre-tokenized text: one sentence per line, tokens separated by whitespace.

    Blank lines are skipped; text is normalized like raw text (:func:`normalize_text`).

    Raises:
        CoNLLUError: a line of more than :data:`~unnparse.text.lines.MAX_SENTENCE_WORDS` words.
    """
    if isinstance(lines, str):
        lines = lines.split("\n")
    counter = _Counter()
    for lineno, raw in enumerate(lines, start=1):
        text = normalize_text(raw)
        for part in text.split("\n"):
            words = part.split()
            if not words:
                continue
            if len(words) > MAX_SENTENCE_WORDS:
                raise CoNLLUError(
                    source,
                    lineno,
                    f"a sentence of {len(words):,} words, more than {MAX_SENTENCE_WORDS:,}: one sentence per line is "
                    "expected (give raw text with --input-format text)",
                )
            yield Sentence.from_words(words, sent_id=counter.next(), text=" ".join(words), source=source, line=lineno)


def sentences_from_tokenized(lines: Iterable[str], *, source: str = "<stdin>") -> list[Sentence]:
    """Pre-tokenized text (one sentence per line, whitespace-separated tokens) -> sentences."""
    return list(iter_sentences_from_tokenized(lines, source=source))


if __name__ == "__main__":  # pragma: no cover - manual check: python -m unnparse.text.raw_text < file
    from unnparse.conllu.writer import write_conllu

    write_conllu(iter_sentences_from_text(sys.stdin), sys.stdout)
