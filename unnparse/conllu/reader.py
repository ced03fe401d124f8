"""The one CoNLL-U reader: decodes UTF-8 (one decoder), reads lines in bounded memory, validates every sentence
(IDs, heads, trees, multiword ranges, empty nodes) and names the file and the 1-based line of any error.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from conllu.exceptions import ParseException
from conllu.models import Token, TokenList

from unnparse.conllu.errors import CoNLLUError, MultipleRootsWarning, NoSentencesError
from unnparse.conllu.fields import (
    FIELDS,
    SURROGATES,
    is_word,
    metadata_from_comments,
    parse_deps_field,
    parse_dict_field,
    parse_id,
    parse_int,
)
from unnparse.conllu.sentence import PathOrStream, Sentence
from unnparse.text.lines import MAX_SENTENCE_WORDS, LineLimitError, bounded_lines

__all__ = ["iter_conllu", "read_conllu"]


def _stream_name(stream: Any, name: str | None) -> str:
    if name is not None:
        return name
    stream_name = getattr(stream, "name", None)
    if isinstance(stream_name, str):
        return stream_name
    return "<stream>"


def _decode_lines(raw_lines: Iterable[bytes | str], name: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` without the line terminator; validate UTF-8."""
    lineno = 0
    iterator = iter(raw_lines)
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:  # text stream that decodes itself
            raise CoNLLUError(name, lineno + 1, f"invalid UTF-8 ({exc.reason})") from None
        except LineLimitError as exc:  # a line longer than the reader takes (see bounded_lines)
            raise CoNLLUError(name, exc.line, exc.message) from None
        lineno += 1
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CoNLLUError(
                    name, lineno, f"invalid UTF-8: byte 0x{raw[exc.start]:02x} at byte column {exc.start + 1}"
                ) from None
        else:
            text = raw
            if not text.isascii() and SURROGATES.search(text):
                raise CoNLLUError(name, lineno, "invalid UTF-8 (undecodable bytes in the input)")
        if text.endswith("\n"):
            text = text[:-1]
            if text.endswith("\r"):
                text = text[:-1]
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield lineno, text


def _iter_blocks(lines: Iterable[tuple[int, str]], name: str) -> Iterator[list[tuple[int, str]]]:
    """The sentences' blocks of lines; a block longer than :data:`MAX_SENTENCE_WORDS` lines is an error (memory
    stays bounded whatever the input)."""
    block: list[tuple[int, str]] = []
    for lineno, text in lines:
        if text.strip() == "":
            if block:
                yield block
                block = []
        else:
            block.append((lineno, text))
            if len(block) > MAX_SENTENCE_WORDS:
                raise CoNLLUError(
                    name, block[0][0], f"a sentence of more than {MAX_SENTENCE_WORDS:,} lines (no blank line after it?)"
                )
    if block:
        yield block


def _parse_block(block: list[tuple[int, str]], name: str, require_heads: bool) -> Sentence:
    comments: list[str] = []
    tokens: list[Token] = []
    word_lines: list[int] = []  # line number of each word
    last_word = 0
    range_end = 0  # end of the multiword token currently being covered (0: none)
    range_line = 0
    last_empty: tuple[int, int] = (0, 0)
    for lineno, text in block:
        if text.startswith("#"):
            if tokens:
                raise CoNLLUError(name, lineno, "comment line after token lines (comments must come first)")
            comments.append(text)
            continue
        cols = text.split("\t")
        if len(cols) != 10:
            hint = " (columns must be separated by tabs)" if len(cols) < 10 and "  " in text else ""
            raise CoNLLUError(name, lineno, f"expected 10 tab-separated columns, found {len(cols)}{hint}")
        for col_name, col in zip(FIELDS, cols, strict=True):
            if col == "":
                raise CoNLLUError(name, lineno, f"empty {col_name.upper()} column (use '_' for no value)")
        try:
            tok_id = parse_id(cols[0])
        except ParseException:
            if re.fullmatch(r"[0-9]+-[0-9]+", cols[0]):
                raise CoNLLUError(name, lineno, f"malformed multiword token range {cols[0]!r}") from None
            raise CoNLLUError(name, lineno, f"invalid ID {cols[0]!r}") from None
        if tok_id is None:
            raise CoNLLUError(name, lineno, "ID must not be '_'")
        if isinstance(tok_id, int):
            if tok_id != last_word + 1:
                raise CoNLLUError(
                    name, lineno, f"word ID {tok_id} follows {last_word} (IDs must be consecutive from 1)"
                )
            last_word = tok_id
            word_lines.append(lineno)
            if range_end and tok_id >= range_end:
                range_end = 0
        elif tok_id[1] == "-":
            start, _, end = tok_id
            if start >= end:
                raise CoNLLUError(name, lineno, f"malformed multiword token range {cols[0]!r} (start >= end)")
            if range_end:
                raise CoNLLUError(name, lineno, f"multiword token {cols[0]} overlaps the previous one")
            if start != last_word + 1:
                raise CoNLLUError(
                    name,
                    lineno,
                    f"multiword token {cols[0]} must come right before word {start} (last word: {last_word})",
                )
            range_end, range_line = end, lineno
        else:
            major, _, minor = tok_id
            expected_minor = last_empty[1] + 1 if last_empty[0] == major else 1
            if major != last_word or minor != expected_minor:
                raise CoNLLUError(name, lineno, f"empty node {cols[0]} out of place (after word {last_word})")
            last_empty = (major, minor)
        try:
            head = parse_int(cols[6])
        except ParseException:
            raise CoNLLUError(name, lineno, f"HEAD must be an integer or '_', not {cols[6]!r}") from None
        if isinstance(tok_id, int) and head is None and require_heads:
            raise CoNLLUError(name, lineno, f"word {tok_id} has no HEAD ('_')")
        tokens.append(
            Token(
                id=tok_id,
                form=cols[1],
                lemma=cols[2],
                upos=cols[3],
                xpos=None if cols[4] == "_" else cols[4],
                feats=parse_dict_field(cols[5]),
                head=head,
                deprel=cols[7],
                deps=parse_deps_field(cols[8]),
                misc=parse_dict_field(cols[9]),
            )
        )
    start_line = block[0][0]
    if not tokens:
        raise CoNLLUError(name, start_line, "sentence has comment lines but no token lines")
    if not word_lines:
        raise CoNLLUError(name, start_line, "sentence has no syntactic words (integer IDs)")
    if range_end:
        raise CoNLLUError(
            name, range_line, f"multiword token range ends at {range_end} beyond the last word {last_word}"
        )
    n_words = last_word
    heads: list[int | None] = []
    for tok in tokens:
        if is_word(tok):
            heads.append(tok["head"])
    for i, head in enumerate(heads):
        if head is not None and not 0 <= head <= n_words:
            raise CoNLLUError(name, word_lines[i], f"HEAD {head} out of range 0..{n_words} (word {i + 1})")
    if all(head is not None for head in heads):
        _check_tree(heads, word_lines, name, start_line)  # type: ignore[arg-type]
    token_list = TokenList(tokens, metadata_from_comments(comments), default_fields=FIELDS)
    return Sentence(token_list, source=name, line=start_line, comments=comments)


def _check_tree(heads: list[int], word_lines: list[int], name: str, start_line: int) -> None:
    roots = [i + 1 for i, head in enumerate(heads) if head == 0]
    if not roots:
        raise CoNLLUError(name, start_line, "no word is attached to the root (HEAD 0)")
    if len(roots) > 1:
        warnings.warn(
            f"{name}:{start_line}: sentence has {len(roots)} roots (words {', '.join(map(str, roots))})",
            MultipleRootsWarning,
            stacklevel=4,
        )
    # 0 = unvisited, 1 = on the current path, 2 = known to reach the root
    state = [0] * (len(heads) + 1)
    state[0] = 2
    for start in range(1, len(heads) + 1):
        path = []
        node = start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node - 1]
        if state[node] == 1:
            cycle = path[path.index(node) :] + [node]
            raise CoNLLUError(
                name,
                word_lines[node - 1],
                f"cycle in the head graph: {' -> '.join(map(str, cycle))}",
            )
        for visited in path:
            state[visited] = 2


def iter_conllu(source: PathOrStream, *, name: str | None = None, require_heads: bool = True) -> Iterator[Sentence]:
    """Yield the sentences of a CoNLL-U file or stream one at a time (flat memory).

    Args:
        source: a path, or an open stream (binary streams give exact line numbers for
            encoding errors; pass ``sys.stdin.buffer`` rather than ``sys.stdin``).
        name: the name used in error messages and ``Sentence.source`` (default: the path,
            or the stream's ``name``).
        require_heads: when false, HEAD may be ``_`` (input that is still to be parsed).

    Raises:
        CoNLLUError: on the first malformed sentence (file and line in the message).

    Warns:
        MultipleRootsWarning: for sentences with more than one root.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        src_name = name if name is not None else str(source)
        with open(path, "rb") as fh:
            for block in _iter_blocks(_decode_lines(bounded_lines(fh), src_name), src_name):
                yield _parse_block(block, src_name, require_heads)
        return
    src_name = _stream_name(source, name)
    for block in _iter_blocks(_decode_lines(bounded_lines(source), src_name), src_name):
        yield _parse_block(block, src_name, require_heads)


def read_conllu(
    source: PathOrStream, *, name: str | None = None, require_heads: bool = True, allow_empty: bool = True
) -> list[Sentence]:
    """Read all sentences of a CoNLL-U file or stream (see :func:`iter_conllu`).

    An empty input gives ``[]``, or raises :class:`NoSentencesError` when
    ``allow_empty`` is false.
    """
    sentences = list(iter_conllu(source, name=name, require_heads=require_heads))
    if not sentences and not allow_empty:
        src_name = (
            name
            if name is not None
            else (str(source) if isinstance(source, (str, os.PathLike)) else _stream_name(source, None))
        )
        raise NoSentencesError(src_name)
    return sentences


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
