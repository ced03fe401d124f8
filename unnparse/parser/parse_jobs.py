"""Parsing whole inputs: a stream of text, tokenized sentences or CoNLL-U parsed into a stream of output records
(:func:`parse_stream`, what ``unnparse parse`` runs), and one file parsed on several devices at once
(:func:`parse_on_devices`, ``unnparse parse --devices``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from unnparse.io_utils import atomic_output
from unnparse.parser.long_sentences import DEFAULT_MAX_WORDS
from unnparse.parser.output_formats import render
from unnparse.parser.predictor import Predictor
from unnparse.parser.sharding import DEFAULT_BLOCK, parse_shard_spec, take_shard

__all__ = ["ParseCount", "ParseOptions", "parse_file", "parse_on_devices", "parse_stream"]

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
    """

    input_format: str = "text"
    output_format: str = "conllu"
    marginals: bool = False
    batch_tokens: int = 4000
    max_words: int = DEFAULT_MAX_WORDS
    tokenizer: str = "auto"
    shard: str | None = None
    shard_block: int = DEFAULT_BLOCK


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
    flush_every: int = CHUNK_SENTENCES,
) -> ParseCount:
    """Read ``raw`` (bytes: decoded and checked as UTF-8, see :meth:`Predictor.input_sentences`), parse it in
    chunks and write each parse to ``out`` as it comes (flushed every ``flush_every`` sentences); returns the
    counts. ``on_parsed`` sees the counts after every sentence, ``on_split`` the warning for a sentence parsed in
    pieces.

    Raises:
        CoNLLUError: the input is not readable (not UTF-8, or malformed CoNLL-U: one line naming ``name`` and
            the line).
        ValueError: a malformed ``shard``.
    """
    sentences = parser.input_sentences(raw, options.input_format, name=name, tokenizer=options.tokenizer)
    if options.shard is not None:
        index, count = parse_shard_spec(options.shard)
        sentences = take_shard(sentences, index, count, block=options.shard_block)
    results = parser.predict(
        sentences,
        batch_tokens=options.batch_tokens,
        marginals=options.marginals,
        chunk_sentences=CHUNK_SENTENCES,
        max_words=options.max_words,
        on_split=on_split,
    )
    done = ParseCount()
    for parsed in results:
        out.write(render(parsed, options.output_format))
        done.sentences += 1
        done.words += len(parsed.sentence)
        if on_parsed is not None:
            on_parsed(done)
        if flush_every and done.sentences % flush_every == 0:
            out.flush()
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
        return parse_stream(parser, raw, out, options, name=name or "<stdin>", on_parsed=on_parsed, on_split=on_split)

    try:
        if isinstance(output_file, (str, os.PathLike)):
            with atomic_output(Path(output_file), "w") as fh:
                return run(fh)
        return run(output_file)
    finally:
        if opened is not None:
            opened.close()


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
    if not Path(input_file).is_file():
        raise FileNotFoundError(f"{input_file}: no such file")
    names = check_devices(devices)
    args = ["--model", str(model_dir), "--input-format", options.input_format]
    args += ["--output-format", options.output_format, "--batch-tokens", str(options.batch_tokens)]
    args += ["--max-words", str(options.max_words), "--precision", precision, "--tokenizer", options.tokenizer]
    args += ["--marginals"] if options.marginals else []
    args += ["--no-progress", "--threads", str(threads or max(1, default_threads() // len(names)))]
    return run_on_devices(
        args,
        Path(input_file),
        names,
        output_format=options.output_format,
        block=options.shard_block,
        output_file=Path(output_file) if output_file is not None else None,
    )
