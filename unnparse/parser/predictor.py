"""What every parser shares, one model or an ensemble: the prediction pipeline from sentences (or raw text) to
parsed sentences, streamed chunk by chunk, with over-long sentences parsed in pieces.

A :class:`Predictor` supplies one thing, :meth:`Predictor._predict_batch` (heads, labels, tags and marginals of a
batch), and its device; :class:`~unnparse.parser.parser.Parser` (one network) and
:class:`~unnparse.parser.ensemble.ParserEnsemble` (several) implement it, and
:func:`unnparse.parser.loading.load` loads either from a model directory.
"""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor

from unnparse.conllu.sentence import TAG_COLUMNS, Sentence
from unnparse.parser.batching import inference_batches
from unnparse.parser.features import Featurizer
from unnparse.parser.long_sentences import (
    DEFAULT_MAX_WORDS,
    LongSentenceWarning,
    ParseMemoryError,
    check_max_words,
    is_out_of_memory,
    join_pieces,
    piece_sentences,
    piece_spans,
    split_message,
)
from unnparse.runtime import autocast, check_precision, resolve_precision
from unnparse.text.multiword import expand_multiword
from unnparse.text.raw_text import iter_sentences_from_text, sentences_from_tokenized
from unnparse.text.trained_tokenizer import TrainedTokenizer

__all__ = ["CHUNK_WORDS", "BatchPrediction", "ParsedSentence", "Predictor"]

#: Words of the sentences that :meth:`Predictor.predict` holds at a time (besides ``chunk_sentences``).
CHUNK_WORDS = 100_000
#: What :meth:`Predictor._predict_units` gives for one sentence: heads, relation names, tags by column, marginals.
_UnitPrediction = tuple[list[int], list[str], dict[str, list[str]], list[list[float]] | None]


@dataclass
class BatchPrediction:
    """What a parser predicts for one batch: ``heads`` and ``rels`` [B, N+1] (ids), ``tags`` by column [B, N+1],
    and the arc marginals [B, N+1, N+1] when asked for."""

    heads: Tensor
    rels: Tensor
    tags: dict[str, Tensor]
    marginals: Tensor | None = None


@dataclass
class ParsedSentence:
    """A parsed sentence, with the arc marginals Y when asked for ([n, n+1]: row = dependent, column = head)."""

    sentence: Sentence
    marginals: list[list[float]] | None = None


class Predictor(ABC):
    """A parser as its users see it: labels (``featurizer``), ``config``, the encoder's arithmetic (``precision``),
    an optional trained ``tokenizer``, and the prediction pipeline (:meth:`predict`, :meth:`parse`,
    :meth:`text_sentences`).

    ``precision`` (``auto``, ``float32``, ``bfloat16`` or ``int8``) is the arithmetic of the encoder when parsing:
    ``auto`` is bfloat16 on CUDA and float32 on the CPU (see :func:`unnparse.runtime.resolve_precision`);
    ``bfloat16`` on a CPU with native bfloat16 (AMX) parses faster (1.2-1.4x end to end on the benchmark
    treebanks); ``int8`` (CPU only) parses with a copy of the network whose LSTMs and linear layers have int8
    weights (:func:`unnparse.runtime.quantize_int8`, made when first needed). The UNN iterations and the tree
    structures always run in float32.
    """

    def __init__(self, featurizer: Featurizer, config: dict[str, Any], *, precision: str = "auto") -> None:
        self.featurizer = featurizer
        self.config = config
        self.precision = precision
        #: The tokenizer and sentence splitter learnt from the training treebank (None: the rule-based one).
        self.tokenizer: TrainedTokenizer | None = None
        #: The training treebank's multiword tokens (lowercased form → words), for raw text split by the rules.
        self.multiword: dict[str, list[str]] = _multiword_entries(config.get("multiword"))

    @property
    def precision(self) -> str:
        """``auto``, ``float32``, ``bfloat16`` or ``int8``: the arithmetic when parsing."""
        return self._precision

    @precision.setter
    def precision(self, name: str) -> None:
        self._precision = check_precision(name, parsing=True)

    @property
    @abstractmethod
    def device(self) -> torch.device:
        """Where the networks are."""

    @abstractmethod
    def save(self, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None) -> Path:
        """Write the model directory (atomically as a whole)."""

    @abstractmethod
    def _to_eval_mode(self) -> None:
        """Put the networks in evaluation mode (no dropout)."""

    @abstractmethod
    def _predict_batch(self, sentences: Sequence[Sentence], idx: Sequence[int], marginals: bool) -> BatchPrediction:
        """Heads, labels, tags (and arc marginals when asked) of one batch of sentences."""

    @torch.no_grad()
    def predict(
        self,
        sentences: Iterable[Sentence],
        *,
        batch_tokens: int = 4000,
        marginals: bool = False,
        chunk_sentences: int = 2000,
        max_words: int = DEFAULT_MAX_WORDS,
        on_split: Callable[[str], None] | None = None,
    ) -> Iterator[ParsedSentence]:
        """Parse sentences, yielding results in input order as soon as each chunk is done (streaming).

        A sentence longer than ``max_words`` words is parsed in pieces joined into one tree (the policy of
        :mod:`unnparse.parser.long_sentences`; such a sentence has no marginals), and ``on_split`` is called with
        a one-line notice naming its file and line (default: a :class:`LongSentenceWarning`), so that peak memory
        is bounded by ``batch_tokens`` and ``max_words`` whatever the input. Chunks hold at most
        ``chunk_sentences`` sentences and about :data:`CHUNK_WORDS` words.

        Raises:
            ValueError: ``max_words`` below 2.
            ParseMemoryError: a batch ran out of memory (a ValueError naming the file and line of its longest
                sentence).
        """
        check_max_words(max_words)
        self._to_eval_mode()
        chunk: list[Sentence] = []
        words = 0
        for sentence in sentences:
            chunk.append(sentence)
            words += len(sentence)
            if len(chunk) >= chunk_sentences or words >= CHUNK_WORDS:
                yield from self._predict_chunk(chunk, batch_tokens, marginals, max_words, on_split)
                chunk, words = [], 0
        if chunk:
            yield from self._predict_chunk(chunk, batch_tokens, marginals, max_words, on_split)

    def _predict_chunk(
        self,
        chunk: list[Sentence],
        batch_tokens: int,
        marginals: bool,
        max_words: int = DEFAULT_MAX_WORDS,
        on_split: Callable[[str], None] | None = None,
    ) -> list[ParsedSentence]:
        # what is parsed: each sentence, or the pieces of an over-long one; plan: (first unit, spans or None)
        units: list[Sentence] = []
        plan: list[tuple[int, list[tuple[int, int]] | None]] = []
        for sentence in chunk:
            if len(sentence) <= max_words:
                plan.append((len(units), None))
                units.append(sentence)
                continue
            spans = piece_spans(len(sentence), max_words)
            notice = split_message(sentence, len(spans), max_words, marginals=marginals)
            if on_split is None:
                warnings.warn(notice, LongSentenceWarning, stacklevel=4)
            else:
                on_split(notice)
            plan.append((len(units), spans))
            units.extend(piece_sentences(sentence, spans))
        parsed = self._predict_units(units, batch_tokens, marginals)
        results: list[ParsedSentence] = []
        for sentence, (first, spans) in zip(chunk, plan, strict=True):
            if spans is None:
                heads, labels, tags, m = parsed[first]
            else:
                parts = parsed[first : first + len(spans)]
                heads, labels = join_pieces(spans, [p[0] for p in parts], [p[1] for p in parts])
                tags = {name: [t for p in parts for t in p[2][name]] for name in parts[0][2]}
                m = None
            results.append(ParsedSentence(sentence.with_predictions(heads, labels, tags=tags), m))
        return results

    def _predict_units(self, units: list[Sentence], batch_tokens: int, marginals: bool) -> list[_UnitPrediction]:
        """(heads, relation names, tags by column, marginal rows or None) of each sentence, in order."""
        out: list[_UnitPrediction | None] = [None] * len(units)
        device = self.device
        dtype = resolve_precision(self.precision, device)
        lengths = [len(s) for s in units]
        rel_names = self.featurizer.rels.itos
        # sorted by length, cut where the budget is reached or padding would pass a quarter of the real positions
        for idx in inference_batches(lengths, batch_tokens):
            try:
                with autocast(device, dtype):  # the UNN and the trees inside run in float32 regardless
                    pred = self._predict_batch([units[i] for i in idx], idx, marginals)
            except (MemoryError, RuntimeError) as err:
                if not is_out_of_memory(err):
                    raise
                longest = units[max(idx, key=lambda i: lengths[i])]
                raise ParseMemoryError(
                    f"{longest.source}:{longest.line}: out of memory parsing {len(idx)} sentence(s) of up to "
                    f"{len(longest):,} words: lower --max-words (or --batch-tokens)"
                ) from None
            heads_l, rels_l = pred.heads.cpu().tolist(), pred.rels.cpu().tolist()
            tags_l = {name: ids.cpu().tolist() for name, ids in pred.tags.items()}
            marg = pred.marginals.float().cpu() if pred.marginals is not None else None
            for row, i in enumerate(idx):
                n = lengths[i]
                labels = [rel_names[r] for r in rels_l[row][1 : n + 1]]
                tags = {
                    name: self.featurizer.decode_tags(name, ids[row][1 : n + 1], units[i].words)
                    for name, ids in tags_l.items()
                }
                m = None if marg is None else _marginal_rows(marg[row], n)
                out[i] = (heads_l[row][1 : n + 1], labels, tags, m)
        assert all(o is not None for o in out)
        return [o for o in out if o is not None]

    def text_sentences(
        self, lines: Iterable[str], *, source: str = "<stdin>", tokenizer: str = "auto"
    ) -> Iterator[Sentence]:
        """Split and tokenize raw text (an iterable of lines, streamed): with the tokenizer learnt from the
        treebank (``tokenizer="model"``, or ``"auto"`` when the model has one) or the rule-based one (``"rules"``).

        Raises:
            ValueError: ``tokenizer="model"`` for a model without a trained tokenizer, or an unknown name.
        """
        if tokenizer not in ("auto", "model", "rules"):
            raise ValueError(f"tokenizer must be auto, model or rules, not {tokenizer!r}")
        if tokenizer == "model" and self.tokenizer is None:
            raise ValueError("this model has no trained tokenizer (train one with `unnparse train-tokenizer`)")
        if tokenizer != "rules" and self.tokenizer is not None:
            return self.tokenizer.iter_sentences(lines, source=source)
        sentences = iter_sentences_from_text(lines, source=source)
        return expand_multiword(sentences, self.multiword) if self.multiword else sentences

    def input_sentences(
        self, stream: IO[bytes], input_format: str = "text", *, name: str = "<stdin>", tokenizer: str = "auto"
    ) -> Iterator[Sentence]:
        """The sentences to parse in a binary stream (as ``unnparse parse --input-format`` reads it), streamed:
        ``text`` split and tokenized by :meth:`text_sentences` with ``tokenizer``, ``tokenized`` (one sentence per
        line, words separated by whitespace) or ``conllu`` (HEAD and DEPREL not needed); ``name`` names the input
        in errors and in each sentence's source.

        Raises:
            ValueError: an unknown format, or see :meth:`text_sentences`.
            CoNLLUError: invalid UTF-8 or CoNLL-U, over-long lines or sentences (naming the line), while reading.
        """
        from unnparse.conllu.reader import iter_conllu
        from unnparse.text.raw_text import iter_sentences_from_tokenized, read_lines, read_text

        if input_format == "conllu":
            return iter_conllu(stream, name=name, require_heads=False)
        if input_format == "text":
            return self.text_sentences(read_text(stream, name), source=name, tokenizer=tokenizer)
        if input_format == "tokenized":
            return iter_sentences_from_tokenized(read_lines(stream, name), source=name)
        raise ValueError(f"unknown input format {input_format!r}: expected text, tokenized or conllu")

    def parse(
        self, inputs: str | Sequence[str] | Sequence[Sequence[str]], *, batch_tokens: int = 4000
    ) -> list[Sentence]:
        """Parse raw text (a string, or a list of sentence strings) or pre-tokenized sentences (lists of words).

        Raw text is split and tokenized by the model's trained tokenizer when it has one (see
        :meth:`text_sentences`)."""
        if isinstance(inputs, str):
            sentences = list(self.text_sentences(inputs.split("\n"), source="<text>"))
        elif inputs and not isinstance(inputs[0], str):
            sentences = [Sentence.from_words(list(words), source="<tokens>") for words in inputs]
        else:  # each string is a paragraph of its own: sentences never run across strings, ids run on
            joined = "\n\n".join(str(text) for text in inputs)
            sentences = list(self.text_sentences(joined.split("\n"), source="<text>"))
        return [p.sentence for p in self.predict(sentences, batch_tokens=batch_tokens)]

    def reparse(
        self,
        gold: Sequence[Sentence],
        *,
        raw_text: bool = False,
        tokenizer: str = "auto",
        source: str = "<gold>",
        batch_tokens: int = 6000,
        max_words: int = DEFAULT_MAX_WORDS,
        on_split: Callable[[str], None] | None = None,
    ) -> tuple[list[Sentence], tuple[str, ...]]:
        """Parse ``gold`` again to score this parser on it (as ``unnparse evaluate --model`` does): its words, with
        every tag and lemma column cleared first (so that a column this parser does not predict scores as missing,
        not as the gold file's own), or with ``raw_text`` its text from scratch (split and tokenized as
        :meth:`text_sentences` does with ``tokenizer``; ``source`` names the text). Returns the parses and the tag
        columns to score (those this parser predicts; none for raw text). See :meth:`predict` for the other
        arguments."""
        if raw_text:
            from unnparse.evaluation.text_alignment import corpus_text

            lines = corpus_text(gold).split("\n")
            sentences: Iterable[Sentence] = self.text_sentences(lines, source=f"{source} (text)", tokenizer=tokenizer)
            columns: tuple[str, ...] = ()
        else:
            columns = tuple(self.featurizer.tags)
            sentences = [sentence.without_tags(TAG_COLUMNS) for sentence in gold]
        results = self.predict(sentences, batch_tokens=batch_tokens, max_words=max_words, on_split=on_split)
        return [p.sentence for p in results], columns

    def parse_tokenized_lines(self, lines: Iterable[str]) -> Iterator[Sentence]:
        """Parse one whitespace-tokenized sentence per line."""
        for p in self.predict(sentences_from_tokenized(lines)):
            yield p.sentence


def _multiword_entries(value: object) -> dict[str, list[str]]:
    """The entries of a config's ``multiword`` dictionary that are a form and its words (others are left out)."""
    if not isinstance(value, dict):
        return {}
    return {
        form: list(words)
        for form, words in value.items()
        if isinstance(form, str)
        and isinstance(words, list)
        and len(words) > 1
        and all(isinstance(w, str) for w in words)
    }


def _marginal_rows(marg: Tensor, n: int) -> list[list[float]]:
    """Rows = dependents 1..n, columns = heads 0..n: P(head → dependent)."""
    return [[round(float(v), 4) for v in marg[: n + 1, d]] for d in range(1, n + 1)]
