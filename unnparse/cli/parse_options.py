"""Options and helpers that the commands which load a parser share (``parse``, ``evaluate``, ``serve``)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from unnparse.cli.common import err_console, fail, warn

if TYPE_CHECKING:
    import torch

__all__ = [
    "MaxWordsOption",
    "ParsePrecision",
    "ParsePrecisionOption",
    "Precision",
    "PrecisionOption",
    "resolve_model",
    "warn_precision",
]


class Precision(str, Enum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"


PrecisionOption = Annotated[
    Precision,
    typer.Option(
        help="Encoder arithmetic. auto: bfloat16 on CUDA, float32 on CPU. bfloat16 on a CPU with native bfloat16 "
        "(AMX, AVX512-BF16) parses faster at the same accuracy. The UNN iterations and tree structures always run in "
        "float32."
    ),
]


class ParsePrecision(str, Enum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    int8 = "int8"


ParsePrecisionOption = Annotated[
    ParsePrecision,
    typer.Option(
        "--precision",
        help="Arithmetic. auto: bfloat16 on CUDA, float32 on CPU. bfloat16 on a CPU with native bfloat16 (AMX, "
        "AVX512-BF16) parses faster at the same accuracy. int8 (CPU): LSTMs and linear layers with int8 weights "
        "(see BENCHMARKS.md for its speed and accuracy). The UNN iterations and tree structures always run in float32.",
    ),
]


MaxWordsOption = Annotated[
    int,
    typer.Option(
        help="Longest sentence parsed whole: a longer one is parsed in pieces of at most this many words, joined "
        "into one tree by 'dep' arcs from the first piece's root (a warning names its line); bounds memory.",
        min=2,
    ),
]


def warn_precision(precision: Precision | ParsePrecision, device: torch.device) -> None:
    """Warn when ``precision`` does not suit ``device`` (bfloat16 on a CPU without native support); stop when it
    cannot run there (int8 on a GPU)."""
    from unnparse.runtime import precision_warning

    if precision.value == "int8" and device.type != "cpu":
        fail(f"--precision int8 parses on the CPU only (the model is on {device}): add --device cpu")
    message = precision_warning(precision.value, device)
    if message:
        warn(message)


def resolve_model(model: Path | None) -> Path:
    """--model, else $UNNPARSE_MODEL, else the most recently trained model under ./models (named on stderr)."""
    from unnparse.parser.loading import default_model_dir

    chosen, reason = default_model_dir(model)
    if reason is not None:
        err_console.print(f"using model {chosen} ({reason})")
    return chosen
