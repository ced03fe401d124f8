"""Training and evaluation of the sequence-completion UNN: cross-entropy on the masked positions, Adam, clipping."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor

from unnparse.distributed import DistContext, broadcast_parameters, mean_gradients, rank_share
from unnparse.model_files import ModelFileError, load_config, load_weights, save_model
from unnparse.runtime import adam, denormals_flushed, resolve_device, synchronize, training_progress
from unnparse.seqcomplete.data import Batch, SeqDataset, make_batch
from unnparse.seqcomplete.model import MODEL_KIND, RANDOM_ITER_MAX, SeqCompletionUNN, SeqConfig

__all__ = [
    "CurvePoint",
    "EpochStats",
    "Score",
    "TrainOptions",
    "evaluate",
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
    progress: bool = True


@dataclass
class EpochStats:
    """What one epoch measured (accuracies in percent of masked tokens)."""

    epoch: int
    loss: float
    train_accuracy: float
    seconds: float
    test_accuracy: float | None = None


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
    or "sum" over the masked positions."""
    logits = model(batch, **kwargs)[batch.masked]
    gold = batch.tokens[batch.masked] - 1
    correct = (logits.argmax(-1) == gold).sum()
    return F.cross_entropy(logits, gold, reduction=reduction), correct, gold.new_tensor(len(gold))


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


@denormals_flushed
def train(
    config: SeqConfig,
    data: SeqDataset,
    options: TrainOptions,
    *,
    console: Console | None = None,
    dist: DistContext | None = None,
    on_batch: Callable[[Tensor], None] | None = None,
) -> TrainResult:
    """Train on the train split of ``data`` for ``options.epochs`` epochs; return the final model.

    With ``dist`` (several processes, see :mod:`unnparse.distributed`), every rank draws the same batches (and
    the same sweep counts and orders) and trains on its own share of each batch (:func:`rank_share`); one
    all-reduce per step makes the update that of the whole batch, so the run follows the one-process run. Only
    rank 0 evaluates and reports; its clock decides ``max_minutes`` for all. ``on_batch`` receives the instance
    indices of each of this rank's shares (for tests)."""
    console = console or Console(stderr=True)
    dist = dist or DistContext(device=resolve_device(options.device))
    device = dist.device
    torch.manual_seed(options.seed)
    model = SeqCompletionUNN(config).to(device)
    broadcast_parameters(model, dist)
    optimizer = adam(model.parameters(), lr=options.lr)
    params = [p for p in model.parameters() if p.requires_grad]
    shuffle = torch.Generator().manual_seed(options.seed + 1)
    order = torch.Generator().manual_seed(options.seed + 2)
    train_idx, test_idx = data.split("train"), data.split("test")
    n_batches = -(-len(train_idx) // options.batch_size)
    result = TrainResult(model)
    show = options.progress and dist.is_main
    updates, trained, out_of_time = 0, 0.0, False  # trained: seconds of training, evaluations left out
    with training_progress(enabled=show, unit="seq", console=console) as progress:
        for epoch in range(1, options.epochs + 1):
            task = progress.add_task(f"epoch {epoch}/{options.epochs}", total=n_batches, loss=0.0, speed=0.0)
            model.train()
            start, seen, shown = time.perf_counter(), 0, 0.0
            totals = torch.zeros(3, dtype=torch.float64, device=device)  # masked, loss, correct; read back rarely
            evaluating = 0.0  # seconds of this epoch spent in evaluations
            perm = train_idx[torch.randperm(len(train_idx), generator=shuffle)]
            for b in range(n_batches):
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
                if options.max_minutes is not None and dist.is_main:
                    spent = trained + time.perf_counter() - start - evaluating
                    stop = float(spent >= 60 * options.max_minutes)
                sums = torch.stack([n_masked.float(), loss.detach().float(), n_correct.float()]) * weight
                sums = mean_gradients(params, torch.cat([sums, sums.new_full((1,), stop)]), dist)
                if options.clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, options.clip)
                optimizer.step()
                totals += sums[:3].double()
                seen += len(global_index)
                updates += 1
                if show and ((b + 1) % 20 == 0 or b + 1 == n_batches):
                    shown = float(totals[1] / totals[0].clamp_min(1))
                now = time.perf_counter()
                epoch_seconds = now - start - evaluating  # of training in this epoch, evaluations left out
                progress.update(task, advance=1, loss=shown, speed=seen / max(epoch_seconds, 1e-9))
                if options.eval_every and updates % options.eval_every == 0 and dist.is_main:
                    synchronize(device)
                    now = time.perf_counter()
                    epoch_seconds = now - start - evaluating
                    point = CurvePoint(updates, trained + epoch_seconds, evaluate(model, data, test_idx).accuracy)
                    model.train()
                    result.curve.append(point)
                    progress.console.print(
                        f"update {updates}: test acc {point.test_accuracy:.2f}% after {point.seconds:.1f} s of training"
                    )
                    evaluating += time.perf_counter() - now
                if options.max_minutes is not None and (float(sums[3]) > 0 if dist.distributed else stop):
                    out_of_time = True
                    break
            masked, total_loss, correct = totals.tolist()
            seconds = time.perf_counter() - start - evaluating
            trained += seconds
            if dist.is_main:
                stats = EpochStats(epoch, total_loss / max(masked, 1), 100.0 * correct / max(masked, 1), seconds)
                line = f"epoch {epoch}: loss {stats.loss:.4f}  train acc {stats.train_accuracy:.2f}%"
                if options.eval_each_epoch:
                    stats.test_accuracy = evaluate(model, data, test_idx).accuracy
                    line += f"  test acc {stats.test_accuracy:.2f}%"
                result.history.append(stats)
                progress.console.print(f"{line}  {seconds:.1f} s ({seen / seconds:.0f} seq/s)")
            if out_of_time:
                if dist.is_main:
                    progress.console.print(f"stopped after {trained / 60:.1f} minutes of training (--max-minutes)")
                break
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
    """Rebuild a saved model from its directory (in eval mode).

    Raises:
        ModelFileError: missing/corrupt files or a config of another kind (one line naming the file).
    """
    raw = load_config(directory, kind=MODEL_KIND)
    try:
        config = SeqConfig.from_dict(raw)
    except (TypeError, ValueError) as err:
        path = os.path.join(directory, "config.json")
        raise ModelFileError(f"{path}: invalid sequence-completion model config ({err})") from None
    model = SeqCompletionUNN(config)
    load_weights(directory, model)
    return model.to(resolve_device(device)).eval()
