"""Run-time helpers shared by the trainers: device choice, CPU threads and progress bars."""

from __future__ import annotations

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["resolve_device", "set_threads", "training_progress"]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``/``cuda``/``cuda:N`` as given.

    Raises:
        ValueError: an unknown name, or CUDA asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but CUDA is not available on this machine")
    return device


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in torch (0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def training_progress(*, enabled: bool = True, unit: str = "it", console: Console | None = None) -> Progress:
    """A rich progress bar showing the fields ``loss`` and ``speed`` (``unit``/s) of each task."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[speed]:.0f} " + unit + "/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        console=console,
    )
