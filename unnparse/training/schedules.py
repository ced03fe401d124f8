"""Learning-rate schedules of the :class:`~unnparse.training.trainer.Trainer`: the factor by which each parameter
group's base rate is multiplied for the next update, and how a time budget moves the end of the decay.

One mechanism serves every task: before each update the trainer sets ``lr = base_lr * schedule.factor(updates)``;
after it, :meth:`Schedule.after_update` records the progress (and may re-plan); after each epoch
:meth:`Schedule.after_epoch` may re-plan from what the epoch cost. The shapes:

- :class:`ConstantRate`: the base rate throughout; a time budget simply stops training.
- :class:`LinearDecay`: linear warmup over a number of updates, then constant or linear decay to zero on the last
  planned update; with ``fit_to_budget`` the last update is re-planned after every update from the time updates
  and evaluations take, so that the decay ends when the budget does.
- :class:`PlateauDecay`: warmup, then the base rate until the evaluations stop improving (or only the decay
  still fits in the epochs or the time budget), then a linear decay to zero over a share of the epochs trained, and
  the end of training: it trains as long as there is something to learn.
- :class:`EpochLinearDecay`: warmup over updates, then linear decay in *epochs* of progress (fractional:
  ``epoch - 1 + batches done / batches in the epoch``), so that the decay follows the batches actually drawn and
  ends at zero on the last update; with a time budget the end is re-planned after every epoch from the cost of
  the latest epochs (training, then evaluation and saving). One process may end inside an epoch; several plan whole
  epochs, so that every rank stops at the same point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MIN_PARTIAL_EPOCH",
    "RECENT_EPOCHS",
    "ConstantRate",
    "EpochEnd",
    "EpochLinearDecay",
    "LinearDecay",
    "PlateauDecay",
    "Schedule",
    "UpdateDone",
    "epochs_that_fit",
]

#: A time budget is re-planned from the cost of this many latest whole epochs.
RECENT_EPOCHS = 3
#: Shortest part of an epoch worth training at the end of a time budget (it costs a whole evaluation).
MIN_PARTIAL_EPOCH = 0.1


@dataclass(frozen=True)
class UpdateDone:
    """What the trainer tells a schedule after an update.

    Attributes:
        epoch: the epoch in progress (counted from 1).
        passes_done: batches of that epoch trained so far (several per update with gradient accumulation).
        passes: batches in that epoch.
        updates: optimizer updates made so far in the whole run.
        seconds_left: of the time budget (None without one).
        seconds_per_update: the recent cost of an update, evaluations left out (None until measured).
        seconds_per_evaluation: the cost of an evaluation (None until measured).
        updates_between_evaluations: how often evaluations come (None: only at the end).
    """

    epoch: int
    passes_done: int
    passes: int
    updates: int
    seconds_left: float | None = None
    seconds_per_update: float | None = None
    seconds_per_evaluation: float | None = None
    updates_between_evaluations: int | None = None


@dataclass(frozen=True)
class EpochEnd:
    """What the trainer tells a schedule after an epoch (and its evaluation and saving).

    Attributes:
        epoch: the epoch that ended.
        complete: False for an epoch cut short.
        train_seconds: of training in it (evaluations left out).
        other_seconds: of evaluation, saving and checkpointing after it.
        seconds_left: of the time budget (None without one).
        epochs: the number of epochs asked for.
        processes: how many processes train together.
        bad_evaluations: evaluations since the last better one (0 when this epoch's was the best so far).
    """

    epoch: int
    complete: bool
    train_seconds: float
    other_seconds: float
    seconds_left: float | None
    epochs: int
    processes: int = 1
    bad_evaluations: int = 0


class Schedule:
    """The learning-rate multiplier as training goes (base class: a constant 1).

    Attributes:
        fits_budget: True when the schedule itself plans a time budget (the trainer then leaves stopping to
            :attr:`finished` and :meth:`after_epoch`); False when the trainer stops once the budget is spent.
    """

    fits_budget = False

    def factor(self, updates: int) -> float:
        """The multiplier of the base learning rate for the update after ``updates`` updates."""
        return 1.0

    def after_update(self, done: UpdateDone) -> None:
        """Record an update's progress (and re-plan, for a schedule that fits a budget)."""

    def after_epoch(self, end: EpochEnd) -> bool:
        """Re-plan after an epoch; False when no more training fits (then training stops)."""
        return end.epoch < end.epochs

    @property
    def finished(self) -> bool:
        """True once the plan has reached its end (the learning rate is zero)."""
        return False

    def update_plan(self) -> tuple[int, int] | None:
        """(the update after which the plan ends, the updates first asked for) for a schedule that counts updates
        and fits a budget (the first is smaller when the budget cut the plan short); None when the epochs decide."""
        return None

    def shared_state(self) -> list[float]:
        """The numbers every process must share (rank 0's are sent to all after each epoch)."""
        return []

    def set_shared_state(self, values: Sequence[float]) -> None:
        """Take rank 0's :meth:`shared_state`."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state for a checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class ConstantRate(Schedule):
    """The base learning rate throughout."""


@dataclass
class LinearDecay(Schedule):
    """Linear warmup over ``warmup`` updates (from ``1 / warmup`` to 1), then constant (``decay=False``) or falling
    linearly so that the last update (number ``total``) still has a positive rate and the next would have none.

    With ``fit_to_budget``, ``total`` is moved earlier after every update once a few have been timed, to the updates
    that fit the time left with their evaluations and a final one (at least the updates already made); an
    evaluation not yet timed is taken to cost ``evaluation_updates`` updates. ``total`` never grows past
    ``planned``, the total first asked for.
    """

    total: int
    warmup: int = 0
    decay: bool = True
    fit_to_budget: bool = False
    evaluation_updates: float = 0.0
    #: updates timed before the plan is first moved (a few, so that warm-up costs are not taken for the rate)
    timed_before_replanning: int = 5
    planned: int = field(init=False)

    def __post_init__(self) -> None:
        if self.total < 0 or self.warmup < 0:
            raise ValueError(f"need non-negative updates and warmup, not {self.total}, {self.warmup}")
        self.planned = self.total
        self.fits_budget = self.fit_to_budget

    def factor(self, updates: int) -> float:
        if updates < self.warmup:
            return (updates + 1) / self.warmup
        if not self.decay:
            return 1.0
        span = self.total - self.warmup
        return max(0.0, (self.total - updates) / span) if span > 0 else 0.0

    def after_update(self, done: UpdateDone) -> None:
        if not self.fit_to_budget or done.seconds_left is None or done.updates >= self.total:
            return
        per_update = done.seconds_per_update
        if per_update is None:
            return
        evaluation = done.seconds_per_evaluation
        if evaluation is None:
            evaluation = per_update * self.evaluation_updates
        per_update_with_evaluations = per_update
        if done.updates_between_evaluations:
            per_update_with_evaluations += evaluation / done.updates_between_evaluations
        more = max(0, math.floor((done.seconds_left - evaluation) / max(per_update_with_evaluations, 1e-6)))
        if more == 0 or done.updates >= self.timed_before_replanning:
            self.total = max(done.updates, min(self.planned, done.updates + more))

    def update_plan(self) -> tuple[int, int] | None:
        return (self.total, self.planned) if self.fit_to_budget else None

    def shared_state(self) -> list[float]:
        return [float(self.total)]

    def set_shared_state(self, values: Sequence[float]) -> None:
        self.total = int(values[0])

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.fit_to_budget:  # a budget plan continues; otherwise the options decide the end
            self.total = min(self.planned, int(state.get("total", self.total)))


@dataclass
class EpochLinearDecay(Schedule):
    """Warmup over ``warmup_steps`` updates, then linear decay to zero at ``epochs`` of progress.

    Attributes:
        epochs: where the decay reaches zero, in epochs (may be fractional).
        warmup_steps: optimizer updates of linear warmup (``factor`` rises from ``1 / warmup_steps`` to 1).
        warmup_epochs: progress at the end of warmup, in epochs.
        progress: epochs done so far (fractional); set by :meth:`advance` after each update.
        budget: True when a time budget is planned (after each epoch, from ``train_costs`` and ``other_costs``,
            the seconds of the latest whole epochs).
    """

    epochs: float
    warmup_steps: int
    warmup_epochs: float
    progress: float = 0.0
    budget: bool = False
    train_costs: list[float] = field(default_factory=list)
    other_costs: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fits_budget = self.budget

    def factor(self, updates: int) -> float:
        if updates < self.warmup_steps:
            return (updates + 1) / self.warmup_steps
        span = self.epochs - self.warmup_epochs
        if span <= 0:
            return 0.0
        return min(1.0, max(0.0, (self.epochs - self.progress) / span))

    def advance(self, epoch: int, done: int, total: int) -> None:
        """Record progress: ``done`` of ``total`` batches of ``epoch`` (counted from 1) are trained."""
        self.progress = epoch - 1 + done / max(1, total)

    def after_update(self, done: UpdateDone) -> None:
        self.advance(done.epoch, done.passes_done, done.passes)

    @property
    def finished(self) -> bool:
        return self.progress >= self.epochs - 1e-9

    def after_epoch(self, end: EpochEnd) -> bool:
        if end.complete:  # a whole epoch's cost plans a time budget
            self.train_costs = [*self.train_costs, end.train_seconds][-RECENT_EPOCHS:]
            self.other_costs = [*self.other_costs, end.other_seconds][-RECENT_EPOCHS:]
        return self.replan(end.epoch, end.epochs, end.seconds_left, end.processes)

    def replan(self, epoch: int, epochs: int, seconds_left: float | None, processes: int = 1) -> bool:
        """Where the decay ends, from the epochs asked for or the time left after ``epoch``; False when no more
        training fits."""
        self.epochs = float(epochs)
        if seconds_left is None or not self.train_costs:
            return epoch < epochs
        more = epochs_that_fit(seconds_left, self.train_costs, self.other_costs, whole=processes > 1)
        self.epochs = min(float(epochs), epoch + more)
        return more > 0 and epoch < epochs

    def shared_state(self) -> list[float]:
        return [self.epochs]

    def set_shared_state(self, values: Sequence[float]) -> None:
        self.epochs = float(values[0])

    def state_dict(self) -> dict[str, Any]:
        return {"progress": self.progress, "train": self.train_costs, "other": self.other_costs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.progress = float(state["progress"])
        self.train_costs = [float(s) for s in state.get("train", [])]
        self.other_costs = [float(s) for s in state.get("other", [])]


@dataclass
class PlateauDecay(EpochLinearDecay):
    """Warmup, then the base rate for as long as the evaluations improve; once ``patience`` epochs in a row brought
    no better one (or once only the decay still fits before ``epochs`` or the time budget), a linear decay to zero
    over ``decay_fraction`` of the epochs trained so far (at least ``min_decay_epochs``), and training ends there.

    The best evaluation is kept as always (the decay usually brings it). ``decay_start`` is the progress (in epochs)
    where the decay began (None before); :attr:`epochs` is where it ends once it has begun.
    """

    patience: int = 5
    decay_fraction: float = 0.2
    min_decay_epochs: float = 2.0
    decay_start: float | None = None
    limit: float = math.inf

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.patience < 1 or not 0.0 < self.decay_fraction <= 1.0 or self.min_decay_epochs <= 0:
            raise ValueError("PlateauDecay needs patience >= 1, decay_fraction in (0, 1] and min_decay_epochs > 0")
        self.limit = self.epochs

    def factor(self, updates: int) -> float:
        if updates < self.warmup_steps:
            return (updates + 1) / self.warmup_steps
        if self.decay_start is None:
            return 1.0
        span = self.epochs - self.decay_start
        return 0.0 if span <= 0 else min(1.0, max(0.0, (self.epochs - self.progress) / span))

    @property
    def finished(self) -> bool:
        return self.decay_start is not None and self.progress >= self.epochs - 1e-9

    def decay_length(self, epoch: float) -> float:
        """Epochs of decay for a decay that starts after ``epoch`` epochs."""
        return max(self.min_decay_epochs, self.decay_fraction * epoch)

    def replan(self, epoch: int, epochs: int, seconds_left: float | None, processes: int = 1) -> bool:
        return self.plan(epoch, epochs, seconds_left, processes, bad_evaluations=0)

    def after_epoch(self, end: EpochEnd) -> bool:
        if end.complete:
            self.train_costs = [*self.train_costs, end.train_seconds][-RECENT_EPOCHS:]
            self.other_costs = [*self.other_costs, end.other_seconds][-RECENT_EPOCHS:]
        return self.plan(end.epoch, end.epochs, end.seconds_left, end.processes, end.bad_evaluations)

    def plan(self, epoch: int, epochs: int, seconds_left: float | None, processes: int, bad_evaluations: int) -> bool:
        """After ``epoch``: the latest end that the epochs asked for and the time left allow, and whether the decay
        starts now (a plateau, or no more room than the decay needs); False when training is over."""
        limit = float(epochs)
        if seconds_left is not None and self.train_costs:
            fit = epochs_that_fit(seconds_left, self.train_costs, self.other_costs, whole=processes > 1)
            limit = min(limit, epoch + fit)
        self.limit = limit
        if self.decay_start is None:
            length = self.decay_length(epoch)
            if bad_evaluations >= self.patience or limit - epoch <= length:
                self.decay_start = self.progress
                self.epochs = min(limit, epoch + length)
            else:
                self.epochs = limit
        else:
            self.epochs = min(self.epochs, limit)
        return epoch < self.epochs - 1e-9

    def describe(self, unit: str = "dev score") -> str:
        """One line saying what ends training."""
        return (
            f"the learning rate stays at its base until the {unit} has not improved for {self.patience} epochs, "
            f"then decays to zero over {self.decay_fraction:.0%} of the epochs trained (at least "
            f"{self.min_decay_epochs:g}), and training ends"
        )

    def shared_state(self) -> list[float]:
        return [self.epochs, -1.0 if self.decay_start is None else self.decay_start]

    def set_shared_state(self, values: Sequence[float]) -> None:
        self.epochs = float(values[0])
        self.decay_start = None if values[1] < 0 else float(values[1])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "decay_start": self.decay_start, "epochs": self.epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        start = state.get("decay_start")
        self.decay_start = None if start is None else float(start)
        if "epochs" in state:
            self.epochs = float(state["epochs"])


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
