"""Training and evaluation of the MNIST UNN: joint classification + prototype loss (§3), best dev epoch kept.

Loss per batch: cross-entropy of the inferred Y plus γ times the binary cross-entropy, averaged over pixels, of
the prototype X̂ generated from each image's label against the binarized image. X̂ = tanh(z) lies in [-1, 1];
its pixel probability (X̂ + 1) / 2 equals sigmoid(2z), so the BCE is computed from the logits 2z (exact and
stable). Generation from a one-hot y is the same for every image of a class, so it runs once per class and
batch and is gathered by label.
"""

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

from unnparse.devices import host_to_device
from unnparse.mnist.config import CONFIG_LIMITS, MODEL_KIND, MnistConfig, TrainOptions
from unnparse.mnist.data import MnistData, batches, binarize, split_dev, to_float
from unnparse.mnist.model import MnistUNN
from unnparse.model_files import (
    ModelFileError,
    check_config,
    load_config,
    load_weights,
    save_model,
)
from unnparse.runtime import resolve_device
from unnparse.training.distributed import DistContext, rank_share
from unnparse.training.task import Evaluation, Step, TrainingTask
from unnparse.training.trainer import Trainer, TrainerOptions

__all__ = [
    "EpochStats",
    "MnistTask",
    "TrainOptions",
    "TrainResult",
    "accuracy",
    "batch_loss",
    "load_model",
    "prototype_predictions",
    "save_trained",
    "train",
]


@dataclass
class EpochStats:
    """What one epoch measured."""

    epoch: int
    loss: float
    dev_accuracy: float
    seconds: float
    data_seconds: float
    images: int


@dataclass
class TrainResult:
    """The best-dev model and the history of the run."""

    model: MnistUNN
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    best_dev_accuracy: float = 0.0


def batch_loss(
    model: MnistUNN,
    images: Tensor,
    targets: Tensor,
    labels: Tensor,
    gamma: float,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
) -> tuple[Tensor, Tensor]:
    """(loss, logits) of a batch: images [B, 1, 28, 28] in [-1, 1] (:func:`to_float`), their binarized
    versions (:func:`binarize`, the prototype targets) and labels. Each image's loss is its cross-entropy plus
    ``gamma`` times its prototype's BCE averaged over pixels; ``reduction`` "mean" or "sum" over the images."""
    logits = model(images, generator=generator)
    loss = F.cross_entropy(logits, labels, reduction="none")
    if gamma > 0 and not model.config.untied:
        classes = torch.arange(model.config.classes, device=images.device)
        z = model.generate(classes).preactivations["X"]
        bce = F.binary_cross_entropy_with_logits(2.0 * z[labels], targets, reduction="none")
        loss = loss + gamma * bce.flatten(1).mean(1)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"unknown reduction {reduction!r}")
    return (loss.mean() if reduction == "mean" else loss.sum()), logits


@torch.no_grad()
def accuracy(model: MnistUNN, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Classification accuracy in percent on ``uint8`` images (model switched to eval mode)."""
    model.eval()
    if len(labels) == 0:
        return 0.0
    device = next(model.parameters()).device
    correct = 0
    for idx in batches(torch.arange(len(labels)), batch_size):
        logits = model(to_float(images[idx].to(device)))
        correct += int((logits.argmax(-1).cpu() == labels[idx]).sum())
    return 100.0 * correct / len(labels)


@torch.no_grad()
def prototype_predictions(model: MnistUNN) -> list[int]:
    """The class the model assigns to its own prototype of each digit (after k generation sweeps)."""
    model.eval()
    final = model.prototypes()[-1].unsqueeze(1)  # [classes, 1, 28, 28]
    return model(final).argmax(-1).tolist()


class MnistTask(TrainingTask):
    """MNIST's part of training: seeded batches of images (each process trains on its share of every batch), the
    joint classification and prototype loss summed over images, dev accuracy."""

    kind = MODEL_KIND
    unit = "img"
    reduction = "sum"
    evaluation_name = "dev"

    def __init__(
        self,
        model: MnistUNN,
        data: MnistData,
        options: TrainOptions,
        dist: DistContext,
        train_idx: Tensor,
        dev_idx: Tensor,
        on_batch: Callable[[Tensor], None] | None = None,
    ) -> None:
        self.model = model
        self.data, self.options, self.dist = data, options, dist
        self.train_idx, self.dev_idx = train_idx, dev_idx
        self.images = data.train_images.to(dist.device)
        self.labels = data.train_labels.to(dist.device)
        self.shuffle = torch.Generator().manual_seed(options.seed + 1)
        self.y_init = torch.Generator().manual_seed(options.seed + 2 + 1000 * dist.rank)
        self.on_batch = on_batch

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.parameters()), "lr": self.options.lr}]

    def signature(self) -> dict[str, Any]:
        options = self.options
        return {
            **self.model.config.to_dict(),
            **{k: getattr(options, k) for k in ("batch_size", "gamma", "seed", "dev_size", "train_limit")},
            "training images": len(self.data.train_labels),
        }

    def generators(self) -> list[torch.Generator]:
        return [self.shuffle, self.y_init]

    def epoch_batches(self, epoch: int) -> list[tuple[Tensor, float]]:
        drawn = batches(self.train_idx, self.options.batch_size, shuffle=True, generator=self.shuffle)
        return [rank_share(batch_idx, self.dist) for batch_idx in drawn]

    def prepare(self, batch: Tensor, weight: float) -> tuple[Tensor, Tensor, Tensor, int]:
        if self.on_batch is not None and weight:
            self.on_batch(batch)
        idx = host_to_device(batch, self.dist.device)
        raw, y = self.images[idx], self.labels[idx]
        return to_float(raw), binarize(raw), y, len(batch)

    def step(self, prepared: tuple[Tensor, Tensor, Tensor, int], weight: float) -> Step:
        x, target, y, n = prepared
        loss, _ = batch_loss(self.model, x, target, y, self.options.gamma, self.y_init, reduction="sum")
        items = weight * n
        return Step(loss, torch.stack([loss.detach() * weight, loss.detach().new_full((), items)]), items)

    def evaluate(self) -> Evaluation:
        dev = accuracy(self.model, self.data.train_images[self.dev_idx], self.data.train_labels[self.dev_idx])
        return Evaluation({"accuracy": dev}, (dev,))

    def epoch_fields(self, totals: Sequence[float], seconds: float) -> dict[str, Any]:
        loss, seen = totals if totals else (0.0, 0.0)
        return {"loss": loss / max(seen, 1), "images": int(seen)}

    def progress_counts(self, totals: Sequence[float]) -> tuple[float, float]:
        return (totals[0] / max(totals[1], 1), totals[1]) if totals else (0.0, 0.0)

    def describe_epoch(self, record: Mapping[str, Any], best: bool) -> str:
        seconds, images = max(record["train_seconds"], 1e-9), record["images"]
        return (
            f"epoch {record['epoch']}: loss {record['loss']:.4f}  dev acc {record['dev']['accuracy']:.2f}%  "
            f"{seconds:.1f} s ({images / seconds:.0f} img/s, data {100 * record['data_seconds'] / seconds:.1f}%)"
        )


def train(
    config: MnistConfig,
    data: MnistData,
    options: TrainOptions,
    *,
    console: Console | None = None,
    dist: DistContext | None = None,
    on_batch: Callable[[Tensor], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train a model on ``data.train_*`` minus a seeded dev split with the
    :class:`~unnparse.training.trainer.Trainer` (Adam at a constant rate); keep the parameters of the best dev
    epoch.

    With ``dist`` (several processes, see :mod:`unnparse.training.distributed`), every rank draws the same batches
    of ``batch_size`` images and trains on its own share of each (:func:`rank_share`); one all-reduce per step
    makes the update that of the whole batch, so the run follows the one-process run. Only rank 0 evaluates on
    dev, reports and keeps the best epoch. ``on_batch`` receives the training-image indices of each of this rank's
    shares (for tests).

    ``checkpoint``: a file that rank 0 writes after every epoch (weights, the best epoch's weights, optimizer,
    every rank's random states). With ``resume`` the run continues from it as the uninterrupted run would have;
    more ``epochs`` extend a finished run, and the learning rate is ``options.lr``.

    Raises:
        CheckpointError: ``resume`` without a readable checkpoint of this configuration, data, batch size, seed
            and number of processes.
    """
    console = console or Console(stderr=True, markup=False)
    dist = dist or DistContext(device=resolve_device(options.device))
    torch.manual_seed(options.seed)
    train_idx, dev_idx = split_dev(len(data.train_labels), options.dev_size, options.seed)
    if options.train_limit is not None:
        train_idx = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(options.seed))]
        train_idx = train_idx[: options.train_limit].sort().values
    model = MnistUNN(config).to(dist.device)
    if dist.distributed:
        torch.manual_seed(options.seed + 1000 * dist.rank)  # dropout masks of their own on each rank
    task = MnistTask(model, data, options, dist, train_idx, dev_idx, on_batch)
    trainer_options = TrainerOptions(
        epochs=options.epochs,
        restore_best=True,
        checkpoint=Path(checkpoint) if checkpoint is not None else None,
        progress=options.progress,
    )
    run = Trainer(task, trainer_options, dist=dist, console=console).fit(resume=resume)
    history = [
        EpochStats(r["epoch"], r["loss"], r["dev"]["accuracy"], r["train_seconds"], r["data_seconds"], r["images"])
        for r in run.history
    ]
    best = run.best.get("accuracy", 0.0)
    return TrainResult(model=model, history=history, best_epoch=run.best_epoch, best_dev_accuracy=best)


def save_trained(directory: str | os.PathLike[str], result: TrainResult, options: TrainOptions) -> None:
    """Write the model directory: the model config plus a record of the training run."""
    config: dict[str, Any] = {"kind": MODEL_KIND, **result.model.config.to_dict()}
    config["training"] = {
        **{k: v for k, v in asdict(options).items() if k != "progress"},
        "best_epoch": result.best_epoch,
        "best_dev_accuracy": result.best_dev_accuracy,
        "parameters": result.model.num_parameters(),
        "channels": list(result.model.channels),
        "history": [asdict(h) for h in result.history],
    }
    save_model(directory, config, result.model.state_dict())


def load_model(directory: str | os.PathLike[str], device: str = "cpu") -> MnistUNN:
    """Rebuild a saved model from its directory (in eval mode), checking its config against
    :data:`CONFIG_LIMITS` and its weights against the sizes and hashes its config records.

    Raises:
        ModelFileError: missing/corrupt files, an out-of-range value or a config of another kind (one line naming
            the file).
    """
    raw = load_config(directory, kind=MODEL_KIND)
    cfg_path = Path(directory) / "config.json"
    check_config(raw, CONFIG_LIMITS, cfg_path)
    try:
        config = MnistConfig.from_dict(raw)
        model = MnistUNN(config)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{cfg_path}: invalid MNIST model config ({err})") from None
    except (RuntimeError, MemoryError) as err:
        raise ModelFileError(f"{cfg_path}: the configured model cannot be built here ({err})") from None
    load_weights(directory, model, raw)
    return model.to(resolve_device(device)).eval()
