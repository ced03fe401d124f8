"""Reading input line by line in bounded memory, whatever the input holds.

A line is read whole only up to a limit: CoNLL-U and one-sentence-per-line input refuse a longer line
(:data:`MAX_LINE_BYTES`) with an error naming it, without reading the rest of it; raw text reads a longer line in
pieces (:class:`LinePiece`, :data:`TEXT_PIECE_BYTES` each) that the sentence splitters continue from one another. A
sentence may hold at most :data:`MAX_SENTENCE_WORDS` words (CoNLL-U: lines). The errors carry the line number only
(:class:`LineLimitError`); the readers that know the file's name turn them into ``file:line: message`` errors.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import IO, AnyStr

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_SENTENCE_WORDS",
    "TEXT_PIECE_BYTES",
    "LineLimitError",
    "LinePiece",
    "bounded_lines",
    "text_pieces",
]

#: Longest line of CoNLL-U or of one-sentence-per-line input (8 MiB: a 250,000-word sentence of 30-byte words).
MAX_LINE_BYTES = 8 * 2**20
#: Most words of one sentence of CoNLL-U (counted as lines) or of one-sentence-per-line input. Longer sentences are
#: refused: such input is not made of sentences (raw text has no such limit: its splitter cuts what it reads).
MAX_SENTENCE_WORDS = 250_000
#: Raw text is read in pieces of at most this many bytes of one line.
TEXT_PIECE_BYTES = 2**20


class LineLimitError(ValueError):
    """Input that breaks a limit of this module, or is not UTF-8, at line ``line`` (1-based)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(line, message)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class LinePiece(str):
    """A piece of a long line of raw text that the next item of the same iterable continues (no line break
    between them); see :func:`text_pieces`."""

    __slots__ = ()


def bounded_lines(source: IO[AnyStr] | Iterable[AnyStr], limit: int = MAX_LINE_BYTES) -> Iterator[AnyStr]:
    """The lines of ``source`` (each with its line break), none longer than ``limit`` bytes or characters.

    A stream is read with ``readline(limit + 1)``, so a longer line is never held whole; any other iterable of lines
    is taken as it is (the caller holds its lines already).

    Raises:
        LineLimitError: a line longer than ``limit``.
    """
    readline = getattr(source, "readline", None)
    if readline is None:
        yield from source  # type: ignore[misc]
        return
    lineno = 0
    while True:
        line = readline(limit + 1)
        if not line:
            return
        lineno += 1
        if len(line) > limit and not line.endswith(b"\n" if isinstance(line, bytes) else "\n"):
            raise LineLimitError(lineno, f"line longer than {_size(limit)} (is this the right input format?)")
        yield line


def text_pieces(stream: IO[bytes], piece_bytes: int = TEXT_PIECE_BYTES) -> Iterator[str]:
    """Raw UTF-8 text of a binary stream: each line as a ``str`` with its line break, a line longer than
    ``piece_bytes`` as :class:`LinePiece` items of at most that many bytes followed by its last piece (a plain
    ``str``; a :class:`LinePiece` can also be the very last item, when the input ends inside a line). A byte-order
    mark at the start is dropped; a ``\\r\\n`` is never cut in two, nor is a character.

    Raises:
        LineLimitError: invalid UTF-8 (the line and the byte's position in it).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    lineno, column, pending, first = 1, 0, b"", True
    while True:
        chunk = pending + stream.readline(max(1, piece_bytes - len(pending)))
        pending = b""
        if not chunk:
            _decode(decoder, b"", True, lineno, column)  # a character cut off by the end of the input
            return
        if chunk.endswith(b"\r"):  # keep "\r\n" together: one line break, not two
            following = stream.read(1)
            if following == b"\n":
                chunk += following
            else:
                pending = following
        # readline stops short of its size only at a line break or at the end of the input
        ended = chunk.endswith(b"\n") or (not pending and len(chunk) < piece_bytes)
        text = _decode(decoder, chunk, ended, lineno, column)
        if first:
            text, first = text.removeprefix("\ufeff"), False
        if ended:
            yield text
            lineno, column = lineno + 1, 0
            decoder.reset()
        else:
            column += len(chunk)
            yield LinePiece(text)


def _decode(decoder: codecs.IncrementalDecoder, data: bytes, final: bool, line: int, column: int) -> str:
    try:
        return decoder.decode(data, final=final)
    except UnicodeDecodeError as err:
        at = column + max(err.start, 0) + 1
        raise LineLimitError(line, f"invalid UTF-8 ({err.reason} at byte {at})") from None


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit >= 2**20 and limit % 2**20 == 0 else f"{limit:,} bytes"
