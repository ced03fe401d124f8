"""The user-facing parser: build from training data, save/load a model directory, parse sentences.

>>> parser = Parser.load("models/UD_English-Sample")          # doctest: +SKIP
>>> for sentence in parser.parse(["The cat sat on the mat."]):  # doctest: +SKIP
...     print(sentence.to_conllu())
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import unnparse
from unnparse.model_files import (
    CONFIG_FILE,
    FILES_KEY,
    Limit,
    ModelFileError,
    canonical_sha256,
    check_config,
    commit_config,
    load_config,
    load_weights,
    verified_dir,
    write_data_dir,
    write_weights,
)
from unnparse.parser.batching import inference_batches
from unnparse.parser.conllu_data import TAG_COLUMNS, Sentence
from unnparse.parser.encoders import TransformerEncoder, build_encoder
from unnparse.parser.features import ROOT_CHAR, Featurizer
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
from unnparse.parser.model import ParserModel
from unnparse.parser.text_input import iter_sentences_from_text, sentences_from_tokenized
from unnparse.parser.trained_tokenizer import TrainedTokenizer
from unnparse.parser.vocab import PAD, UNK, Vocab
from unnparse.runtime import autocast, check_precision, resolve_device, resolve_precision

__all__ = ["BatchPrediction", "ParsedSentence", "Parser", "default_config", "resolve_device"]

#: Words of the sentences that :meth:`Parser.predict` holds at a time (besides ``chunk_sentences``).
CHUNK_WORDS = 100_000
#: What :meth:`Parser._predict_units` gives for one sentence: heads, relation names, tags by column, marginal rows.
_UnitPrediction = tuple[list[int], list[str], dict[str, list[str]], list[list[float]] | None]

FORMAT_VERSION = 2  # 2: unpacked BiLSTM weights, UPOS tagger, relation classifier reading X
ENCODER_DIR = "encoder"  # the encoder's files in a model directory written before manifests (now encoder-<hex>/)

_SIZE = Limit(int, 1, 65536)
_RATE = Limit(float, 0.0, 1.0, open_high=True)
_LOSS = Limit(float, 0.0, 1e6, optional=True)
_SPECIALS = Limit(list, high=16)
#: The accepted values of a parser's config.json, checked on load before anything is built from them: generous
#: for every real model, small enough that a hand-edited or hostile config cannot hang or exhaust the machine.
CONFIG_LIMITS: dict[str, Limit] = {
    "model.unn_iter": Limit(int, 1, 100),
    "model.hidden": _SIZE,
    "model.rel_hidden": _SIZE,
    "model.dropout": _RATE,
    "model.single_root": Limit(bool, optional=True),
    "model.upos_loss": _LOSS,
    "model.xpos_loss": _LOSS,
    "model.feats_loss": _LOSS,
    "model.rel_from_x": Limit(bool, optional=True),
    "model.rel_distance": Limit(int, 0, 4096, optional=True),
    "model.arc_position": Limit(bool, optional=True),
    "model.tag_layer": Limit(int, 0, 64, optional=True),
    "encoder.type": Limit(str, choices=("scratch", "transformer")),
    "vocab.rels.items": Limit(list, high=100_000),
    "vocab.rels.specials": _SPECIALS,
    "vocab.words.items": Limit(list, high=10_000_000, optional=True),
    "vocab.words.specials": Limit(list, high=16, optional=True),
    "vocab.chars.items": Limit(list, high=1_000_000, optional=True),
    "vocab.chars.specials": Limit(list, high=16, optional=True),
    **{f"vocab.{name}.items": Limit(list, high=1_000_000, optional=True) for name in TAG_COLUMNS},
    **{f"vocab.{name}.specials": Limit(list, high=16, optional=True) for name in TAG_COLUMNS},
}
#: ... and those of each encoder type.
ENCODER_LIMITS: dict[str, dict[str, Limit]] = {
    "scratch": {
        "encoder.word_dim": _SIZE,
        "encoder.char_dim": _SIZE,
        "encoder.char_filters": _SIZE,
        "encoder.hidden": _SIZE,
        "encoder.layers": Limit(int, 1, 64),
        "encoder.dropout": _RATE,
        "encoder.word_dropout": _RATE,
        "encoder.min_word_freq": Limit(int, 1, 1 << 31, optional=True),
        "encoder.char_encoder": Limit(str, choices=("cnn", "lstm"), optional=True),
    },
    "transformer": {
        "encoder.name": Limit(str),
        "encoder.pooling": Limit(str, choices=("first", "mean")),
        "encoder.freeze": Limit(bool),
    },
}


def default_config(
    *,
    encoder: str = "scratch",
    unn_iter: int = 1,
    hidden: int = 256,
    rel_hidden: int = 100,
    dropout: float = 0.33,
    pooling: str = "first",
    freeze_encoder: bool = False,
    lstm_hidden: int = 200,
    lstm_layers: int = 3,
    char_encoder: str = "cnn",
    upos_loss: float = 1.0,
    xpos_loss: float = 0.0,
    feats_loss: float = 0.0,
    rel_from_x: bool = True,
    rel_distance: int = 0,
    arc_position: bool = False,
    tag_layer: int = 0,
) -> dict[str, Any]:
    """The model part of a parser config (everything that fixes the network's shape and behaviour)."""
    if encoder == "scratch":
        enc: dict[str, Any] = {
            "type": "scratch",
            "word_dim": 100,
            "char_dim": 50,
            "char_filters": 100,
            "hidden": lstm_hidden,
            "layers": lstm_layers,
            "dropout": dropout,
            "word_dropout": 0.2,
            "min_word_freq": 2,
            "char_encoder": char_encoder,
        }
    else:
        enc = {"type": "transformer", "name": encoder, "pooling": pooling, "freeze": freeze_encoder}
    return {
        "kind": "parser",
        "format_version": FORMAT_VERSION,
        "encoder": enc,
        "model": {
            "unn_iter": unn_iter,
            "hidden": hidden,
            "rel_hidden": rel_hidden,
            "dropout": dropout,
            "single_root": True,
            "upos_loss": upos_loss,
            "xpos_loss": xpos_loss,
            "feats_loss": feats_loss,
            "rel_from_x": rel_from_x,
            "rel_distance": rel_distance,
            "arc_position": arc_position,
            "tag_layer": tag_layer,
        },
    }


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


class Parser:
    """A trained (or freshly built) dependency parser: network, vocabularies and config.

    ``precision`` (``auto``, ``float32`` or ``bfloat16``) is the arithmetic of the encoder when parsing: ``auto``
    is bfloat16 on CUDA and float32 on the CPU (see :func:`unnparse.runtime.resolve_precision`); ``bfloat16`` on a
    CPU with native bfloat16 (AMX) parses faster (1.2-1.4x end to end on the benchmark treebanks). The UNN
    iterations and the tree structures always run in float32.
    """

    def __init__(
        self, model: ParserModel, featurizer: Featurizer, config: dict[str, Any], *, precision: str = "auto"
    ) -> None:
        self.model = model
        self.featurizer = featurizer
        self.config = config
        self.precision = precision
        #: The tokenizer and sentence splitter learnt from the training treebank (None: the rule-based one).
        self.tokenizer: TrainedTokenizer | None = None

    @property
    def precision(self) -> str:
        """``auto``, ``float32`` or ``bfloat16``: the encoder's arithmetic when parsing."""
        return self._precision

    @precision.setter
    def precision(self, name: str) -> None:
        self._precision = check_precision(name)

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, config: dict[str, Any], train: Sequence[Sentence], *, trust_remote_code: bool = False) -> Parser:
        """A new parser whose vocabularies come from the training sentences.

        A pretrained encoder's own code (``auto_map``) runs only with ``trust_remote_code``, and even then its
        architecture must be one that transformers implements (a saved model is rebuilt without running code)."""
        rels = Vocab.build((r for s in train for r in (s.deprels or [])), specials=(UNK,))
        words = chars = None
        enc = config["encoder"]
        if enc["type"] == "scratch":
            words = Vocab.build(
                (Featurizer.normalize_word(w) for s in train for w in s.words), min_freq=enc["min_word_freq"]
            )
            chars = Vocab.build((ch for s in train for w in s.words for ch in w), specials=(PAD, UNK, ROOT_CHAR))
        tags: dict[str, Vocab] = {}
        for name in TAG_COLUMNS:  # a tagger for each column with a loss weight that the training data annotates
            if float(config["model"].get(f"{name}_loss", 0.0)) > 0:
                values = [t for s in train for t in s.column(name) if t != "_"]
                if values:
                    tags[name] = Vocab.build(values, specials=(UNK,))
        config = dict(config)
        config["vocab"] = {
            "rels": rels.to_json(),
            "words": None if words is None else words.to_json(),
            "chars": None if chars is None else chars.to_json(),
            **{name: tags[name].to_json() if name in tags else None for name in TAG_COLUMNS},
        }
        encoder = build_encoder(
            config, n_words=len(words or []), n_chars=len(chars or []), trust_remote_code=trust_remote_code
        )
        model = ParserModel(encoder, len(rels), config["model"], tag_sizes={k: len(v) for k, v in tags.items()})
        return cls(model, Featurizer(rels, words, chars, tags=tags), config)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", *, precision: str = "auto"
    ) -> Parser:
        """Load a model directory written by :meth:`save` (no training data needed); ``precision`` as in the class.

        A directory written by :func:`unnparse.parser.ensemble.combine_parsers` loads as a
        :class:`~unnparse.parser.ensemble.ParserEnsemble`, which parses like one parser. Loading never runs code
        from the directory, checks every config value against :data:`CONFIG_LIMITS` and every data file against
        the sizes and hashes that ``config.json`` records (see :mod:`unnparse.model_files`).

        Raises:
            ModelFileError: a missing, corrupt, mismatched or out-of-range part (one line naming the file).
        """
        from unnparse.parser.ensemble import ENSEMBLE_KIND, ParserEnsemble

        if load_config(path).get("kind") == ENSEMBLE_KIND:
            return ParserEnsemble.load(path, device, precision=precision)
        return cls.load_single(path, device, precision=precision)

    @classmethod
    def load_single(
        cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", *, precision: str = "auto"
    ) -> Parser:
        """Load the model directory of one parser (an ensemble's directory is refused: see :meth:`load`)."""
        config = load_config(path, kind="parser")
        cfg_path = Path(path) / CONFIG_FILE
        if config.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(
                f"{cfg_path}: model format {config.get('format_version')} is not supported "
                f"by unnparse {unnparse.__version__} (expects {FORMAT_VERSION})"
            )
        check_config(config, CONFIG_LIMITS, cfg_path)
        check_config(config, ENCODER_LIMITS[config["encoder"]["type"]], cfg_path)
        try:
            vocab = config["vocab"]
            rels = Vocab.from_json(vocab["rels"])
            words = None if vocab.get("words") is None else Vocab.from_json(vocab["words"])
            chars = None if vocab.get("chars") is None else Vocab.from_json(vocab["chars"])
            tags = {name: Vocab.from_json(vocab[name]) for name in TAG_COLUMNS if vocab.get(name) is not None}
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{cfg_path}: incomplete parser config ({err!r})") from None
        saved = verified_dir(path, config, "encoder") if config["encoder"]["type"] == "transformer" else None
        try:
            encoder = build_encoder(config, n_words=len(words or []), n_chars=len(chars or []), saved_dir=saved)
            model = ParserModel(encoder, len(rels), config["model"], tag_sizes={k: len(v) for k, v in tags.items()})
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{cfg_path}: incomplete parser config ({err!r})") from None
        except (RuntimeError, MemoryError) as err:
            reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            raise ModelFileError(f"{cfg_path}: the configured model cannot be built here ({reason})") from None
        load_weights(path, model, config, bound={"vocab": vocab})
        model.eval()
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        model.to(dev)
        parser = cls(model, Featurizer(rels, words, chars, tags=tags), config, precision=precision)
        if config.get("tokenizer") is not None:
            parser.tokenizer = TrainedTokenizer.load(path, config)
            parser.tokenizer.net.to(dev)
        return parser

    def save(self, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None) -> Path:
        """Write the model directory, atomically as a whole: the weights (``model-<hex>.safetensors``, bound to the
        vocabularies by their hash), the encoder's config and tokenizer files (``encoder-<hex>/``) and the trained
        tokenizer's weights first, under content-addressed names, then ``config.json`` naming them with their sizes
        and hashes, then the removal of the data files that the previous model of the directory used (see
        :mod:`unnparse.model_files`). Training state in the directory (checkpoint, metrics, lock) stays."""
        config = dict(self.config)
        config["unnparse_version"] = unnparse.__version__
        if extra:
            config.update(extra)
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        config.pop("tokenizer", None)
        files: dict[str, Any] = {}
        if isinstance(self.model.encoder, TransformerEncoder):
            files["encoder"] = write_data_dir(out, "encoder", self.model.encoder.save_pretrained_files)
        metadata = {"vocab_sha256": canonical_sha256(config["vocab"])}
        files["weights"] = write_weights(out, "weights", self.model.state_dict(), metadata=metadata)
        if self.tokenizer is not None:
            config["tokenizer"], files["tokenizer"] = self.tokenizer.write_weights(out)
        config[FILES_KEY] = files
        commit_config(out, config)
        self.config = config
        return out

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ prediction
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
        self.model.eval()
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
                    name: [self.featurizer.tags[name].itos[t] for t in ids[row][1 : n + 1]]
                    for name, ids in tags_l.items()
                }
                m = None if marg is None else _marginal_rows(marg[row], n)
                out[i] = (heads_l[row][1 : n + 1], labels, tags, m)
        assert all(o is not None for o in out)
        return [o for o in out if o is not None]

    def _predict_batch(self, sentences: Sequence[Sentence], idx: Sequence[int], marginals: bool) -> BatchPrediction:
        """Heads, labels, tags (and arc marginals when asked) of one batch of sentences."""
        batch = self.featurizer.batch(sentences, idx, gold=False).to_device(self.device)
        out = self.model(batch, marginals=marginals)
        heads, rels = self.model.decode(out, batch)
        return BatchPrediction(heads, rels, self.model.predict_tags(out, batch), out.marginals)

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
        return iter_sentences_from_text(lines, source=source)

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

    def parse_tokenized_lines(self, lines: Iterable[str]) -> Iterator[Sentence]:
        """Parse one whitespace-tokenized sentence per line."""
        for p in self.predict(sentences_from_tokenized(lines)):
            yield p.sentence


def _marginal_rows(marg: Tensor, n: int) -> list[list[float]]:
    """Rows = dependents 1..n, columns = heads 0..n: P(head → dependent)."""
    return [[round(float(v), 4) for v in marg[: n + 1, d]] for d in range(1, n + 1)]
