"""The parser's config, typed: one frozen dataclass per part of ``config.json`` (the encoder, the network), each
field with its default and the range that a saved model may hold (a :class:`~unnparse.model_files.Limit`, in the
field's metadata). The command line takes its defaults from here, :class:`~unnparse.parser.parser.Parser` builds
from a :class:`ParserConfig` and loading reads one back (the vocabularies are a part of their own).

>>> config = ParserConfig(model=ParserModelConfig(unn_iter=2))
>>> config.model.hidden, config.encoder.layers
(256, 3)
>>> ParserConfig.from_dict(config.to_dict()) == config
True

``config.json`` records the schema it was written in as ``config_version`` (:data:`CONFIG_VERSION`); the layout
of the weights is ``format_version``. A config written before ``config_version`` existed (version 1) may lack the
keys added since: :func:`migrate` fills each with the value that the code of that time read in its absence, so an
old model loads and parses as it did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import unnparse
from unnparse.config_ranges import Limit, ModelFileError, check_config, check_fields, config_field, field_limits
from unnparse.parser.long_sentences import DEFAULT_MAX_WORDS
from unnparse.precisions import PRECISIONS

__all__ = [
    "CONFIG_VERSION",
    "DEFAULT_ENCODER",
    "ENCODER_CONFIGS",
    "FORMAT_VERSION",
    "VERSION_1_ABSENT",
    "VERSION_4_ADDED",
    "VERSION_5_ADDED",
    "EncoderConfig",
    "ParserConfig",
    "ParserModelConfig",
    "RECIPES",
    "ScratchEncoderConfig",
    "TrainOptions",
    "TransformerEncoderConfig",
    "config_limits",
    "migrate",
    "recipe_values",
]

FORMAT_VERSION = 2  # the weights' layout; 2: unpacked BiLSTM weights, UPOS tagger, relation classifier reading X
#: The schema of the encoder and model parts of config.json. 1: no ``config_version`` key, keys added since may be
#: absent (see :data:`VERSION_1_ABSENT`); 2: ``config_version``, every key of the dataclasses below present but
#: ``lemma_loss``; 3: with ``lemma_loss`` (a lemmatizer); 4: with ``update_order``, ``head_bias``, ``x_dropout``,
#: ``arc_init`` and ``rel_detach`` (:data:`VERSION_4_ADDED`); 5: with ``damping``, ``tag_features`` and
#: ``tag_feature_dim`` (:data:`VERSION_5_ADDED`). Migration fills what an older version lacks (:func:`migrate`).
CONFIG_VERSION = 5
DEFAULT_ENCODER = "scratch"  # the encoder of ``unnparse train`` when none is named

_SIZE = Limit(int, 1, 65536)
_RATE = Limit(float, 0.0, 1.0, open_high=True)
_LOSS = Limit(float, 0.0, 1e6)
_FLAG = Limit(bool)
_VERSION = Limit(int, 1, 1 << 31)


class _Section:
    """What every part of the config shares: its key in config.json (``SECTION``), its fields' limits, a check of
    every value on construction (``ValueError`` naming the key) and plain-dict conversion."""

    SECTION: ClassVar[str]

    @classmethod
    def limits(cls) -> dict[str, Limit]:
        """Dotted key (``model.unn_iter``) -> its limit, for every field."""
        return field_limits(cls, f"{cls.SECTION}.")

    def __post_init__(self) -> None:
        check_fields(self, f"{self.SECTION}.")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["limit"].kind is float and isinstance(value, int):  # in range, so not a bool
                object.__setattr__(self, f.name, float(value))  # 1 and 1.0 are one weight, written as 1.0

    def _values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_dict(self) -> dict[str, Any]:
        """The part as config.json holds it."""
        return self._values()

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> Any:
        """The part from its (checked) dict in config.json; keys that no field names are left out."""
        return cls(**{f.name: section[f.name] for f in fields(cls) if f.name in section})


@dataclass(frozen=True)
class ScratchEncoderConfig(_Section):
    """The encoder trained from scratch: word embeddings and a character CNN or BiLSTM, then a BiLSTM."""

    SECTION: ClassVar[str] = "encoder"
    TYPE: ClassVar[str] = "scratch"

    word_dim: int = config_field(100, _SIZE)
    char_dim: int = config_field(50, _SIZE)
    char_filters: int = config_field(100, _SIZE)
    hidden: int = config_field(200, _SIZE)  # BiLSTM size per direction (``--lstm-hidden``)
    layers: int = config_field(3, Limit(int, 1, 64))  # ``--lstm-layers``
    dropout: float = config_field(0.33, _RATE)  # ``--dropout``, shared with the network's
    word_dropout: float = config_field(0.2, _RATE)
    min_word_freq: int = config_field(2, Limit(int, 1, 1 << 31))  # rarer training words are unknown
    char_encoder: str = config_field("cnn", Limit(str, choices=("cnn", "lstm")))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, **self._values()}


@dataclass(frozen=True)
class TransformerEncoderConfig(_Section):
    """A pretrained transformer (a HuggingFace name or a local path while training; the saved files after)."""

    SECTION: ClassVar[str] = "encoder"
    TYPE: ClassVar[str] = "transformer"

    name: str = field(metadata={"limit": Limit(str)})  # no default: the encoder must be named
    pooling: str = config_field("first", Limit(str, choices=("first", "mean")))  # subword vectors -> word vector
    freeze: bool = config_field(False, _FLAG)  # not fine-tuned

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, **self._values()}


EncoderConfig = ScratchEncoderConfig | TransformerEncoderConfig
ENCODER_CONFIGS: dict[str, type[ScratchEncoderConfig] | type[TransformerEncoderConfig]] = {
    ScratchEncoderConfig.TYPE: ScratchEncoderConfig,
    TransformerEncoderConfig.TYPE: TransformerEncoderConfig,
}


@dataclass(frozen=True)
class ParserModelConfig(_Section):
    """The H/M/Y network on the encoder, its relation classifier and taggers."""

    SECTION: ClassVar[str] = "model"

    unn_iter: int = config_field(1, Limit(int, 1, 100))  # sweeps K (1: the biaffine parser)
    hidden: int = config_field(256, _SIZE)  # size of H and M
    rel_hidden: int = config_field(100, _SIZE)  # the relation classifier's projections
    dropout: float = config_field(0.33, _RATE)
    single_root: bool = config_field(True, _FLAG)  # trees with one word attached to ROOT
    upos_loss: float = config_field(1.0, _LOSS)  # weight of each auxiliary tagging loss (0: no tagger)
    xpos_loss: float = config_field(0.0, _LOSS)
    feats_loss: float = config_field(0.0, _LOSS)
    lemma_loss: float = config_field(1.0, _LOSS)  # the lemmatizer's (edit scripts: unnparse.parser.lemma_scripts)
    rel_from_x: bool = config_field(True, _FLAG)  # the relation classifier reads X besides H and M
    rel_distance: int = config_field(0, Limit(int, 0, 4096))  # size of its arc direction and length embedding (0: none)
    arc_position: bool = config_field(False, _FLAG)  # a learned score of each arc's direction and length
    tag_layer: int = config_field(0, Limit(int, 0, 64))  # the BiLSTM layer the taggers read (0: X)
    #: the order of a sweep: H, M, Y one after the other ("sequential", block coordinate descent), or H and M both
    #: from the previous state, then Y ("jacobi", as the paper's reference code)
    update_order: str = config_field("sequential", Limit(str, choices=("sequential", "jacobi")))
    head_bias: bool = config_field(True, _FLAG)  # the head-bias factor on Y (how likely a word is to be a head)
    x_dropout: bool = config_field(True, _FLAG)  # dropout on the encoder's output X
    #: the arc factor's V at the start of training: zero (uniform trees, the biaffine parser's usual start) or
    #: drawn from N(0, 0.01²)
    arc_init: str = config_field("zero", Limit(str, choices=("zero", "normal")))
    #: the relation classifier learns from copies of H, M and X that pass no gradient back: the UNN and the encoder
    #: then learn from the tree loss alone (the paper's unlabelled training)
    rel_detach: bool = config_field(False, _FLAG)
    #: from the second sweep on, H and M move only (1 - damping) of the way to their update (0: the full update)
    damping: float = config_field(0.0, _RATE)
    #: the parser and relation classifier also read the taggers' predictions (UPOS, XPOS, FEATS, those learnt):
    #: "soft" the expected tag embedding under the tagger's distribution, "hard" the best tag's, "none" not at all
    tag_features: str = config_field("none", Limit(str, choices=("none", "soft", "hard")))
    tag_feature_dim: int = config_field(32, _SIZE)  # the size of each column's tag embedding

    def tag_loss(self, column: str) -> float:
        """The loss weight of the tagger of ``column`` (``upos``, ``xpos``, ``feats``, ``lemma``; 0 for any other)."""
        return float(getattr(self, f"{column}_loss", 0.0))


#: The recipes of ``unnparse train --recipe``: the option values each sets (options given on the command line win).
RECIPES = ("default", "paper")


def recipe_values(recipe: str, encoder: str) -> dict[str, Any]:
    """The ``unnparse train`` option values (by parameter name) of ``recipe`` for an ``encoder``: none for
    ``default``; for ``paper``, the setup of the paper's reference code where it differs from this project's:
    H and M updated together from the previous state (``update_order`` jacobi), no head-bias factor, V drawn from
    N(0, 0.01²), no dropout on X, the UNN and encoder trained by the tree loss alone (``rel_detach``, no UPOS
    loss) with the best epoch by dev UAS, H and M of size 400, dropout 0.3, AdamW betas (0.9, 0.999), gradients
    clipped at 1, every epoch run and the learning rate decaying linearly to zero at the last (``schedule`` decay,
    no early stopping), and with a pretrained encoder one learning rate of 5e-5 for everything (with the scratch
    encoder the learning rate stays this project's: the paper has none for it).

    Raises:
        ValueError: an unknown recipe.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: expected one of {', '.join(RECIPES)}")
    if recipe == "default":
        return {}
    values: dict[str, Any] = {
        "update_order": "jacobi",
        "head_bias": False,
        "arc_init": "normal",
        "x_dropout": False,
        "rel_detach": True,
        "upos_loss": 0.0,
        "hidden": 400,
        "dropout": 0.3,
        "beta2": 0.999,
        "clip": 1.0,
        "select_by": "uas",
        "patience": 1_000_000_000,
        "schedule": "decay",
    }
    if encoder != ScratchEncoderConfig.TYPE:
        values.update(lr=5e-5, encoder_lr=5e-5)
    return values


def config_limits(encoder_type: str) -> dict[str, Limit]:
    """Dotted key -> limit of every encoder and model value, for an encoder of ``encoder_type``."""
    return {**ParserModelConfig.limits(), **ENCODER_CONFIGS[encoder_type].limits()}


@dataclass(frozen=True)
class ParserConfig:
    """Everything that fixes a parser network's shape and behaviour: the encoder and the model on it."""

    encoder: EncoderConfig = field(default_factory=ScratchEncoderConfig)
    model: ParserModelConfig = field(default_factory=ParserModelConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, EncoderConfig):
            raise TypeError(f"encoder must be a ScratchEncoderConfig or TransformerEncoderConfig, not {self.encoder!r}")
        if not isinstance(self.model, ParserModelConfig):
            raise TypeError(f"model must be a ParserModelConfig, not {self.model!r}")

    @classmethod
    def create(
        cls,
        *,
        encoder: str = DEFAULT_ENCODER,
        pooling: str = TransformerEncoderConfig.pooling,
        freeze_encoder: bool = TransformerEncoderConfig.freeze,
        lstm_hidden: int = ScratchEncoderConfig.hidden,
        lstm_layers: int = ScratchEncoderConfig.layers,
        char_encoder: str = ScratchEncoderConfig.char_encoder,
        **model: Any,
    ) -> ParserConfig:
        """The config of ``unnparse train``'s options: ``encoder`` is ``scratch`` or a transformer's name or path,
        ``model`` holds :class:`ParserModelConfig` fields; the scratch encoder's dropout is the model's."""
        net = ParserModelConfig(**model)
        enc: EncoderConfig
        if encoder == ScratchEncoderConfig.TYPE:
            enc = ScratchEncoderConfig(
                hidden=lstm_hidden, layers=lstm_layers, dropout=net.dropout, char_encoder=char_encoder
            )
        else:
            enc = TransformerEncoderConfig(name=encoder, pooling=pooling, freeze=freeze_encoder)
        return cls(enc, net)

    def to_dict(self) -> dict[str, Any]:
        """The network's part of config.json (without vocabularies, files or training records)."""
        return {
            "kind": "parser",
            "format_version": FORMAT_VERSION,
            "config_version": CONFIG_VERSION,
            "encoder": self.encoder.to_dict(),
            "model": self.model.to_dict(),
        }

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], *, source: object = "config.json") -> ParserConfig:
        """The config from a parser's config.json (other keys, such as ``vocab``, are left alone), migrated from
        an older ``config_version`` (:func:`migrate`).

        Raises:
            ModelFileError: ``source: KEY must be ..., not VALUE`` for a missing, mistyped or out-of-range value,
                or a ``config_version`` newer than this unnparse reads (one line).
        """
        migrated = migrate(config, source=source)
        check_config(migrated, {"encoder.type": Limit(str, choices=tuple(ENCODER_CONFIGS))}, source)
        encoder_cls = ENCODER_CONFIGS[migrated["encoder"]["type"]]
        check_config(migrated, config_limits(encoder_cls.TYPE), source)
        try:
            return cls(encoder_cls.from_section(migrated["encoder"]), ParserModelConfig.from_section(migrated["model"]))
        except ValueError as err:  # not reached: the limits were checked above
            raise ModelFileError(f"{source}: {err}") from None


#: Keys that a version-1 config (written before ``config_version``) may lack, and the value that the code of that
#: time read in their absence (``config.get(key, default)``): they reproduce what such a model did.
VERSION_1_ABSENT: dict[str, dict[str, Any]] = {
    "model": {
        "single_root": True,
        "upos_loss": 0.0,
        "xpos_loss": 0.0,
        "feats_loss": 0.0,
        "lemma_loss": 0.0,
        "rel_from_x": False,
        "rel_distance": 0,
        "arc_position": False,
        "tag_layer": 0,
    },
    "scratch": {"char_encoder": "cnn", "min_word_freq": 2},  # min_word_freq only builds vocabularies
}


#: The model keys added in version 4, with the value every model of an earlier version was built and trained with.
VERSION_4_ADDED: dict[str, Any] = {
    "update_order": "sequential",
    "head_bias": True,
    "x_dropout": True,
    "arc_init": "zero",
    "rel_detach": False,
}
#: The model keys added in version 5, likewise.
VERSION_5_ADDED: dict[str, Any] = {"damping": 0.0, "tag_features": "none", "tag_feature_dim": 32}


def migrate(config: Mapping[str, Any], *, source: object = "config.json") -> dict[str, Any]:
    """``config`` in the schema of :data:`CONFIG_VERSION` (a copy; the input is not changed): a version-1 config's
    absent (or null) keys filled with :data:`VERSION_1_ABSENT`. Values are not checked here, but parts that are not
    objects are left as they are for the checks to name.

    Raises:
        ModelFileError: ``config_version`` is not a positive integer, or newer than :data:`CONFIG_VERSION`.
    """
    version = config.get("config_version", 1)
    if not _VERSION.accepts(version):
        check_config({"config_version": version}, {"config_version": _VERSION}, source)
    if version > CONFIG_VERSION:
        raise ModelFileError(
            f"{source}: config_version {version} is newer than unnparse {unnparse.__version__} reads (at most "
            f"{CONFIG_VERSION}): upgrade unnparse to load this model"
        )
    out = dict(config)
    if version < 3 and isinstance(out.get("model"), dict):  # no lemmatizer before version 3
        out["model"] = {**out["model"], "lemma_loss": out["model"].get("lemma_loss") or 0.0}
    if version < 4 and isinstance(out.get("model"), dict):
        out["model"] = {**VERSION_4_ADDED, **out["model"]}
    if version < 5 and isinstance(out.get("model"), dict):
        out["model"] = {**VERSION_5_ADDED, **out["model"]}
    if version == 1:
        for part in ("encoder", "model"):
            if isinstance(out.get(part), dict):
                out[part] = dict(out[part])
        model, encoder = out.get("model"), out.get("encoder")
        if isinstance(model, dict):
            model.update({k: v for k, v in VERSION_1_ABSENT["model"].items() if model.get(k) is None})
        if isinstance(encoder, dict) and encoder.get("type") == ScratchEncoderConfig.TYPE:
            encoder.update({k: v for k, v in VERSION_1_ABSENT["scratch"].items() if encoder.get(k) is None})
    out["config_version"] = CONFIG_VERSION
    return out


_COUNT = Limit(int, 1, 1_000_000_000)
_LEARNING_RATE = Limit(float, 0.0, 10.0)


@dataclass
class TrainOptions:
    """Every training hyperparameter (stored in config.json under ``training``), each with its default and range
    (``unnparse train`` takes both from here; a value out of range is a :class:`ConfigValueError` naming it)."""

    #: at most (the plateau schedule, ``patience`` or ``max_minutes`` end training sooner)
    epochs: int = config_field(1000, Limit(int, 1, 1_000_000))
    lr: float = config_field(3e-3, _LEARNING_RATE)  # the UNN's and a scratch encoder's
    encoder_lr: float = config_field(5e-5, _LEARNING_RATE)  # a pretrained encoder's
    batch_tokens: int = config_field(1000, _COUNT)  # padded tokens per batch
    warmup: float = config_field(0.05, Limit(float, 0.0, 1.0))  # fraction of all updates (at most one epoch)
    clip: float = config_field(5.0, Limit(float, 0.0, 1e9))  # gradient norm (0: no clipping)
    weight_decay: float = config_field(0.0, Limit(float, 0.0, 1.0))  # AdamW's, decoupled
    patience: int = config_field(10, _COUNT)  # epochs without a better dev score before stopping
    seed: int = config_field(1, Limit(int, 0, 2**63 - 1))
    #: stop after this much time (training, evaluation and saving)
    max_minutes: float | None = config_field(None, Limit(float, 0.0, 1e9, optional=True))
    accumulate: int = config_field(1, Limit(int, 1, 100_000))  # batches per optimizer update
    eval_batch_tokens: int = config_field(6000, _COUNT)
    #: decay of an exponential moving average of the weights, evaluated and saved (0: off)
    ema: float = config_field(0.0, Limit(float, 0.0, 1.0, open_high=True))
    #: encoder arithmetic: auto (bfloat16 on CUDA, float32 on CPU), float32, bfloat16
    precision: str = config_field("auto", Limit(str, choices=PRECISIONS))
    #: longer training sentences are left out: memory grows with the square
    max_words: int = config_field(DEFAULT_MAX_WORDS, _COUNT)
    #: AdamW's second-moment decay (beta2; beta1 is 0.9)
    beta2: float = config_field(0.9, Limit(float, 0.0, 1.0, open_high=True))
    #: how training ends: "decay" (the learning rate decays linearly to zero at ``epochs`` or at the end of the
    #: time budget; ``patience`` epochs without a better dev score stop it early) or "plateau" (the base rate
    #: until ``patience`` epochs bring no better dev score, then a decay over a fifth of the epochs trained)
    schedule: str = config_field("plateau", Limit(str, choices=("decay", "plateau")))
    #: the dev score that picks the best epoch: LAS (then UAS) or UAS (then LAS)
    select_by: str = config_field("las", Limit(str, choices=("las", "uas")))
    #: with a teacher (distillation): the weight of its targets in the arc and relation losses (1 - it: gold's)
    teacher_weight: float = config_field(0.5, Limit(float, 0.0, 1.0))
    #: with a teacher: its scores are divided by this before its distributions are taken (> 1: softer targets)
    teacher_temperature: float = config_field(1.0, Limit(float, 0.01, 100.0))

    def __post_init__(self) -> None:
        check_fields(self)
