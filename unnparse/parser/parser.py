"""One parser network: build it from training data, save and load its model directory; it parses as every
:class:`~unnparse.parser.predictor.Predictor` does.

>>> parser = Parser.load("models/UD_English-Sample")          # doctest: +SKIP
>>> for sentence in parser.parse(["The cat sat on the mat."]):  # doctest: +SKIP
...     print(sentence.to_conllu())
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

import unnparse
from unnparse.conllu.sentence import TAG_COLUMNS, Sentence
from unnparse.model_files import (
    CONFIG_FILE,
    FILES_KEY,
    Limit,
    ModelFileError,
    canonical_sha256,
    check_config,
    check_kind,
    commit_config,
    load_config,
    load_weights,
    verified_dir,
    write_data_dir,
    write_weights,
)
from unnparse.parser.config import FORMAT_VERSION, ParserConfig, ScratchEncoderConfig, TransformerEncoderConfig
from unnparse.parser.encoders import TransformerEncoder, build_encoder
from unnparse.parser.features import ROOT_CHAR, Featurizer, column_labels
from unnparse.parser.model import ParserModel
from unnparse.parser.predictor import BatchPrediction, ParsedSentence, Predictor
from unnparse.parser.vocab import PAD, UNK, Vocab
from unnparse.runtime import quantize_int8, resolve_device
from unnparse.text.multiword import MAX_ENTRIES as MAX_MULTIWORD
from unnparse.text.multiword import multiword_dictionary
from unnparse.text.trained_tokenizer import TrainedTokenizer

__all__ = ["BatchPrediction", "ParsedSentence", "Parser", "ParserConfig", "default_config", "resolve_device"]

ENCODER_DIR = "encoder"  # the encoder's files in a model directory written before manifests (now encoder-<hex>/)

_SPECIALS = Limit(list, high=16)
#: The accepted values of the vocabularies in a parser's config.json, checked on load before anything is built from
#: them: generous for every real model, small enough that a hand-edited or hostile config cannot hang or exhaust the
#: machine. Those of the encoder and the network lie beside their fields in :mod:`unnparse.parser.config`.
VOCAB_LIMITS: dict[str, Limit] = {
    "vocab.rels.items": Limit(list, high=100_000),
    "vocab.rels.specials": _SPECIALS,
    "vocab.words.items": Limit(list, high=10_000_000, optional=True),
    "vocab.words.specials": Limit(list, high=16, optional=True),
    "vocab.chars.items": Limit(list, high=1_000_000, optional=True),
    "vocab.chars.specials": Limit(list, high=16, optional=True),
    **{f"vocab.{name}.items": Limit(list, high=1_000_000, optional=True) for name in TAG_COLUMNS},
    **{f"vocab.{name}.specials": Limit(list, high=16, optional=True) for name in TAG_COLUMNS},
    "multiword": Limit(dict, high=MAX_MULTIWORD, optional=True),
}


def default_config(**options: Any) -> dict[str, Any]:
    """The model part of a parser config as config.json holds it (everything that fixes the network's shape and
    behaviour): :meth:`ParserConfig.create(**options) <unnparse.parser.config.ParserConfig.create>` as a dict, the
    options of ``unnparse train`` (``encoder``, ``lstm_layers``, ... and the fields of
    :class:`~unnparse.parser.config.ParserModelConfig`: ``unn_iter``, ``hidden``, ``dropout``, ...). An unknown
    option is a ``TypeError``, a value out of range a ``ValueError``."""
    return ParserConfig.create(**options).to_dict()


class Parser(Predictor):
    """A trained (or freshly built) dependency parser: one network, its vocabularies and config; it parses as
    every :class:`~unnparse.parser.predictor.Predictor` does (``precision`` and the prediction methods are there).
    """

    def __init__(
        self, model: ParserModel, featurizer: Featurizer, config: dict[str, Any], *, precision: str = "auto"
    ) -> None:
        super().__init__(featurizer, config, precision=precision)
        self.model = model
        self._int8: tuple[ParserModel, torch.nn.Module] | None = None  # (the model, its quantized copy)

    def network(self) -> ParserModel:
        """The network that parses: :attr:`model`, or with :attr:`precision` ``int8`` its quantized copy (made the
        first time, again whenever :attr:`model` is replaced; weights changed in place afterwards are not seen: parse
        in int8 only with a trained model).

        Raises:
            ValueError: ``int8`` with the model on a GPU.
        """
        if self.precision != "int8":
            return self.model
        if self._int8 is None or self._int8[0] is not self.model:
            self.model.eval()
            self._int8 = (self.model, quantize_int8(self.model))
        return self._int8[1]  # type: ignore[return-value]

    @property
    def parser_config(self) -> ParserConfig:
        """The typed encoder and model parts of :attr:`config`."""
        return ParserConfig.from_dict(self.config, source="parser config")

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        config: ParserConfig | Mapping[str, Any],
        train: Sequence[Sentence],
        *,
        trust_remote_code: bool = False,
    ) -> Parser:
        """A new parser whose vocabularies come from the training sentences.

        ``config`` is a :class:`~unnparse.parser.config.ParserConfig`, or a dict such as :func:`default_config`
        gives (its other keys, such as ``treebank``, are kept in :attr:`config`; a value out of range is a
        ``ValueError``). A pretrained encoder's own code (``auto_map``) runs only with ``trust_remote_code``, and even
        then its architecture must be one that transformers implements (a saved model is rebuilt without running
        code)."""
        if isinstance(config, ParserConfig):
            typed, extra = config, {}
        else:
            try:
                typed = ParserConfig.from_dict(config, source="parser config")
            except ModelFileError as err:
                raise ValueError(str(err)) from None
            extra = dict(config)
        rels = Vocab.build((r for s in train for r in (s.deprels or [])), specials=(UNK,))
        words = chars = None
        if isinstance(typed.encoder, ScratchEncoderConfig):
            words = Vocab.build(
                (Featurizer.normalize_word(w) for s in train for w in s.words), min_freq=typed.encoder.min_word_freq
            )
            chars = Vocab.build((ch for s in train for w in s.words for ch in w), specials=(PAD, UNK, ROOT_CHAR))
        tags: dict[str, Vocab] = {}
        for name in TAG_COLUMNS:  # a tagger for each column with a loss weight that the training data annotates
            if typed.model.tag_loss(name) > 0:
                values = [t for s in train for t in column_labels(s, name) if t != "_"]
                if values:
                    tags[name] = Vocab.build(values, specials=(UNK,))
        full = {**extra, **typed.to_dict()}
        # the treebank's multiword tokens, for raw text split by the rules (a trained tokenizer has its own)
        full["multiword"] = multiword_dictionary(train)
        full["vocab"] = {
            "rels": rels.to_json(),
            "words": None if words is None else words.to_json(),
            "chars": None if chars is None else chars.to_json(),
            **{name: tags[name].to_json() if name in tags else None for name in TAG_COLUMNS},
        }
        encoder = build_encoder(
            typed.encoder, n_words=len(words or []), n_chars=len(chars or []), trust_remote_code=trust_remote_code
        )
        model = ParserModel(encoder, len(rels), typed.model, tag_sizes={k: len(v) for k, v in tags.items()})
        return cls(model, Featurizer(rels, words, chars, tags=tags), full)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", *, precision: str = "auto"
    ) -> Parser:
        """Load the model directory of one parser written by :meth:`save` (no training data needed); ``precision``
        as in :class:`~unnparse.parser.predictor.Predictor`. :func:`unnparse.parser.load` loads any parser
        directory, an ensemble's too.

        Loading never runs code from the directory, reads the config as a
        :class:`~unnparse.parser.config.ParserConfig` (one of an older ``config_version`` migrated, see
        :func:`~unnparse.parser.config.migrate`), checks every config value against its limit (there and in
        :data:`VOCAB_LIMITS`) and every data file against the sizes and hashes that ``config.json`` records (see
        :mod:`unnparse.model_files`).

        Raises:
            ModelFileError: a missing, corrupt, mismatched or out-of-range part, or an ensemble's directory (one line
                naming the file).
        """
        config = load_config(path)
        cfg_path = Path(path) / CONFIG_FILE
        if config.get("kind") == "parser-ensemble":
            raise ModelFileError(
                f"{cfg_path}: an ensemble of parsers: load it with unnparse.parser.load (or ParserEnsemble.load)"
            )
        check_kind(config, cfg_path, "parser")
        if config.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(
                f"{cfg_path}: model format {config.get('format_version')} is not supported "
                f"by unnparse {unnparse.__version__} (expects {FORMAT_VERSION})"
            )
        typed = ParserConfig.from_dict(config, source=cfg_path)  # an older config_version migrated
        check_config(config, VOCAB_LIMITS, cfg_path)
        config = {**config, **typed.to_dict()}
        try:
            vocab = config["vocab"]
            rels = Vocab.from_json(vocab["rels"])
            words = None if vocab.get("words") is None else Vocab.from_json(vocab["words"])
            chars = None if vocab.get("chars") is None else Vocab.from_json(vocab["chars"])
            tags = {name: Vocab.from_json(vocab[name]) for name in TAG_COLUMNS if vocab.get(name) is not None}
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{cfg_path}: incomplete parser config ({err!r})") from None
        saved = verified_dir(path, config, "encoder") if isinstance(typed.encoder, TransformerEncoderConfig) else None
        try:
            encoder = build_encoder(typed.encoder, n_words=len(words or []), n_chars=len(chars or []), saved_dir=saved)
            model = ParserModel(encoder, len(rels), typed.model, tag_sizes={k: len(v) for k, v in tags.items()})
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
    def _to_eval_mode(self) -> None:
        self.model.eval()

    def _predict_batch(self, sentences: Sequence[Sentence], idx: Sequence[int], marginals: bool) -> BatchPrediction:
        """Heads, labels, tags (and arc marginals when asked) of one batch of sentences."""
        batch = self.featurizer.batch(sentences, idx, gold=False).to_device(self.device)
        network = self.network()
        out = network(batch, marginals=marginals)
        heads, rels = network.decode(out, batch)
        return BatchPrediction(heads, rels, network.predict_tags(out, batch), out.marginals)
