"""The user-facing parser: build from training data, save/load a model directory, parse sentences.

>>> parser = Parser.load("models/UD_English-Sample")          # doctest: +SKIP
>>> for sentence in parser.parse(["The cat sat on the mat."]):  # doctest: +SKIP
...     print(sentence.to_conllu())
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import unnparse
from unnparse.model_files import ModelFileError, load_config, load_weights, save_model
from unnparse.parser.batching import inference_batches
from unnparse.parser.conllu_data import TAG_COLUMNS, Sentence
from unnparse.parser.encoders import TransformerEncoder, build_encoder
from unnparse.parser.features import ROOT_CHAR, Featurizer
from unnparse.parser.model import ParserModel
from unnparse.parser.text_input import iter_sentences_from_text, sentences_from_tokenized
from unnparse.parser.trained_tokenizer import TrainedTokenizer
from unnparse.parser.vocab import PAD, UNK, Vocab
from unnparse.runtime import autocast, check_precision, resolve_device, resolve_precision

__all__ = ["BatchPrediction", "ParsedSentence", "Parser", "default_config", "resolve_device"]

FORMAT_VERSION = 2  # 2: unpacked BiLSTM weights, UPOS tagger, relation classifier reading X
ENCODER_DIR = "encoder"


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
    def build(cls, config: dict[str, Any], train: Sequence[Sentence]) -> Parser:
        """A new parser whose vocabularies come from the training sentences."""
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
        encoder = build_encoder(config, n_words=len(words or []), n_chars=len(chars or []))
        model = ParserModel(encoder, len(rels), config["model"], tag_sizes={k: len(v) for k, v in tags.items()})
        return cls(model, Featurizer(rels, words, chars, tags=tags), config)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", *, precision: str = "auto"
    ) -> Parser:
        """Load a model directory written by :meth:`save` (no training data needed); ``precision`` as in the class.

        A directory written by :func:`unnparse.parser.ensemble.combine_parsers` loads as a
        :class:`~unnparse.parser.ensemble.ParserEnsemble`, which parses like one parser.
        """
        from unnparse.parser.ensemble import ENSEMBLE_KIND, ParserEnsemble

        if load_config(path).get("kind") == ENSEMBLE_KIND:
            return ParserEnsemble.load(path, device, precision=precision)
        config = load_config(path, kind="parser")
        try:
            if config.get("format_version") != FORMAT_VERSION:
                raise ModelFileError(
                    f"{Path(path) / 'config.json'}: model format {config.get('format_version')} is not supported "
                    f"by unnparse {unnparse.__version__} (expects {FORMAT_VERSION})"
                )
            vocab = config["vocab"]
            rels = Vocab.from_json(vocab["rels"])
            words = None if vocab.get("words") is None else Vocab.from_json(vocab["words"])
            chars = None if vocab.get("chars") is None else Vocab.from_json(vocab["chars"])
            tags = {name: Vocab.from_json(vocab[name]) for name in TAG_COLUMNS if vocab.get(name) is not None}
            saved = str(Path(path) / ENCODER_DIR) if config["encoder"]["type"] == "transformer" else None
            encoder = build_encoder(config, n_words=len(words or []), n_chars=len(chars or []), saved_dir=saved)
            model = ParserModel(encoder, len(rels), config["model"], tag_sizes={k: len(v) for k, v in tags.items()})
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{Path(path) / 'config.json'}: incomplete parser config ({err!r})") from None
        load_weights(path, model)
        model.eval()
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        model.to(dev)
        parser = cls(model, Featurizer(rels, words, chars, tags=tags), config, precision=precision)
        if config.get("tokenizer") is not None:
            parser.tokenizer = TrainedTokenizer.load(path, config["tokenizer"])
            parser.tokenizer.net.to(dev)
        return parser

    def save(self, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (+ encoder config and tokenizer files) atomically."""
        config = dict(self.config)
        config["unnparse_version"] = unnparse.__version__
        if extra:
            config.update(extra)
        out = Path(path)
        config.pop("tokenizer", None)
        if isinstance(self.model.encoder, TransformerEncoder):
            self.model.encoder.save_pretrained_files(out / ENCODER_DIR)
        save_model(out, config, self.model.state_dict())
        if self.tokenizer is not None:
            self.tokenizer.save(out)
            config["tokenizer"] = self.tokenizer.to_config()
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
    ) -> Iterator[ParsedSentence]:
        """Parse sentences, yielding results in input order as soon as each chunk is done (streaming)."""
        self.model.eval()
        chunk: list[Sentence] = []
        for sentence in sentences:
            chunk.append(sentence)
            if len(chunk) >= chunk_sentences:
                yield from self._predict_chunk(chunk, batch_tokens, marginals)
                chunk = []
        if chunk:
            yield from self._predict_chunk(chunk, batch_tokens, marginals)

    def _predict_chunk(self, chunk: list[Sentence], batch_tokens: int, marginals: bool) -> list[ParsedSentence]:
        results: list[ParsedSentence | None] = [None] * len(chunk)
        device = self.device
        dtype = resolve_precision(self.precision, device)
        lengths = [len(s) for s in chunk]
        rel_names = self.featurizer.rels.itos
        # sorted by length, cut where the budget is reached or padding would pass a quarter of the real positions
        for idx in inference_batches(lengths, batch_tokens):
            with autocast(device, dtype):  # the UNN and the trees inside run in float32 regardless
                pred = self._predict_batch([chunk[i] for i in idx], idx, marginals)
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
                parsed = chunk[i].with_predictions(heads_l[row][1 : n + 1], labels, tags=tags)
                m = None if marg is None else _marginal_rows(marg[row], n)
                results[i] = ParsedSentence(parsed, m)
        return [r for r in results if r is not None]

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
