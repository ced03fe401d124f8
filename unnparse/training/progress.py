"""The progress bar of a training run (drawn on a rich console; the engine and the models never draw)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["training_progress"]


def training_progress(*, enabled: bool = True, unit: str = "it", console: Console | None = None) -> Progress:
    """A transient rich progress bar showing each task's description and the fields ``loss`` and ``speed``
    (``unit``/s)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[speed]:,.0f} " + unit + "/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        console=console,
        transient=True,
    )
