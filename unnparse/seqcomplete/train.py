"""Training and evaluation of the sequence-completion UNN: cross-entropy on the masked positions, Adam, clipping."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor

from unnparse.model_files import (
    ModelFileError,
    check_config,
    load_config,
    load_weights,
    save_model,
)
from unnparse.runtime import resolve_device
from unnparse.seqcomplete.config import (
    CONFIG_LIMITS,
    LR_SCHEDULES,
    MODEL_KIND,
    RANDOM_ITER_MAX,
    SeqConfig,
    TrainOptions,
)
from unnparse.seqcomplete.data import Batch, SeqDataset, make_batch
from unnparse.seqcomplete.model import SeqCompletionUNN
from unnparse.training.distributed import DistContext, rank_share
from unnparse.training.schedules import LinearDecay
from unnparse.training.task import Evaluation, Step, TrainingTask
from unnparse.training.trainer import Trainer, TrainerOptions

__all__ = [
    "CurvePoint",
    "EpochStats",
    "Score",
    "SeqTask",
    "TrainOptions",
    "evaluate",
    "learning_rate_factor",
    "load_model",
    "masked_loss",
    "save_trained",
    "train",
]


def learning_rate_factor(updates: int, total: int, schedule: str = "constant", warmup: int = 0) -> float:
    """The multiplier of the learning rate for the update after ``updates`` updates of a run of ``total``
    (:class:`~unnparse.training.schedules.LinearDecay`).

    ``warmup`` updates rise linearly to 1; then ``constant`` stays at 1 and ``linear`` falls linearly so that the
    last update (number ``total``) still has a positive rate and the next would have none.
    """
    return _schedule(total, schedule, warmup).factor(updates)


def _schedule(total: int, schedule: str, warmup: int) -> LinearDecay:
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"learning-rate schedule must be one of {', '.join(LR_SCHEDULES)}, not {schedule!r}")
    return LinearDecay(total, warmup, decay=schedule == "linear")


@dataclass
class EpochStats:
    """What one epoch measured (accuracies in percent of masked tokens)."""

    epoch: int
    loss: float
    train_accuracy: float
    seconds: float
    test_accuracy: float | None = None
    #: False for an epoch cut short by ``max_minutes`` or ``max_updates`` (then its figures cover the part done)
    complete: bool = True


@dataclass
class CurvePoint:
    """Test accuracy (percent of masked tokens) after ``updates`` updates and ``seconds`` of training."""

    updates: int
    seconds: float
    test_accuracy: float


@dataclass
class Score:
    """Accuracy on masked tokens and on whole instances (all blanks right), in percent."""

    accuracy: float
    sequence_accuracy: float
    masked_tokens: int
    instances: int


@dataclass
class TrainResult:
    """The trained model and the history of the run."""

    model: SeqCompletionUNN
    history: list[EpochStats] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)


def masked_loss(
    model: SeqCompletionUNN, batch: Batch, *, reduction: str = "mean", **kwargs: Any
) -> tuple[Tensor, Tensor, Tensor]:
    """(cross-entropy over the masked positions, number correct, number masked) of a batch; ``reduction`` "mean"
    or "sum" over the masked positions.

    Computed at every position and weighted by the mask rather than by selecting the masked rows, whose number the
    host would have to wait for on a GPU."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"unknown reduction {reduction!r}")
    logits = model(batch, **kwargs)
    gold = (batch.tokens - 1).clamp_min(0)  # padding (0) becomes class 0, weighted out below
    weight = batch.masked.to(logits.dtype)
    losses = F.cross_entropy(logits.flatten(0, 1), gold.flatten(), reduction="none").view_as(weight)
    total, n_masked = (losses * weight).sum(), batch.masked.sum()
    correct = ((logits.argmax(-1) == gold) & batch.masked).sum()
    return (total if reduction == "sum" else total / n_masked.clamp_min(1)), correct, n_masked


@torch.no_grad()
def evaluate(model: SeqCompletionUNN, data: SeqDataset, index: Tensor, batch_size: int = 256) -> Score:
    """Score the instances ``index`` with the evaluation sweeps (model switched to eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    correct = total = exact = 0
    for start in range(0, len(index), batch_size):
        batch = make_batch(data, index[start : start + batch_size]).to(device)
        pred = model.complete(batch)
        wrong = (pred != batch.tokens) & batch.masked
        correct += int(batch.masked.sum() - wrong.sum())
        total += int(batch.masked.sum())
        exact += int((~wrong.any(-1)).sum())
    n = len(index)
    return Score(100.0 * correct / max(total, 1), 100.0 * exact / max(n, 1), total, n)


class SeqTask(TrainingTask):
    """Sequence completion's part of training: seeded batches of instances (each process trains on its share of
    every batch), sweeps drawn per batch when their number is random, cross-entropy summed over the masked
    positions, test accuracy."""

    kind = MODEL_KIND
    unit = "seq"
    reduction = "sum"
    evaluation_name = "test"

    def __init__(
        self,
        model: SeqCompletionUNN,
        data: SeqDataset,
        options: TrainOptions,
        dist: DistContext,
        on_batch: Callable[[Tensor], None] | None = None,
    ) -> None:
        self.model = model
        self.data, self.options, self.dist = data, options, dist
        self.shuffle = torch.Generator().manual_seed(options.seed + 1)
        self.order = torch.Generator().manual_seed(options.seed + 2)
        self.train_idx, self.test_idx = data.split("train"), data.split("test")
        self.on_batch = on_batch

    @property
    def batches_per_epoch(self) -> int:
        return -(-len(self.train_idx) // self.options.batch_size)

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.parameters()), "lr": self.options.lr}]

    def signature(self) -> dict[str, Any]:
        data = self.data
        return {
            **self.model.config.to_dict(),
            **{f"data {k}": v for k, v in asdict(data.spec).items()},
            "data instances": len(data),
            "batch_size": self.options.batch_size,
            "seed": self.options.seed,
        }

    def generators(self) -> list[torch.Generator]:
        return [self.shuffle, self.order]

    def epoch_batches(self, epoch: int) -> list[tuple[Tensor, float]]:
        size = self.options.batch_size
        perm = self.train_idx[torch.randperm(len(self.train_idx), generator=self.shuffle)]
        return [rank_share(perm[b * size : (b + 1) * size], self.dist) for b in range(self.batches_per_epoch)]

    def prepare(self, batch: Tensor, weight: float) -> Batch:
        if self.on_batch is not None and weight:
            self.on_batch(batch)
        return make_batch(self.data, batch).to(self.dist.device)

    def step(self, prepared: Batch, weight: float) -> Step:
        config = self.model.config
        sweeps = config.unn_iter
        if config.random_iter:
            sweeps = int(torch.randint(1, RANDOM_ITER_MAX + 1, (1,), generator=self.order))
        loss, n_correct, n_masked = masked_loss(
            self.model, prepared, reduction="sum", sweeps=sweeps, generator=self.order
        )
        instances = loss.detach().new_full((), float(len(prepared.tokens)))
        stats = torch.stack([n_masked.float(), loss.detach().float(), n_correct.float(), instances]) * weight
        return Step(loss, stats, n_masked.float() * weight)

    def evaluate(self) -> Evaluation:
        accuracy = evaluate(self.model, self.data, self.test_idx).accuracy
        return Evaluation({"accuracy": accuracy}, (accuracy,))

    def epoch_fields(self, totals: Sequence[float], seconds: float) -> dict[str, Any]:
        masked, loss, correct, seen = totals if totals else (0.0, 0.0, 0.0, 0.0)
        return {"loss": loss / max(masked, 1), "train_accuracy": 100.0 * correct / max(masked, 1), "seen": int(seen)}

    def progress_counts(self, totals: Sequence[float]) -> tuple[float, float]:
        return (totals[1] / max(totals[0], 1), totals[3]) if totals else (0.0, 0.0)

    def describe_epoch(self, record: Mapping[str, Any], best: bool) -> str:
        line = f"epoch {record['epoch']}: loss {record['loss']:.4f}  train acc {record['train_accuracy']:.2f}%"
        if "test" in record:
            line += f"  test acc {record['test']['accuracy']:.2f}%"
        if "fraction" in record:
            line += f"  ({100 * record['fraction']:.0f}% of the epoch)"
        seconds = max(record["train_seconds"], 1e-9)
        return f"{line}  {seconds:.1f} s ({record['seen'] / seconds:.0f} seq/s)"

    def describe_evaluation(self, point: Mapping[str, Any], best: bool) -> str:
        accuracy = point["test"]["accuracy"]
        return f"update {point['updates']}: test acc {accuracy:.2f}% after {point['seconds']:.1f} s of training"


def train(
    config: SeqConfig,
    data: SeqDataset,
    options: TrainOptions,
    *,
    console: Console | None = None,
    dist: DistContext | None = None,
    on_batch: Callable[[Tensor], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    init_state: dict[str, Tensor] | None = None,
) -> TrainResult:
    """Train on the train split of ``data`` for ``options.epochs`` epochs with the
    :class:`~unnparse.training.trainer.Trainer`; return the final model.

    With ``dist`` (several processes, see :mod:`unnparse.training.distributed`), every rank draws the same batches
    (and the same sweep counts and orders) and trains on its own share of each batch (:func:`rank_share`); one
    all-reduce per step makes the update that of the whole batch, so the run follows the one-process run. Only
    rank 0 evaluates and reports; its clock decides ``max_minutes`` for all. ``on_batch`` receives the instance
    indices of each of this rank's shares (for tests).

    ``checkpoint``: a file that rank 0 keeps up to date (weights, optimizer, random states, position in the
    epoch; see ``options.checkpoint_every``). With ``resume`` the run continues from it: the same batches, sweeps
    and updates as the uninterrupted run, so that more ``epochs``, ``max_minutes`` or ``max_updates`` extend a
    finished run; the learning rate is ``options.lr`` (it may differ from the interrupted run's), times
    :func:`learning_rate_factor` of the updates done, which the run's end (``max_updates``, else ``epochs``) and
    ``options.lr_schedule`` / ``options.warmup`` decide. ``init_state``: weights to start from instead of random
    ones (a fresh optimizer; see ``--init-from``).

    Raises:
        CheckpointError: ``resume`` without a readable checkpoint of this configuration, data and batch size.
    """
    console = console or Console(stderr=True, markup=False)
    dist = dist or DistContext(device=resolve_device(options.device))
    torch.manual_seed(options.seed)
    model = SeqCompletionUNN(config).to(dist.device)
    if init_state is not None:
        model.load_state_dict(init_state)
    task = SeqTask(model, data, options, dist, on_batch)
    planned = options.epochs * task.batches_per_epoch
    if options.max_updates is not None:
        planned = min(planned, options.max_updates)
    schedule = _schedule(planned, options.lr_schedule, options.warmup)
    trainer_options = TrainerOptions(
        epochs=options.epochs,
        max_updates=options.max_updates,
        max_minutes=options.max_minutes,
        budget_counts_evaluations=False,
        clip=options.clip,
        evaluate_each_epoch=options.eval_each_epoch,
        evaluate_every=options.eval_every,
        keep_best=False,
        checkpoint=Path(checkpoint) if checkpoint is not None else None,
        checkpoint_every=options.checkpoint_every if checkpoint is not None else 0,
        progress=options.progress,
    )
    run = Trainer(task, trainer_options, schedule=schedule, dist=dist, console=console).fit(resume=resume)
    history = [
        EpochStats(
            r["epoch"],
            r["loss"],
            r["train_accuracy"],
            r["train_seconds"],
            r["test"]["accuracy"] if "test" in r else None,
            complete="fraction" not in r,
        )
        for r in run.history
    ]
    curve = [CurvePoint(p["updates"], p["seconds"], p["test"]["accuracy"]) for p in run.evaluations]
    return TrainResult(model, history, curve)


def save_trained(directory: str | os.PathLike[str], result: TrainResult, options: TrainOptions) -> None:
    """Write the model directory: the model config plus a record of the training run."""
    config: dict[str, Any] = {"kind": MODEL_KIND, **result.model.config.to_dict()}
    config["training"] = {
        **{k: v for k, v in asdict(options).items() if k != "progress"},
        "history": [asdict(h) for h in result.history],
        "curve": [asdict(c) for c in result.curve],
    }
    save_model(directory, config, result.model.state_dict())


def load_model(directory: str | os.PathLike[str], device: str = "cpu") -> SeqCompletionUNN:
    """Rebuild a saved model from its directory (in eval mode), checking its config against
    :data:`CONFIG_LIMITS` and its weights against the sizes and hashes its config records.

    Raises:
        ModelFileError: missing/corrupt files, an out-of-range value or a config of another kind (one line naming
            the file).
    """
    raw = load_config(directory, kind=MODEL_KIND)
    path = Path(directory) / "config.json"
    check_config(raw, CONFIG_LIMITS, path)
    try:
        config = SeqConfig.from_dict(raw)
        model = SeqCompletionUNN(config)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: invalid sequence-completion model config ({err})") from None
    except (RuntimeError, MemoryError) as err:
        raise ModelFileError(f"{path}: the configured model cannot be built here ({err})") from None
    load_weights(directory, model, raw)
    return model.to(resolve_device(device)).eval()
