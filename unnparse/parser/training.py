"""Training loop: AdamW with warmup and linear decay, gradient clipping, dev evaluation, best-model keeping,
early stopping, resumable checkpoints, progress bars and a per-epoch metrics log.

The loop is separate from the network (:mod:`unnparse.parser.model`) and from file formats, as in SuPar's
Model / Parser / Transform split.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from unnparse.checkpoints import CHECKPOINT, CheckpointError, check_signature, read_checkpoint, write_checkpoint
from unnparse.conllu.sentence import Sentence
from unnparse.evaluation.attachment import AttachmentScores, score_sentences
from unnparse.io_utils import atomic_write_text
from unnparse.parser.batching import shard_batches, shard_pass_weights, token_budget_batches
from unnparse.parser.encoders import TransformerEncoder
from unnparse.parser.long_sentences import DEFAULT_MAX_WORDS
from unnparse.parser.lr_plan import RECENT_EPOCHS, LearningRatePlan, epochs_that_fit
from unnparse.parser.parser import Parser
from unnparse.parser.predictor import Predictor
from unnparse.runtime import adam, autocast, denormals_flushed, precision_name, resolve_precision

__all__ = [
    "TrainOptions",
    "TrainResult",
    "WeightAverage",
    "data_fingerprint",
    "evaluate_parser",
    "reparse",
    "run_signature",
    "train_parser",
]

METRICS_LOG = "metrics.json"


@dataclass
class TrainOptions:
    """Every training hyperparameter (stored in config.json under ``training``)."""

    epochs: int = 30
    lr: float = 3e-3
    encoder_lr: float = 5e-5
    batch_tokens: int = 1000
    warmup: float = 0.05  # fraction of all updates
    clip: float = 5.0
    weight_decay: float = 0.0
    patience: int = 10
    seed: int = 1
    max_minutes: float | None = None  # stop after this much time (training, evaluation and saving)
    accumulate: int = 1
    eval_batch_tokens: int = 6000
    ema: float = 0.0  # decay of an exponential moving average of the weights, evaluated and saved (0: off)
    precision: str = "auto"  # encoder arithmetic: auto (bfloat16 on CUDA, float32 on CPU), float32, bfloat16
    max_words: int = DEFAULT_MAX_WORDS  # longer training sentences are left out: memory grows with the square


@dataclass
class TrainResult:
    """Summary of a finished training run."""

    best_epoch: int
    best_dev: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)


def _param_groups(parser: Parser, opts: TrainOptions) -> list[dict[str, Any]]:
    enc = parser.model.encoder
    if isinstance(enc, TransformerEncoder):
        enc_params = [p for p in enc.parameters() if p.requires_grad]
        ids = {id(p) for p in enc.parameters()}
        rest = [p for p in parser.model.parameters() if id(p) not in ids]
        groups = [{"params": rest, "lr": opts.lr}]
        if enc_params:
            groups.append({"params": enc_params, "lr": opts.encoder_lr})
        return groups
    return [{"params": list(parser.model.parameters()), "lr": opts.lr}]


def reparse(parser: Predictor, gold: Sequence[Sentence], *, batch_tokens: int = 6000) -> list[Sentence]:
    """Parse the words of the gold sentences (their annotation is not used): the predictions, in order."""
    return [p.sentence for p in parser.predict(gold, batch_tokens=batch_tokens)]


def evaluate_parser(parser: Predictor, gold: Sequence[Sentence], *, batch_tokens: int = 6000) -> AttachmentScores:
    """Parse the gold sentences' words and score the result against them."""
    return score_sentences(gold, reparse(parser, gold, batch_tokens=batch_tokens))


class WeightAverage:
    """An exponential moving average of a model's trainable weights (Polyak averaging).

    ``update`` after every optimizer step; ``swapped_in`` puts the averages into the model for evaluation and
    saving and restores the live weights afterwards. Early on the decay is ``min(decay, (1 + t) / (10 + t))``, so the
    average does not start out dominated by the random initialization.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), not {decay}")
        self.decay = decay
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.average = [p.detach().clone() for p in self.params]
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1.0 - decay)
        self.updates += 1

    @contextlib.contextmanager
    def swapped_in(self):
        """Within the block, the model holds the averaged weights."""
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, live)

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.average, list(state["average"]))
        self.updates = int(state["updates"])


def data_fingerprint(sentences: Sequence[Sentence]) -> str:
    """A short hash of the sentences' words and trees (what a resumed run must train on again)."""
    digest = hashlib.sha256()
    for sentence in sentences:
        digest.update("\t".join(sentence.words).encode("utf-8", errors="surrogatepass"))
        digest.update(repr((sentence.heads, sentence.deprels)).encode("utf-8", errors="surrogatepass"))
        digest.update(b"\n")
    return f"{len(sentences)} sentences, sha256 {digest.hexdigest()[:16]}"


def run_signature(
    parser: Parser, train: Sequence[Sentence], dev: Sequence[Sentence], opts: TrainOptions, world_size: int
) -> dict[str, Any]:
    """The settings that a run continued with ``--resume`` must share with the interrupted one: the network's
    config, the data, and the options that fix the order of the batches and the optimizer's state (the number of
    epochs, the time budget, the learning rate and the patience may change)."""
    config = parser.config
    return {
        "kind": "parser",
        "encoder": dict(config["encoder"]),
        "model": dict(config["model"]),
        "train data": data_fingerprint(train),
        "dev data": data_fingerprint(dev),
        "batch_tokens": opts.batch_tokens,
        "accumulate": opts.accumulate,
        "seed": opts.seed,
        "ema": opts.ema,
        "processes": world_size,
    }


def _without_long_sentences(train: Sequence[Sentence], max_words: int, console: Console | None) -> Sequence[Sentence]:
    """``train`` without its sentences of more than ``max_words`` words (a warning on ``console`` says how many, and
    where the first is): a batch's memory grows with the square of its longest sentence, and a whole-sentence tree
    loss cannot be cut into pieces as parsing can."""
    long = [s for s in train if len(s) > max_words]
    if not long:
        return train
    if console is not None:
        first = long[0]
        console.print(
            f"warning: {len(long):,} training sentence(s) of more than {max_words:,} words left out (the first: "
            f"{first.source}:{first.line}, {len(first):,} words)",
            soft_wrap=True,
        )
    return [s for s in train if len(s) <= max_words]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


@denormals_flushed
def train_parser(
    parser: Parser,
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    opts: TrainOptions,
    output: str | Path,
    *,
    resume: bool = False,
    console: Console | None = None,
    progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
    ddp_model: torch.nn.Module | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_batch: Callable[[list[int]], None] | None = None,
) -> TrainResult:
    """Train ``parser`` in place; the best model on ``dev`` (by LAS, then UAS) is saved to ``output``.

    With ``world_size > 1`` (launched by torchrun), each rank trains on a disjoint shard of the batches through
    ``ddp_model`` (a DistributedDataParallel wrapper of ``parser.model``); only rank 0 evaluates, logs and writes.
    """
    console = console or Console(stderr=True, markup=False)
    out_dir = Path(output)
    is_main = rank == 0
    model = parser.model
    forward = ddp_model if ddp_model is not None else model
    device = parser.device
    train = _without_long_sentences(train, opts.max_words, console if is_main else None)
    _seed_everything(opts.seed + rank)
    optimizer = adam(_param_groups(parser, opts), decoupled=True, betas=(0.9, 0.9), weight_decay=opts.weight_decay)
    lengths = [len(s) for s in train]

    def epoch_batches(epoch: int) -> tuple[list[list[int]], list[float]]:
        """This rank's batches of ``epoch`` and the loss weight of each of its passes (every rank makes as many:
        see :func:`shard_pass_weights`)."""
        batches = token_budget_batches(lengths, opts.batch_tokens, shuffle=True, seed=opts.seed * 1000 + epoch)
        return shard_batches(batches, rank, world_size), shard_pass_weights(len(batches), rank, world_size)

    steps_per_epoch = max(1, math.ceil(len(epoch_batches(1)[1]) / opts.accumulate))
    # warmup: a fraction of all updates, at most one epoch; then linear decay to zero at the end of the last epoch,
    # or with a time budget where the budget ends (re-planned after every epoch, see lr_plan)
    warmup_steps = max(1, min(int(opts.warmup * steps_per_epoch * opts.epochs), steps_per_epoch))
    plan = LearningRatePlan(float(opts.epochs), warmup_steps, warmup_steps / steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: plan.factor(step))
    average = WeightAverage(model, opts.ema) if opts.ema > 0 else None
    history: list[dict[str, Any]] = []
    best: dict[str, float] = {}
    best_epoch, start_epoch, bad_epochs = 0, 1, 0
    elapsed_before = 0.0
    epoch_costs: dict[str, list[float]] = {"train": [], "other": []}  # seconds of recent whole epochs
    ckpt_path = out_dir / CHECKPOINT
    signature = run_signature(parser, train, dev, opts, world_size)
    if resume:
        state, meta = read_checkpoint(ckpt_path)
        check_signature(ckpt_path, meta["signature"], signature)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if average is not None and "ema" in state:
                average.load_state_dict(state["ema"])
            history, best, best_epoch = meta["history"], meta["best"], meta["best_epoch"]
            start_epoch, bad_epochs, elapsed_before = meta["epoch"] + 1, meta["bad_epochs"], meta["elapsed"]
            plan.progress = float(meta["epoch"])
            epoch_costs = meta.get("epoch_costs", epoch_costs)
            torch.set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{ckpt_path}: incomplete checkpoint ({' '.join(str(err).split())[:160]})") from None
        if is_main:
            console.print(f"resuming from {ckpt_path} after epoch {meta['epoch']}")
    t_start = time.perf_counter() - elapsed_before

    def from_rank_0(*values: float) -> list[float]:
        """Rank 0's ``values`` on every rank (distributed training only)."""
        sent = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.broadcast(sent, src=0)
        return sent.tolist()

    def replan(epoch: int) -> bool:
        """Where the decay ends, from the epochs asked for or the time left; False when no more training fits."""
        plan.epochs = float(opts.epochs)
        if opts.max_minutes is None or not epoch_costs["train"]:
            return epoch < opts.epochs
        left = opts.max_minutes * 60 - (time.perf_counter() - t_start)
        more = epochs_that_fit(left, epoch_costs["train"], epoch_costs["other"], whole=world_size > 1)
        plan.epochs = min(float(opts.epochs), epoch + more)
        return more > 0 and epoch < opts.epochs

    if resume:  # the options may ask for more epochs or minutes than the interrupted run planned
        replan(start_epoch - 1)
        if world_size > 1:  # every rank follows rank 0's plan
            (plan.epochs,) = from_rank_0(plan.epochs)
    amp_dtype = resolve_precision(opts.precision, device)
    parser.precision = opts.precision  # dev evaluation in the same arithmetic
    saved_options = {**asdict(opts), "precision": precision_name(amp_dtype)}  # what was used, not "auto"
    for epoch in range(start_epoch, opts.epochs + 1):
        model.train()
        batches, weights = epoch_batches(epoch)
        passes = len(weights)
        t0 = time.perf_counter()
        words = 0
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        n_updates = 0
        with Progress(
            TextColumn(f"epoch {epoch}/{opts.epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TextColumn("{task.fields[wps]:,.0f} words/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not (progress and is_main),
            transient=True,
        ) as bar:
            task = bar.add_task("train", total=passes, loss=0.0, wps=0.0)
            optimizer.zero_grad(set_to_none=True)
            for i, weight in enumerate(weights):
                # every rank makes the same passes and updates at the same learning rate (see epoch_batches): a
                # rank whose shard is short re-reads a batch of its own at weight 0 to join the all-reduce
                idx = batches[i] if weight else (batches or [[0]])[0]
                if on_batch is not None and weight:
                    on_batch(list(idx))
                batch = parser.featurizer.batch([train[j] for j in idx], idx, gold=True)
                n_w = int(batch.lengths.sum()) if weight else 0
                batch = batch.to_device(device)
                with autocast(device, amp_dtype):  # the UNN and the trees inside run in float32 regardless
                    out = forward(batch)
                    loss, arc, rel = model.loss(out, batch)
                (loss * (weight / opts.accumulate)).backward()
                if (i + 1) % opts.accumulate == 0 or i + 1 == passes:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip)
                    optimizer.step()
                    plan.advance(epoch, i + 1, passes)
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    if average is not None:
                        average.update()
                words += n_w
                sums += torch.stack([loss.detach().double(), arc.double(), rel.double()]) * n_w  # no host sync
                n_updates += 1
                if n_updates % 10 == 0 or n_updates == passes:
                    shown = float(sums[0]) / max(words, 1)
                    bar.update(task, completed=n_updates, loss=shown, wps=words / (time.perf_counter() - t0))
                if plan.finished and i + 1 < passes and (i + 1) % opts.accumulate == 0:
                    break  # a time budget ends inside this epoch (single process only: see lr_plan)
        train_seconds = time.perf_counter() - t0
        loss_sum, arc_sum, rel_sum = sums.tolist()
        record: dict[str, Any] = {
            "epoch": epoch,
            "loss": loss_sum / max(words, 1),
            "arc_loss": arc_sum / max(words, 1),
            "rel_loss": rel_sum / max(words, 1),
            "train_seconds": round(train_seconds, 2),
            "words_per_second": round(words / max(train_seconds, 1e-9), 1),
            "lr": scheduler.get_last_lr()[0],
        }
        if n_updates < passes:
            record["fraction"] = round(n_updates / passes, 3)
        improved = False
        if is_main:
            # evaluate and save the averaged weights (when averaging); training goes on with the live ones
            with average.swapped_in() if average is not None else contextlib.nullcontext():
                if dev:
                    t1 = time.perf_counter()
                    scores = evaluate_parser(parser, dev, batch_tokens=opts.eval_batch_tokens)
                    record["dev"] = scores.as_dict()
                    record["eval_seconds"] = round(time.perf_counter() - t1, 2)
                    key = (scores.las, scores.uas)
                    improved = not best or key > (best["las"], best["uas"])
                else:
                    improved = True
                if improved:
                    best, best_epoch, bad_epochs = dict(record.get("dev", {})), epoch, 0
                    parser.save(out_dir, extra={"training": saved_options, "best_epoch": epoch, "dev": best})
                else:
                    bad_epochs += 1
            history.append(record)
            atomic_write_text(out_dir / METRICS_LOG, json.dumps(history, indent=2) + "\n")
        if n_updates == passes:  # a whole epoch's cost (training; evaluation and saving) plans a time budget
            for key, seconds in (("train", train_seconds), ("other", time.perf_counter() - t0 - train_seconds)):
                epoch_costs[key] = [*epoch_costs[key], seconds][-RECENT_EPOCHS:]
        if is_main:
            meta = {
                "history": history,
                "best": best,
                "best_epoch": best_epoch,
                "epoch": epoch,
                "bad_epochs": bad_epochs,
                "elapsed": time.perf_counter() - t_start,
                "epoch_costs": epoch_costs,
            }
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                **({"ema": average.state_dict()} if average is not None else {}),
            }
            write_checkpoint(ckpt_path, state, {**meta, "signature": signature})
            if on_epoch is not None:
                on_epoch({**record, "best": improved})
        stop = bad_epochs >= opts.patience or plan.finished
        if opts.max_minutes is not None and not stop:
            stop = not replan(epoch)
        if world_size > 1:
            # every rank follows rank 0's decision and learning-rate plan (they must stay identical)
            flag, plan.epochs = from_rank_0(1.0 if stop else 0.0, plan.epochs)
            stop = bool(flag)
        if stop:
            break
    return TrainResult(best_epoch=best_epoch, best_dev=best, history=history)


def epoch_table(history: Sequence[dict[str, Any]]) -> Table:
    """A rich table of the per-epoch metrics."""
    table = Table(title="training")
    for col in ("epoch", "loss", "words/s", "dev UAS", "dev LAS", "dev exact", "best"):
        table.add_column(col, justify="right")
    best_epoch = max(
        history, key=lambda r: (r.get("dev", {}).get("las", 0), r.get("dev", {}).get("uas", 0)), default={}
    ).get("epoch")
    for r in history:
        dev = r.get("dev", {})
        table.add_row(
            str(r["epoch"]),
            f"{r['loss']:.3f}",
            f"{r['words_per_second']:,.0f}",
            f"{dev.get('uas', float('nan')):.2f}",
            f"{dev.get('las', float('nan')):.2f}",
            f"{dev.get('exact_match', float('nan')):.2f}",
            "*" if r["epoch"] == best_epoch else "",
        )
    return table
