"""Options and helpers that the commands which load a parser share (``parse``, ``evaluate``, ``serve``)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from unnparse.cli.common import err_console, warn

if TYPE_CHECKING:
    import torch

__all__ = ["MaxWordsOption", "Precision", "PrecisionOption", "resolve_model", "warn_precision"]


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


MaxWordsOption = Annotated[
    int,
    typer.Option(
        help="Longest sentence parsed whole: a longer one is parsed in pieces of at most this many words, joined "
        "into one tree by 'dep' arcs from the first piece's root (a warning names its line); bounds memory.",
        min=2,
    ),
]


def warn_precision(precision: Precision, device: torch.device) -> None:
    """Warn when ``precision`` does not suit ``device`` (bfloat16 on a CPU without native support)."""
    from unnparse.runtime import precision_warning

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
