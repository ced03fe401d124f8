"""Training and evaluation of the sequence-completion UNN: cross-entropy on the masked positions, Adam, clipping."""

from __future__ import annotations

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

from unnparse.checkpoints import resume_training, write_checkpoint
from unnparse.devices import synchronize
from unnparse.distributed import DistContext, broadcast_parameters, mean_gradients, rank_share
from unnparse.model_files import ModelFileError, check_config, load_config, load_weights, save_model
from unnparse.runtime import adam, denormals_flushed, resolve_device, training_progress
from unnparse.seqcomplete.data import Batch, SeqDataset, make_batch
from unnparse.seqcomplete.model import CONFIG_LIMITS, MODEL_KIND, RANDOM_ITER_MAX, SeqCompletionUNN, SeqConfig

__all__ = [
    "CurvePoint",
    "EpochStats",
    "Score",
    "TrainOptions",
    "evaluate",
    "learning_rate_factor",
    "load_model",
    "masked_loss",
    "save_trained",
    "train",
]


@dataclass
class TrainOptions:
    """Optimisation settings."""

    epochs: int = 10
    lr: float = 1e-4
    #: "constant", or "linear": decay to zero on the last update (that of ``max_updates``, else of ``epochs``)
    lr_schedule: str = "constant"
    #: updates of linear warmup from ``lr / warmup`` to ``lr`` (0: none)
    warmup: int = 0
    batch_size: int = 64
    clip: float = 10.0
    seed: int = 0
    device: str = "auto"
    #: evaluate on the test split after every epoch (a learning curve; the last epoch is saved regardless)
    eval_each_epoch: bool = False
    #: also evaluate every this many updates (0: never): test accuracy against updates and training seconds
    eval_every: int = 0
    #: stop after this much training time (evaluations not counted), checked after every update
    max_minutes: float | None = None
    #: stop after this many updates in all (None: no limit)
    max_updates: int | None = None
    #: write the checkpoint every this many updates, besides at the end of every epoch and when stopping (0: only
    #: there); needs a checkpoint path (see :func:`train`)
    checkpoint_every: int = 1000
    progress: bool = True


LR_SCHEDULES = ("constant", "linear")


def learning_rate_factor(updates: int, total: int, schedule: str = "constant", warmup: int = 0) -> float:
    """The multiplier of the learning rate for the update after ``updates`` updates of a run of ``total``.

    ``warmup`` updates rise linearly to 1; then ``constant`` stays at 1 and ``linear`` falls linearly so that the
    last update (number ``total``) still has a positive rate and the next would have none.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"learning-rate schedule must be one of {', '.join(LR_SCHEDULES)}, not {schedule!r}")
    if updates < warmup:
        return (updates + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = total - warmup
    return max(0.0, (total - updates) / span) if span > 0 else 0.0


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


@dataclass
class _Position:
    """Where a run stands: what a checkpoint stores besides the tensors (JSON-able)."""

    epoch: int = 1  # the epoch in progress
    batch: int = 0  # batches of that epoch done
    updates: int = 0
    trained: float = 0.0  # seconds of training before this epoch, evaluations left out
    epoch_seconds: float = 0.0  # seconds of training in this epoch so far
    seen: int = 0  # instances of this epoch so far


def _run_signature(config: SeqConfig, data: SeqDataset, options: TrainOptions) -> dict[str, Any]:
    """What must not change between a run and its continuation (the batches and the model depend on it)."""
    return {
        "kind": MODEL_KIND,
        **config.to_dict(),
        **{f"data {k}": v for k, v in asdict(data.spec).items()},
        "data instances": len(data),
        "batch_size": options.batch_size,
        "seed": options.seed,
    }


@denormals_flushed
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
    """Train on the train split of ``data`` for ``options.epochs`` epochs; return the final model.

    With ``dist`` (several processes, see :mod:`unnparse.distributed`), every rank draws the same batches (and
    the same sweep counts and orders) and trains on its own share of each batch (:func:`rank_share`); one
    all-reduce per step makes the update that of the whole batch, so the run follows the one-process run. Only
    rank 0 evaluates and reports; its clock decides ``max_minutes`` for all. ``on_batch`` receives the instance
    indices of each of this rank's shares (for tests).

    ``checkpoint``: a file that rank 0 keeps up to date (weights, optimizer, random states, position in the
    epoch; see ``options.checkpoint_every``). With ``resume`` the run continues from it: the same batches, sweeps
    and updates as the uninterrupted run, so that more ``epochs``, ``max_minutes`` or ``max_updates`` extend a
    finished run; the learning rate is ``options.lr`` (it may differ from the interrupted run's), times
    :func:`learning_rate_factor` of the updates done, which the run's end (``max_updates``, else ``epochs``) and
    ``options.lr_schedule`` / ``options.warmup`` decide. ``init_state``:
    weights to start from instead of random ones (a fresh optimizer; see ``--init-from``).

    Raises:
        CheckpointError: ``resume`` without a readable checkpoint of this configuration, data and batch size.
    """
    console = console or Console(stderr=True, markup=False)
    dist = dist or DistContext(device=resolve_device(options.device))
    device = dist.device
    torch.manual_seed(options.seed)
    model = SeqCompletionUNN(config).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    broadcast_parameters(model, dist)
    optimizer = adam(model.parameters(), lr=options.lr)
    params = [p for p in model.parameters() if p.requires_grad]
    shuffle = torch.Generator().manual_seed(options.seed + 1)
    order = torch.Generator().manual_seed(options.seed + 2)
    train_idx, test_idx = data.split("train"), data.split("test")
    n_batches = -(-len(train_idx) // options.batch_size)
    planned = options.epochs * n_batches
    if options.max_updates is not None:
        planned = min(planned, options.max_updates)
    learning_rate_factor(0, planned, options.lr_schedule, options.warmup)  # checks the schedule's name
    result = TrainResult(model)
    pos = _Position()
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # masked, loss, correct; read back rarely
    signature = _run_signature(config, data, options)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    epoch_shuffle = shuffle.get_state()  # the state that draws the epoch's permutation
    if resume:
        state, meta = resume_training(ckpt, signature, model, optimizer, options.lr)
        epoch_shuffle = state["shuffle"]
        order.set_state(state["order"])
        torch.set_rng_state(state["rng"])
        totals = state["totals"].to(device=device, dtype=torch.float64)
        pos = _Position(**meta["position"])
        result.history = [EpochStats(**h) for h in meta["history"]]
        result.curve = [CurvePoint(**c) for c in meta["curve"]]
        if dist.is_main:
            console.print(f"resuming from {ckpt}: epoch {pos.epoch}, {pos.updates} updates done")

    def save_checkpoint() -> None:
        if ckpt is None or not dist.is_main:
            return
        meta = {
            "signature": signature,
            "position": asdict(pos),
            "history": [asdict(h) for h in result.history],
            "curve": [asdict(c) for c in result.curve],
        }
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "shuffle": epoch_shuffle,
            "order": order.get_state(),
            "rng": torch.get_rng_state(),
            "totals": totals.cpu(),
        }
        write_checkpoint(ckpt, state, meta)

    def out_of_budget(updates: int, seconds: float) -> str | None:
        """The option whose budget ``updates`` updates in ``seconds`` of training have used up, if any."""
        if options.max_updates is not None and updates >= options.max_updates:
            return "--max-updates"
        if options.max_minutes is not None and seconds >= 60 * options.max_minutes:
            return "--max-minutes"
        return None

    show = options.progress and dist.is_main
    spent = out_of_budget(pos.updates, pos.trained + pos.epoch_seconds) if resume else None  # checked after updates
    stopped = spent is not None
    with training_progress(enabled=show, unit="seq", console=console) as progress:
        while pos.epoch <= options.epochs and not stopped:
            epoch = pos.epoch
            task = progress.add_task(
                f"epoch {epoch}/{options.epochs}", total=n_batches, completed=pos.batch, loss=0.0, speed=0.0
            )
            model.train()
            # seconds of this epoch before this process took it over (a resumed run), evaluations left out
            start, evaluating, shown = time.perf_counter() - pos.epoch_seconds, 0.0, 0.0
            shuffle.set_state(epoch_shuffle)
            perm = train_idx[torch.randperm(len(train_idx), generator=shuffle)]
            for b in range(pos.batch, n_batches):
                global_index = perm[b * options.batch_size : (b + 1) * options.batch_size]
                index, weight = rank_share(global_index, dist)
                if on_batch is not None and weight:
                    on_batch(index)
                batch = make_batch(data, index).to(device)
                sweeps = config.unn_iter
                if config.random_iter:
                    sweeps = int(torch.randint(1, RANDOM_ITER_MAX + 1, (1,), generator=order))
                loss, n_correct, n_masked = masked_loss(model, batch, reduction="sum", sweeps=sweeps, generator=order)
                optimizer.zero_grad(set_to_none=True)
                (loss * weight).backward()
                stop = 0.0
                if dist.is_main:  # rank 0 decides for all (its clock)
                    spent = out_of_budget(pos.updates + 1, pos.trained + time.perf_counter() - start - evaluating)
                    stop = float(spent is not None)
                sums = torch.stack([n_masked.float(), loss.detach().float(), n_correct.float()]) * weight
                sums = mean_gradients(params, torch.cat([sums, sums.new_full((1,), stop)]), dist)
                if options.clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, options.clip)
                rate = options.lr * learning_rate_factor(pos.updates, planned, options.lr_schedule, options.warmup)
                for group in optimizer.param_groups:
                    group["lr"] = rate
                optimizer.step()
                totals += sums[:3].double()
                pos.seen += len(global_index)
                pos.updates += 1
                pos.batch = b + 1
                if show and ((b + 1) % 20 == 0 or b + 1 == n_batches):
                    shown = float(totals[1] / totals[0].clamp_min(1))
                now = time.perf_counter()
                pos.epoch_seconds = now - start - evaluating  # of training in this epoch, evaluations left out
                progress.update(task, advance=1, loss=shown, speed=pos.seen / max(pos.epoch_seconds, 1e-9))
                if options.eval_every and pos.updates % options.eval_every == 0 and dist.is_main:
                    synchronize(device)
                    now = time.perf_counter()
                    pos.epoch_seconds = now - start - evaluating
                    accuracy = evaluate(model, data, test_idx).accuracy
                    point = CurvePoint(pos.updates, pos.trained + pos.epoch_seconds, accuracy)
                    model.train()
                    result.curve.append(point)
                    progress.console.print(
                        f"update {pos.updates}: test acc {accuracy:.2f}% after {point.seconds:.1f} s of training"
                    )
                    evaluating += time.perf_counter() - now
                stopped = float(sums[3]) > 0 if dist.distributed else bool(stop)
                if stopped:
                    break
                if options.checkpoint_every and pos.updates % options.checkpoint_every == 0 and b + 1 < n_batches:
                    save_checkpoint()
            complete = pos.batch == n_batches
            stats = None
            if dist.is_main and (complete or stopped):
                masked, total_loss, correct = totals.tolist()
                seconds = pos.epoch_seconds
                stats = EpochStats(
                    epoch, total_loss / max(masked, 1), 100.0 * correct / max(masked, 1), seconds, complete=complete
                )
                line = f"epoch {epoch}: loss {stats.loss:.4f}  train acc {stats.train_accuracy:.2f}%"
                if options.eval_each_epoch:
                    stats.test_accuracy = evaluate(model, data, test_idx).accuracy
                    line += f"  test acc {stats.test_accuracy:.2f}%"
                if not complete:
                    line += f"  ({pos.batch}/{n_batches} batches)"
                progress.console.print(f"{line}  {seconds:.1f} s ({pos.seen / max(seconds, 1e-9):.0f} seq/s)")
            if complete:
                if stats is not None:
                    result.history.append(stats)
                pos = _Position(epoch + 1, 0, pos.updates, pos.trained + pos.epoch_seconds)
                totals.zero_()
                epoch_shuffle = shuffle.get_state()
            save_checkpoint()
            if stats is not None and not complete:  # after the checkpoint: a resumed run reports the whole epoch
                result.history.append(stats)
        if stopped and dist.is_main:
            seconds = pos.trained + pos.epoch_seconds
            progress.console.print(
                f"stopped after {pos.updates} updates, {seconds / 60:.1f} minutes of training ({spent})"
            )
    model.eval()
    return result


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
