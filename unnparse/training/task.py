"""What a model supplies to the :class:`~unnparse.training.trainer.Trainer`: its batches, its step, its evaluation.

A task owns its model and data and nothing of the loop: the trainer draws the epoch's batches from it, asks it to
prepare each (moving it to the device: timed as data time) and to compute the loss, and, between epochs or every
few updates, to evaluate. Everything else (optimizer, schedule, clipping, mixed precision, accumulation, several
processes, checkpoints and resuming, early stopping, weight averaging, progress and the metrics file) is the
trainer's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = ["Evaluation", "Step", "TrainingTask"]


@dataclass
class Step:
    """The result of one batch's forward pass.

    Attributes:
        loss: the scalar to differentiate (the trainer multiplies it by the batch's weight and ``1 / accumulate``).
        stats: a 1-D tensor of sums the task reports (loss times items, items, correct predictions, ...), already
            multiplied by the batch's weight; the trainer adds them over the epoch (and over processes) and hands
            the totals back to :meth:`TrainingTask.epoch_fields`.
        items: with ``reduction = "sum"``, how many items ``loss`` summed over (times the weight): the gradients of
            an update are divided by the items of all its batches and processes.
    """

    loss: Tensor
    stats: Tensor
    items: Tensor | float = 1.0


@dataclass
class Evaluation:
    """An evaluation's scores (JSON-able ``metrics``) and the ``score`` by which runs are compared (higher is
    better; compared as a tuple, so a second entry breaks ties)."""

    metrics: dict[str, Any]
    score: tuple[float, ...]


class TrainingTask:
    """Base class of the tasks the trainer trains (the parser, MNIST, sequence completion, the tokenizer).

    Attributes:
        kind: the model kind (checkpoints name it: a checkpoint of one kind cannot resume another).
        unit: what the progress bar counts per second (``words``, ``img``, ``seq``).
        reduction: ``"mean"`` when :attr:`Step.loss` is already a mean over the batch (gradients of several
            processes are averaged); ``"sum"`` when it is a sum over :attr:`Step.items` items (the update is then
            that of the mean over every item of every batch and process).
        evaluation_name: the key under which an epoch's evaluation is recorded (``dev``, ``test``).
        log_prefix: put before the trainer's own messages (``tokenizer: ``).
        model: the module trained.
    """

    kind: str = "model"
    unit: str = "it"
    reduction: Literal["mean", "sum"] = "mean"
    evaluation_name: str = "dev"
    log_prefix: str = ""
    model: torch.nn.Module

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups, each with its base ``lr``."""
        raise NotImplementedError

    def signature(self) -> dict[str, Any]:
        """The settings a resumed run must share with the interrupted one (model, data, batching, seed)."""
        raise NotImplementedError

    def generators(self) -> list[torch.Generator | random.Random]:
        """The random generators the task draws from (saved in checkpoints with the global ones)."""
        return []

    def epoch_batches(self, epoch: int) -> Sequence[tuple[Any, float]]:
        """This process's ``(batch, weight)`` pairs of ``epoch``, as many on every process (a weight of 0 joins the
        others' gradient exchange without counting)."""
        raise NotImplementedError

    def prepare(self, batch: Any, weight: float) -> Any:
        """The batch ready for :meth:`step` (tensors built and moved to the device)."""
        return batch

    def step(self, prepared: Any, weight: float) -> Step:
        """The forward pass and loss of a prepared batch (in training mode, inside the trainer's autocast)."""
        raise NotImplementedError

    def evaluate(self) -> Evaluation | None:
        """Scores of the current weights (None: nothing to evaluate on; every epoch then counts as the best)."""
        return None

    def epoch_fields(self, totals: Sequence[float], seconds: float) -> dict[str, Any]:
        """The record of an epoch (or of the updates since the last evaluation) from its summed :attr:`Step.stats`
        and its seconds of training; ``loss`` is shown by the progress bar."""
        return {}

    def progress_counts(self, totals: Sequence[float]) -> tuple[float, float]:
        """(mean loss, units done) from the epoch's summed stats so far, for the progress bar."""
        return 0.0, 0.0

    def describe_epoch(self, record: Mapping[str, Any], best: bool) -> str | None:
        """A line for the log after an epoch (None: nothing)."""
        return None

    def describe_evaluation(self, point: Mapping[str, Any], best: bool) -> str | None:
        """A line for the log after an evaluation between epochs (None: nothing)."""
        return None

    def keep(self, record: Mapping[str, Any]) -> None:
        """Called on the first process when an evaluation is the best so far (the model holds the evaluated
        weights): save the model, for example."""
