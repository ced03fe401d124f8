"""The learning-rate plan of parser training: linear warmup, then linear decay to zero exactly where training ends.

Progress is counted in epochs, fractionally (``epoch - 1 + batches done / batches in the epoch``), so the decay
follows the batches actually drawn (length buckets shuffled with a seed make a few more batches than an unshuffled
pass) and ends at zero on the last update instead of leaving the last epochs at a learning rate of zero.

With a time budget, the end is re-planned after every epoch from the budget left and the recent cost of an epoch
(training, then evaluation and saving), so that the decay reaches zero when the budget is spent. A single process may
end inside an epoch (the plan is then fractional); distributed training plans whole epochs, so that every rank
stops at the same point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RECENT_EPOCHS", "LearningRatePlan", "epochs_that_fit"]

#: A time budget is re-planned from the cost of this many latest whole epochs.
RECENT_EPOCHS = 3
#: Shortest part of an epoch worth training at the end of a time budget (it costs a whole evaluation).
MIN_PARTIAL_EPOCH = 0.1


@dataclass
class LearningRatePlan:
    """Learning-rate factor (for :class:`torch.optim.lr_scheduler.LambdaLR`) as a function of progress in epochs.

    Attributes:
        epochs: where the decay reaches zero, in epochs (may be fractional).
        warmup_steps: optimizer updates of linear warmup (``factor`` rises from ``1 / warmup_steps`` to 1).
        warmup_epochs: progress at the end of warmup, in epochs.
        progress: epochs done so far (fractional); set by :meth:`advance` before each scheduler step.
    """

    epochs: float
    warmup_steps: int
    warmup_epochs: float
    progress: float = 0.0

    def factor(self, step: int) -> float:
        """The learning-rate multiplier for the update after ``step`` updates."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = self.epochs - self.warmup_epochs
        if span <= 0:
            return 0.0
        return min(1.0, max(0.0, (self.epochs - self.progress) / span))

    def advance(self, epoch: int, done: int, total: int) -> None:
        """Record progress: ``done`` of ``total`` batches of ``epoch`` (counted from 1) are trained."""
        self.progress = epoch - 1 + done / max(1, total)

    @property
    def finished(self) -> bool:
        """True once progress has reached the end of the plan (the learning rate is zero)."""
        return self.progress >= self.epochs - 1e-9


def epochs_that_fit(
    seconds_left: float,
    train_seconds: Sequence[float],
    other_seconds: Sequence[float],
    *,
    whole: bool = False,
    recent: int = RECENT_EPOCHS,
) -> float:
    """How many more epochs fit in ``seconds_left``, from the last ``recent`` epochs' costs.

    Each epoch costs its training time plus evaluation and saving (``other_seconds``), which a partial last epoch
    pays in full too. ``whole`` counts whole epochs only. A part shorter than :data:`MIN_PARTIAL_EPOCH` is not worth
    its evaluation and is left out.
    """
    if seconds_left <= 0 or not train_seconds:
        return 0.0
    train = sum(train_seconds[-recent:]) / len(train_seconds[-recent:])
    other = sum(other_seconds[-recent:]) / len(other_seconds[-recent:]) if other_seconds else 0.0
    if train <= 0:
        return 0.0
    full = math.floor(seconds_left / (train + other))
    if whole:
        return float(full)
    part = (seconds_left - full * (train + other) - other) / train
    return full + (part if part >= MIN_PARTIAL_EPOCH else 0.0)
