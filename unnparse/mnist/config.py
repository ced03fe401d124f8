"""The MNIST UNN's settings: :class:`MnistConfig` (stored in ``config.json``) and :class:`TrainOptions`, each
field with its default and its range. Imports nothing heavy (the command line reads its defaults from here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from unnparse.config_ranges import Limit, check_fields, config_field, field_limits

__all__ = ["CLASSIFY_ORDERS", "CONFIG_LIMITS", "MODEL_KIND", "MnistConfig", "Order", "TrainOptions"]

MODEL_KIND = "mnist"
Order = Literal["fw", "fb"]
CLASSIFY_ORDERS: dict[str, tuple[str, ...]] = {"fw": ("H1", "H2", "Y"), "fb": ("H1", "H2", "Y", "H2")}


_SIZE = Limit(int, 1, 4096, optional=True)


@dataclass
class MnistConfig:
    """Hyperparameters of the MNIST UNN (stored in ``config.json``)."""

    # each with the values a saved config.json may hold (absent keys take the default): see field_limits
    unn_iter: int = config_field(3, Limit(int, 1, 100, optional=True))
    order: str = config_field("fb", Limit(str, choices=("fw", "fb"), optional=True))
    y_init: str = config_field("zero", Limit(str, choices=("zero", "uniform", "random"), optional=True))
    dropout: float = config_field(0.0, Limit(float, 0.0, 1.0, open_high=True, optional=True))
    untied: bool = config_field(False, Limit(bool, optional=True))
    channels1: int = config_field(32, _SIZE)
    channels2: int = config_field(64, _SIZE)
    kernel1: int = config_field(6, Limit(int, 1, 64, optional=True))
    kernel2: int = config_field(4, Limit(int, 1, 64, optional=True))
    stride: int = config_field(2, Limit(int, 1, 64, optional=True))
    image_size: int = config_field(28, Limit(int, 1, 1024, optional=True))
    classes: int = config_field(10, Limit(int, 1, 100_000, optional=True))
    #: seeds the random y initialisation at evaluation time (App. C), so that predictions are reproducible (any
    #: value torch.Generator.manual_seed takes)
    seed: int = config_field(0, Limit(int, -(2**63), 2**64 - 1, optional=True))

    def __post_init__(self) -> None:
        check_fields(self)  # a ConfigValueError naming the field (unn mnist train: the option)
        if self.unn_iter < 1:
            raise ValueError(f"unn_iter must be at least 1, got {self.unn_iter}")
        if self.order not in CLASSIFY_ORDERS:
            raise ValueError(f"order must be fw or fb, got {self.order!r}")
        if self.y_init not in ("zero", "uniform", "random"):
            raise ValueError(f"y_init must be zero, uniform or random, got {self.y_init!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MnistConfig:
        """Build from a (possibly larger) dict such as a saved ``config.json``."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @property
    def sizes(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Spatial sizes of H1 and H2 (12x12 and 5x5 for MNIST)."""
        s1 = (self.image_size - self.kernel1) // self.stride + 1
        s2 = (s1 - self.kernel2) // self.stride + 1
        return (s1, s1), (s2, s2)


#: The accepted values of a saved MNIST model's config.json (keys left out take :class:`MnistConfig`'s defaults),
#: declared beside the fields of :class:`MnistConfig`.
CONFIG_LIMITS: dict[str, Limit] = field_limits(MnistConfig)


_COUNT = Limit(int, 1, 1_000_000_000)


@dataclass
class TrainOptions:
    """Optimisation settings (not needed to rebuild the model), each with its default and range (``unn mnist
    train`` takes both from here; a value out of range is a
    :class:`~unnparse.model_files.ConfigValueError` naming it)."""

    epochs: int = config_field(10, Limit(int, 1, 1_000_000))
    lr: float = config_field(5e-4, Limit(float, 0.0, 10.0))  # Adam's
    batch_size: int = config_field(64, _COUNT)
    gamma: float = config_field(0.1, Limit(float, 0.0, 1e6))  # weight of the prototype BCE loss
    seed: int = config_field(0, Limit(int, 0, 2**63 - 1))
    dev_size: int = config_field(10_000, _COUNT)  # training images held out as dev
    #: train on the first N of the (shuffled) training images only; None = all
    train_limit: int | None = config_field(None, Limit(int, 1, 1_000_000_000, optional=True))
    device: str = config_field("auto", Limit(str))
    progress: bool = config_field(True, Limit(bool))

    def __post_init__(self) -> None:
        check_fields(self)
