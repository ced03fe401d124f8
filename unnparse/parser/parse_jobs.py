"""Parsing whole inputs: a stream of text, tokenized sentences or CoNLL-U parsed into a stream of output records
(:func:`parse_stream`, what ``unnparse parse`` runs), and one file parsed on several devices at once
(:func:`parse_on_devices`, ``unnparse parse --devices``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from unnparse.conllu.sentence import TAG_COLUMNS, Sentence
from unnparse.io_utils import atomic_output
from unnparse.parser.long_sentences import DEFAULT_MAX_WORDS
from unnparse.parser.output_formats import STREAMABLE_FORMATS, document_end, document_start, render
from unnparse.parser.predictor import ParsedSentence, Predictor
from unnparse.parser.sharding import DEFAULT_BLOCK, parse_shard_spec, take_shard

__all__ = [
    "ParseCount",
    "ParseOptions",
    "looks_like_conllu",
    "parse_file",
    "parse_on_devices",
    "parse_stream",
    "read_sentences",
    "write_parses",
]

#: Sentences read ahead and parsed together (bounded memory on any input).
CHUNK_SENTENCES = 256


@dataclass(frozen=True)
class ParseOptions:
    """How to read, parse and write (the options of ``unnparse parse``).

    Attributes:
        input_format: ``text`` (raw text), ``tokenized`` (one sentence per line, tokens split by spaces) or
            ``conllu``.
        output_format: ``conllu``, ``json`` (one object per line) or ``tree``.
        marginals: add the arc probabilities.
        batch_tokens: words per batch.
        max_words: longer sentences are parsed in pieces (a warning says which).
        tokenizer: ``auto``, ``trained`` or ``rules`` (raw text only).
        shard: ``"I/N"``: parse only the I-th of N shards of the input (blocks of ``shard_block`` sentences).
        shard_block: sentences per block dealt to the shards.
        clear_tags: empty the UPOS, XPOS, FEATS and LEMMA of CoNLL-U input first, so that the model predicts them
            (by default a value the input has is kept).
    """

    input_format: str = "text"
    output_format: str = "conllu"
    marginals: bool = False
    batch_tokens: int = 4000
    max_words: int = DEFAULT_MAX_WORDS
    tokenizer: str = "auto"
    shard: str | None = None
    shard_block: int = DEFAULT_BLOCK
    clear_tags: bool = False


@dataclass
class ParseCount:
    """Sentences and words parsed."""

    sentences: int = 0
    words: int = 0


def parse_stream(
    parser: Predictor,
    raw: BinaryIO,
    out: TextIO,
    options: ParseOptions,
    *,
    name: str = "<stdin>",
    on_parsed: Callable[[ParseCount], None] | None = None,
    on_split: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    flush_every: int = CHUNK_SENTENCES,
) -> ParseCount:
    """Read ``raw`` (bytes: decoded and checked as UTF-8, see :meth:`Predictor.input_sentences`), parse it in
    chunks and write each parse to ``out`` as it comes (flushed every ``flush_every`` sentences); returns the
    counts. ``on_parsed`` sees the counts after every sentence, ``on_split`` the warning for a sentence parsed in
    pieces, ``on_warning`` the others (text or tokenized input that looks like CoNLL-U).

    Raises:
        CoNLLUError: the input is not readable (not UTF-8, or malformed CoNLL-U: one line naming ``name`` and
            the line).
        ValueError: a malformed ``shard``.
    """
    if options.shard is not None and options.output_format not in STREAMABLE_FORMATS:
        raise ValueError(f"--shard needs an output format that can be merged: {', '.join(STREAMABLE_FORMATS)}")
    sentences = read_sentences(parser, raw, options, name=name, on_warning=on_warning)
    results = parser.predict(
        sentences,
        batch_tokens=options.batch_tokens,
        marginals=options.marginals,
        chunk_sentences=CHUNK_SENTENCES,
        max_words=options.max_words,
        on_split=on_split,
    )
    return write_parses(results, out, options.output_format, on_parsed=on_parsed, flush_every=flush_every)


def read_sentences(
    parser: Predictor,
    raw: BinaryIO,
    options: ParseOptions,
    *,
    name: str = "<stdin>",
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[Sentence]:
    """The sentences that :func:`parse_stream` parses from ``raw``, streamed: read as ``options.input_format``
    (split and tokenized with ``options.tokenizer`` for text), their tags cleared with ``options.clear_tags``, the
    shard ``options.shard`` taken. ``on_warning`` hears that text or tokenized input looks like CoNLL-U.

    Raises:
        CoNLLUError: the input is not readable (while iterating: one line naming ``name`` and the line).
        ValueError: a malformed ``shard``, an unknown format or tokenizer.
    """
    if options.input_format != "conllu":
        raw, head = _peeked(raw)
        if on_warning is not None and looks_like_conllu(head):
            on_warning(
                f"{name} looks like CoNLL-U but is read as {options.input_format}: give --input-format conllu to parse "
                "its words"
            )
    sentences = parser.input_sentences(raw, options.input_format, name=name, tokenizer=options.tokenizer)
    if options.clear_tags:
        sentences = (sentence.without_tags(TAG_COLUMNS) for sentence in sentences)
    if options.shard is not None:
        index, count = parse_shard_spec(options.shard)
        sentences = take_shard(sentences, index, count, block=options.shard_block)
    return sentences


def write_parses(
    results: Iterable[ParsedSentence],
    out: TextIO,
    output_format: str,
    *,
    on_parsed: Callable[[ParseCount], None] | None = None,
    flush_every: int = CHUNK_SENTENCES,
) -> ParseCount:
    """Write parses to ``out`` as ``unnparse parse`` does in ``output_format`` (the document's start, each parse,
    its end; flushed every ``flush_every`` sentences), and return the counts (``on_parsed`` sees them after every
    sentence)."""
    done = ParseCount()
    out.write(document_start(output_format))
    for parsed in results:
        out.write(render(parsed, output_format))
        done.sentences += 1
        done.words += len(parsed.sentence)
        if on_parsed is not None:
            on_parsed(done)
        if flush_every and done.sentences % flush_every == 0:
            out.flush()
    out.write(document_end(output_format))
    out.flush()
    return done


def parse_file(
    parser: Predictor,
    input_file: str | os.PathLike[str] | BinaryIO,
    output_file: str | os.PathLike[str] | TextIO,
    options: ParseOptions,
    *,
    name: str | None = None,
    on_parsed: Callable[[ParseCount], None] | None = None,
    on_split: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> ParseCount:
    """:func:`parse_stream` from a file (a path, or an open binary stream such as stdin's) to a file (a path,
    written atomically: a failure leaves any previous file as it was; or an open text stream such as stdout)."""
    opened: BinaryIO | None = None
    if isinstance(input_file, (str, os.PathLike)):
        opened = open(input_file, "rb")  # noqa: SIM115 - closed below
        raw: BinaryIO = opened
        name = name or str(input_file)
    else:
        raw = input_file

    def run(out: TextIO) -> ParseCount:
        return parse_stream(
            parser,
            raw,
            out,
            options,
            name=name or "<stdin>",
            on_parsed=on_parsed,
            on_split=on_split,
            on_warning=on_warning,
        )

    try:
        if isinstance(output_file, (str, os.PathLike)):
            with atomic_output(Path(output_file), "w") as fh:
                return run(fh)
        return run(output_file)
    finally:
        if opened is not None:
            opened.close()


def _peeked(raw: BinaryIO, size: int = 4096) -> tuple[BinaryIO, bytes]:
    """``raw`` as a stream that still starts at its beginning, and its first bytes (at most ``size``; what is there
    already, so that a slow stream such as an interactive stdin is not waited for)."""
    head = getattr(raw, "read1", raw.read)(size)
    return io.BufferedReader(_Prefixed(head, raw)), head  # type: ignore[arg-type]


class _Prefixed(io.RawIOBase):
    """``prefix`` followed by what is left of ``rest``."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix, self._rest = memoryview(prefix), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def looks_like_conllu(head: bytes) -> bool:
    """Whether the first bytes of an input look like CoNLL-U: its first line that is not blank is a sentence's
    comment (``# sent_id``, ``# text``, ``# newdoc``, ``# newpar``) or a word line of ten tab-separated columns."""
    text = head.decode("utf-8", errors="replace")
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith(("# sent_id", "# text", "# newdoc", "# newpar")):
            return True
        columns = line.split("\t")
        return len(columns) == 10 and columns[0].split("-")[0].split(".")[0].isdigit()
    return False


def parse_on_devices(
    model_dir: str | os.PathLike[str],
    input_file: str | os.PathLike[str],
    devices: Sequence[str],
    options: ParseOptions,
    *,
    output_file: str | os.PathLike[str] | None = None,
    precision: str = "auto",
    threads: int | None = None,
) -> int:
    """Parse ``input_file`` with one worker process per device (each on a shard of the file, ``threads`` CPU
    threads: by default its share of :func:`~unnparse.cpu_threads.default_threads`), merged back into input order
    and written atomically to ``output_file`` (or stdout) once all are done; returns the number of sentences.

    Raises:
        ValueError: ``options.shard`` is set (the devices make the shards), no device named, or an unknown one.
        FileNotFoundError: no ``input_file``.
        RuntimeError: a worker failed (its one-line error, naming the worker).
    """
    from unnparse.cpu_threads import default_threads
    from unnparse.parser.multi_device import check_devices, run_on_devices

    if options.shard is not None:
        raise ValueError("--devices and --shard cannot be combined: --devices makes the shards itself")
    if options.output_format not in STREAMABLE_FORMATS:
        raise ValueError(f"--devices needs an output format that can be merged: {', '.join(STREAMABLE_FORMATS)}")
    if not Path(input_file).is_file():
        raise FileNotFoundError(f"{input_file}: no such file")
    names = check_devices(devices)
    args = ["--model", str(model_dir), "--input-format", options.input_format]
    args += ["--output-format", options.output_format, "--batch-tokens", str(options.batch_tokens)]
    args += ["--max-words", str(options.max_words), "--precision", precision, "--tokenizer", options.tokenizer]
    args += ["--marginals"] if options.marginals else []
    args += ["--clear-tags"] if options.clear_tags else []
    args += ["--no-progress", "--threads", str(threads or max(1, default_threads() // len(names)))]
    return run_on_devices(
        args,
        Path(input_file),
        names,
        output_format=options.output_format,
        block=options.shard_block,
        output_file=Path(output_file) if output_file is not None else None,
    )
