"""Sequence completion's settings: the network (:class:`SeqConfig`, stored in ``config.json``), the generated data
(:class:`DataSpec`) and training (:class:`TrainOptions`), each field with its default and its range. Imports nothing
heavy (the command line reads its defaults from here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from unnparse.config_ranges import Limit, check_fields, config_field, field_limits

__all__ = [
    "CONFIG_LIMITS",
    "LR_SCHEDULES",
    "MAX_POSITIONS",
    "MODEL_KIND",
    "RANDOM_ITER_EVAL",
    "RANDOM_ITER_MAX",
    "DataSpec",
    "SeqConfig",
    "TrainOptions",
]

MODEL_KIND = "seqcomplete"
#: sweeps used at evaluation by a model trained with a random number of sweeps (App. B)
RANDOM_ITER_EVAL = 3
RANDOM_ITER_MAX = 5
MAX_POSITIONS = 62  # positions must fit the int64 bit mask


@dataclass
class SeqConfig:
    """Hyperparameters of the sequence-completion UNN (stored in ``config.json``)."""

    # each with the values a saved config.json may hold (absent keys take the default): see field_limits
    vocab: int = config_field(64, Limit(int, 1, 1_000_000, optional=True))
    dim: int = config_field(256, Limit(int, 2, 65536, optional=True))
    unn_iter: int = config_field(1, Limit(int, 1, 100, optional=True))
    order: str = config_field("fb", Limit(str, choices=("fb", "random"), optional=True))
    random_iter: bool = config_field(False, Limit(bool, optional=True))
    #: seeds the random order at evaluation time, so that predictions are reproducible (any value
    #: torch.Generator.manual_seed takes)
    seed: int = config_field(0, Limit(int, -(2**63), 2**64 - 1, optional=True))

    def __post_init__(self) -> None:
        if self.order not in ("fb", "random"):
            raise ValueError(f"order must be fb or random, got {self.order!r}")
        if self.unn_iter < 1 or self.dim < 2 or self.dim % 2 or self.vocab < 1:
            raise ValueError(f"need unn_iter >= 1, an even dim >= 2 and vocab >= 1; got {self}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeqConfig:
        """Build from a (possibly larger) dict such as a saved ``config.json``."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @property
    def eval_iter(self) -> int:
        """Sweeps at evaluation: k, or 3 for a model trained with a random k (App. B)."""
        return RANDOM_ITER_EVAL if self.random_iter else self.unn_iter


#: The accepted values of a saved sequence-completion model's config.json (keys left out take :class:`SeqConfig`'s
#: defaults), declared beside the fields of :class:`SeqConfig`.
CONFIG_LIMITS: dict[str, Limit] = field_limits(SeqConfig)


@dataclass
class DataSpec:
    """What :func:`generate` builds, each setting with its default and range (``unn seqcomplete generate`` takes
    both from here); the lengths must also fit the vocabulary, and ``mask_ratio`` and ``test_fraction`` be
    positive."""

    vocab: int = config_field(64, Limit(int, 1, 1_000_000))  # tokens are the integers 1..vocab
    min_length: int = config_field(8, Limit(int, 1, MAX_POSITIONS))
    max_length: int = config_field(25, Limit(int, 1, MAX_POSITIONS))  # inclusive
    #: at most ceil(ratio * length) masked positions; > 0 (checked in __post_init__: a Limit's low end is closed)
    mask_ratio: float = config_field(0.1, Limit(float, 0.0, 1.0))
    #: > 0, as mask_ratio
    test_fraction: float = config_field(0.1, Limit(float, 0.0, 1.0, open_high=True))
    #: seeds the train/test split (any value torch.Generator.manual_seed takes)
    seed: int = config_field(0, Limit(int, -(2**63), 2**64 - 1))

    def __post_init__(self) -> None:
        check_fields(self)
        if not 1 <= self.min_length <= self.max_length <= min(self.vocab, MAX_POSITIONS):
            raise ValueError(
                f"need 1 <= min_length <= max_length <= min(vocab, {MAX_POSITIONS}); got lengths "
                f"{self.min_length}..{self.max_length} with vocab {self.vocab}"
            )
        if not 0 < self.mask_ratio <= 1:
            raise ValueError(f"mask ratio must be in (0, 1], got {self.mask_ratio}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test fraction must be in (0, 1), got {self.test_fraction}")


#: the learning-rate schedules (see :func:`learning_rate_factor`)
LR_SCHEDULES = ("constant", "linear")
_COUNT = Limit(int, 0, 1_000_000_000)


@dataclass
class TrainOptions:
    """Optimisation settings, each with its default and range (``unn seqcomplete train`` takes both from here; a
    value out of range is a :class:`~unnparse.model_files.ConfigValueError` naming it)."""

    epochs: int = config_field(10, Limit(int, 1, 1_000_000))
    lr: float = config_field(1e-4, Limit(float, 0.0, 10.0))  # Adam's
    #: "constant", or "linear": decay to zero on the last update (that of ``max_updates``, else of ``epochs``)
    lr_schedule: str = config_field("constant", Limit(str, choices=LR_SCHEDULES))
    #: updates of linear warmup from ``lr / warmup`` to ``lr`` (0: none)
    warmup: int = config_field(0, _COUNT)
    batch_size: int = config_field(64, Limit(int, 1, 1_000_000_000))
    clip: float = config_field(10.0, Limit(float, 0.0, 1e9))  # gradient norm (0: no clipping)
    seed: int = config_field(0, Limit(int, 0, 2**63 - 1))
    device: str = config_field("auto", Limit(str))
    #: evaluate on the test split after every epoch (a learning curve; the last epoch is saved regardless)
    eval_each_epoch: bool = config_field(False, Limit(bool))
    #: also evaluate every this many updates (0: never): test accuracy against updates and training seconds
    eval_every: int = config_field(0, _COUNT)
    #: stop after this much training time (evaluations not counted), checked after every update
    max_minutes: float | None = config_field(None, Limit(float, 0.0, 1e9, optional=True))
    #: stop after this many updates in all (None: no limit)
    max_updates: int | None = config_field(None, Limit(int, 1, 1_000_000_000_000, optional=True))
    #: write the checkpoint every this many updates, besides at the end of every epoch and when stopping (0: only
    #: there); needs a checkpoint path (see :func:`train`)
    checkpoint_every: int = config_field(1000, Limit(int, 0, 1_000_000_000_000))
    progress: bool = config_field(True, Limit(bool))

    def __post_init__(self) -> None:
        check_fields(self)
