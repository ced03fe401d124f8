"""Training, shared by every model: the one :class:`~unnparse.training.trainer.Trainer` loop and what it is made of.

- :mod:`~unnparse.training.task`: what a model supplies (:class:`TrainingTask`: batches, step, evaluation).
- :mod:`~unnparse.training.trainer`: the loop (optimizer, accumulation, clipping, mixed precision, several
  processes, evaluation, best keeping, early stopping, checkpoints and resuming, progress, metrics file).
- :mod:`~unnparse.training.schedules`: learning-rate schedules and time budgets.
- :mod:`~unnparse.training.weight_average`: the exponential moving average of the weights.
- :mod:`~unnparse.training.checkpoints`: the checkpoint file (no pickled code) and random states.
- :mod:`~unnparse.training.distributed`: processes launched by torchrun, gradient exchange.
"""

from unnparse.training.schedules import ConstantRate, EpochLinearDecay, LinearDecay, Schedule
from unnparse.training.task import Evaluation, Step, TrainingTask
from unnparse.training.trainer import Trainer, TrainerOptions, TrainerResult

__all__ = [
    "ConstantRate",
    "EpochLinearDecay",
    "Evaluation",
    "LinearDecay",
    "Schedule",
    "Step",
    "Trainer",
    "TrainerOptions",
    "TrainerResult",
    "TrainingTask",
]
