"""Training and evaluation of the MNIST UNN: joint classification + prototype loss (§3), best dev epoch kept.

Loss per batch: cross-entropy of the inferred Y plus γ times the binary cross-entropy, averaged over pixels, of
the prototype X̂ generated from each image's label against the binarized image. X̂ = tanh(z) lies in [-1, 1];
its pixel probability (X̂ + 1) / 2 equals sigmoid(2z), so the BCE is computed from the logits 2z (exact and
stable). Generation from a one-hot y is the same for every image of a class, so it runs once per class and
batch and is gathered by label.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor

from unnparse.checkpoints import gather_rank_states, restore_rank_state, resume_training, write_checkpoint
from unnparse.devices import host_to_device
from unnparse.distributed import DistContext, broadcast_parameters, mean_gradients, rank_share
from unnparse.mnist.data import MnistData, batches, binarize, split_dev, to_float
from unnparse.mnist.model import CONFIG_LIMITS, MODEL_KIND, MnistConfig, MnistUNN
from unnparse.model_files import ModelFileError, check_config, load_config, load_weights, save_model
from unnparse.runtime import adam, denormals_flushed, resolve_device, training_progress

__all__ = [
    "EpochStats",
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
class TrainOptions:
    """Optimisation settings (not needed to rebuild the model)."""

    epochs: int = 10
    lr: float = 5e-4
    batch_size: int = 64
    gamma: float = 0.1
    seed: int = 0
    dev_size: int = 10_000
    #: train on the first N of the (shuffled) training images only; None = all
    train_limit: int | None = None
    device: str = "auto"
    progress: bool = True


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


@denormals_flushed
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
    """Train a model on ``data.train_*`` minus a seeded dev split; keep the parameters of the best dev epoch.

    With ``dist`` (several processes, see :mod:`unnparse.distributed`), every rank draws the same batches of
    ``batch_size`` images and trains on its own share of each (:func:`rank_share`); one all-reduce per step makes
    the update that of the whole batch, so the run follows the one-process run. Only rank 0 evaluates on dev,
    reports and keeps the best epoch. ``on_batch`` receives the training-image indices of each of this rank's
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
    device = dist.device
    torch.manual_seed(options.seed)
    train_idx, dev_idx = split_dev(len(data.train_labels), options.dev_size, options.seed)
    if options.train_limit is not None:
        train_idx = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(options.seed))]
        train_idx = train_idx[: options.train_limit].sort().values
    images = data.train_images.to(device)
    labels = data.train_labels.to(device)
    model = MnistUNN(config).to(device)
    broadcast_parameters(model, dist)
    if dist.distributed:
        torch.manual_seed(options.seed + 1000 * dist.rank)  # dropout masks of their own on each rank
    optimizer = adam(model.parameters(), lr=options.lr)
    params = [p for p in model.parameters() if p.requires_grad]
    shuffle = torch.Generator().manual_seed(options.seed + 1)
    y_init = torch.Generator().manual_seed(options.seed + 2 + 1000 * dist.rank)
    result = TrainResult(model=model)
    best_state: dict[str, Tensor] | None = None
    n_batches = -(-len(train_idx) // options.batch_size)
    show = options.progress and dist.is_main
    ckpt = Path(checkpoint) if checkpoint is not None else None
    signature = {
        "kind": MODEL_KIND,
        **config.to_dict(),
        **{k: getattr(options, k) for k in ("batch_size", "gamma", "seed", "dev_size", "train_limit")},
        "training images": len(data.train_labels),
        "processes": dist.world_size,
    }
    start_epoch = 1
    if resume:
        state, meta = resume_training(ckpt, signature, model, optimizer, options.lr)
        if dist.is_main:  # the only rank that keeps the best epoch
            best_state = {k: v.to(device) for k, v in state["best"].items()}
        restore_rank_state(state["ranks"], dist, [shuffle, y_init])
        start_epoch = meta["epoch"] + 1
        result.best_epoch, result.best_dev_accuracy = meta["best_epoch"], meta["best_dev_accuracy"]
        if dist.is_main:
            result.history = [EpochStats(**h) for h in meta["history"]]
            console.print(f"resuming from {ckpt} after epoch {meta['epoch']}")
    with training_progress(enabled=show, unit="img", console=console) as progress:
        for epoch in range(start_epoch, options.epochs + 1):
            task = progress.add_task(f"epoch {epoch}/{options.epochs}", total=n_batches, loss=0.0, speed=0.0)
            model.train()
            start, data_seconds, seen, shown = time.perf_counter(), 0.0, 0, 0.0
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # read back only now and then: no sync
            drawn = batches(train_idx, options.batch_size, shuffle=True, generator=shuffle)
            for step, batch_idx in enumerate(drawn, 1):
                t0 = time.perf_counter()
                idx, weight = rank_share(batch_idx, dist)
                if on_batch is not None and weight:
                    on_batch(idx)
                idx = host_to_device(idx, device)
                raw, y = images[idx], labels[idx]
                x, target = to_float(raw), binarize(raw)
                data_seconds += time.perf_counter() - t0
                loss, _ = batch_loss(model, x, target, y, options.gamma, y_init, reduction="sum")
                optimizer.zero_grad(set_to_none=True)
                (loss * weight).backward()
                sums = torch.stack([loss.detach().new_ones(()) * (weight * len(idx)), loss.detach() * weight])
                sums = mean_gradients(params, sums, dist)
                optimizer.step()
                loss_sum += sums[1].double()
                seen += len(batch_idx)
                if show and (step % 20 == 0 or step == n_batches):
                    shown = float(loss_sum) / seen
                elapsed = time.perf_counter() - start
                progress.update(task, advance=1, loss=shown, speed=seen / max(elapsed, 1e-9))
            total_loss = float(loss_sum)
            seconds = time.perf_counter() - start
            rank_states = gather_rank_states(dist, [shuffle, y_init]) if ckpt is not None else None
            if not dist.is_main:
                continue
            dev = accuracy(model, data.train_images[dev_idx], data.train_labels[dev_idx])
            stats = EpochStats(epoch, total_loss / max(seen, 1), dev, seconds, data_seconds, seen)
            result.history.append(stats)
            progress.console.print(
                f"epoch {epoch}: loss {stats.loss:.4f}  dev acc {dev:.2f}%  {seconds:.1f} s "
                f"({seen / seconds:.0f} img/s, data {100 * data_seconds / seconds:.1f}%)"
            )
            if best_state is None or dev > result.best_dev_accuracy:
                result.best_epoch, result.best_dev_accuracy = epoch, dev
                best_state = copy.deepcopy(model.state_dict())
            if ckpt is not None and best_state is not None:
                meta = {
                    "signature": signature,
                    "epoch": epoch,
                    "history": [asdict(h) for h in result.history],
                    "best_epoch": result.best_epoch,
                    "best_dev_accuracy": result.best_dev_accuracy,
                }
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "best": best_state}
                write_checkpoint(ckpt, {**state, "ranks": rank_states}, meta)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


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
