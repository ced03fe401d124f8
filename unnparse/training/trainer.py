"""The one training loop of every model: :class:`Trainer` runs a :class:`~unnparse.training.task.TrainingTask`.

An update: the task's batches of the update (one, or ``accumulate``) are prepared, run forward (in mixed precision
where asked) and differentiated; with several processes the gradients, the task's statistics and rank 0's decision
to stop travel in one all-reduce (:func:`~unnparse.training.distributed.mean_gradients`); the gradient norm is
clipped, the learning rate set from the :mod:`schedule <unnparse.training.schedules>`, the optimizer steps and the
weight average (EMA) follows. After an epoch (or every few updates) the first process evaluates with the averaged
weights, keeps the best (the task saves it, or the trainer holds it to put back at the end), counts the evaluations
without progress (early stopping), writes the per-epoch metrics file and the checkpoint. ``resume`` continues from
the checkpoint exactly as the uninterrupted run would have gone on, even from inside an epoch: the random states at
the epoch's start redraw its batches, those of the moment of the checkpoint continue it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from unnparse.io_utils import atomic_write_text
from unnparse.runtime import adam, autocast, denormals_flushed
from unnparse.training.checkpoints import (
    CheckpointError,
    check_signature,
    gather_rank_states,
    random_states,
    read_checkpoint,
    restore_random_states,
    write_checkpoint,
)
from unnparse.training.distributed import DistContext, broadcast_parameters, mean_gradients
from unnparse.training.progress import training_progress
from unnparse.training.schedules import ConstantRate, EpochEnd, Schedule, UpdateDone
from unnparse.training.task import Evaluation, TrainingTask
from unnparse.training.weight_average import WeightAverage

__all__ = ["CHECKPOINT_FORMAT", "Trainer", "TrainerOptions", "TrainerResult"]

#: The layout of the trainer's checkpoints (a checkpoint of another layout cannot be continued).
CHECKPOINT_FORMAT = 2
#: Why a run stops early, as the processes exchange it (1 + index; 0: going on).
_REASONS = ("end", "update limit", "time budget", "patience")


@dataclass
class TrainerOptions:
    """How to train (what every task shares; the task's own settings live in the task).

    Attributes:
        epochs: passes over the training data at most.
        max_updates: stop after this many updates in all (None: no limit).
        max_minutes: a time budget; a schedule that fits budgets ends its decay with it, otherwise training stops
            once it is spent (checked after every update).
        budget_counts_evaluations: whether evaluations count against ``max_minutes`` (True: the budget bounds the
            whole run; False: training time only).
        accumulate: batches whose gradients make one update.
        clip: largest gradient norm (0: no clipping).
        betas, weight_decay, decoupled_weight_decay: Adam's (decoupled: AdamW).
        ema: decay of an exponential moving average of the weights, evaluated, kept and saved (0: none).
        precision: the autocast dtype of the forward passes (None: float32).
        evaluate_each_epoch: evaluate after every epoch (and after an epoch cut short).
        evaluate_every: also evaluate every this many updates (0: never).
        evaluate_at_end: also evaluate after the last update, if it was not just evaluated.
        keep_best: compare evaluations and keep the best (the task's ``keep``); False: the last weights are the
            result and evaluations only report.
        restore_best: hold the best weights in memory (and in checkpoints) and put them back at the end.
        patience: stop after this many evaluations without a better one (None: never).
        checkpoint: the checkpoint file to keep up to date (None: none).
        checkpoint_every: also write it every this many updates (0: at the end of epochs and when stopping only).
        metrics_file: where the per-epoch records are written as JSON after every epoch (None: nowhere).
        progress: show a progress bar.
        budget_spent: seconds of ``max_minutes`` already spent before training began (preparing the data).
    """

    epochs: int = 1
    max_updates: int | None = None
    max_minutes: float | None = None
    budget_counts_evaluations: bool = True
    accumulate: int = 1
    clip: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    ema: float = 0.0
    precision: torch.dtype | None = None
    evaluate_each_epoch: bool = True
    evaluate_every: int = 0
    evaluate_at_end: bool = False
    keep_best: bool = True
    restore_best: bool = False
    patience: int | None = None
    checkpoint: Path | None = None
    checkpoint_every: int = 0
    metrics_file: Path | None = None
    progress: bool = True
    budget_spent: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.accumulate < 1 or self.clip < 0:
            raise ValueError(
                f"need epochs >= 0, accumulate >= 1 and clip >= 0, not {self.epochs}, {self.accumulate}, {self.clip}"
            )
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), not {self.ema}")


@dataclass
class TrainerResult:
    """What a run did.

    Attributes:
        history: one record per epoch (the task's fields, ``train_seconds``, ``data_seconds``, ``lr``, the
            evaluation under the task's ``evaluation_name``; ``fraction`` for an epoch cut short).
        evaluations: the evaluations between epochs (``updates``, ``seconds`` of training, the metrics).
        best: the record of the best evaluation ({} without one).
        best_epoch: the epoch of the best evaluation (0: none).
        updates: optimizer updates made in the whole run.
        stopped: why training ended early (``"time budget"``, ``"update limit"``, ``"patience"``), or None.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    best_epoch: int = 0
    updates: int = 0
    stopped: str | None = None


@dataclass
class _Position:
    """Where a run stands (what a checkpoint stores besides the tensors; JSON-able)."""

    epoch: int = 1  # the epoch in progress
    passes: int = 0  # batches of that epoch done
    updates: int = 0
    elapsed: float = 0.0  # wall seconds of the run before this process took it over
    trained: float = 0.0  # seconds of training in earlier epochs (evaluations left out)
    epoch_seconds: float = 0.0  # seconds of training in this epoch before this process took it over
    data_seconds: float = 0.0
    bad_evaluations: int = 0
    best_score: list[float] | None = None
    best_epoch: int = 0


class Trainer:
    """Trains ``task.model`` in place (see the module docstring).

    Args:
        task: supplies the model, batches, step and evaluation.
        options: the run's settings.
        schedule: the learning-rate schedule (:class:`~unnparse.training.schedules.ConstantRate` by default).
        dist: this process's place among several (one process by default).
        console: where the progress bar and messages go (standard error by default).
        log: receives each message line instead of ``console``.
        clock: the time source (seconds; tests pass a fake one).
        on_epoch: called on the first process after each epoch's record, evaluation and checkpoint are written, with
            the record and ``best`` (whether its evaluation was the best so far).
    """

    def __init__(
        self,
        task: TrainingTask,
        options: TrainerOptions,
        *,
        schedule: Schedule | None = None,
        dist: DistContext | None = None,
        console: Console | None = None,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.task = task
        self.on_epoch = on_epoch
        self.options = options
        self.schedule = schedule or ConstantRate()
        self.dist = dist or DistContext(device=next(task.model.parameters()).device)
        self.console = console or Console(stderr=True, markup=False)
        self._log = log
        self.clock = clock
        groups = task.parameter_groups()
        self.base_lrs = [float(g["lr"]) for g in groups]
        self.params = [p for g in groups for p in g["params"] if p.requires_grad]
        self.optimizer = adam(
            groups,
            decoupled=options.decoupled_weight_decay,
            betas=options.betas,
            weight_decay=options.weight_decay,
        )
        self.average = WeightAverage(task.model, options.ema) if options.ema > 0 else None
        self.result = TrainerResult()
        self.best_state: dict[str, torch.Tensor] | None = None
        self._bar: Any = None

    # ---- messages -----------------------------------------------------------------------------------------------

    def log(self, message: str, *, own: bool = True) -> None:
        """Print ``message`` (first process only): through ``log`` if given, else above the progress bar."""
        if not self.dist.is_main:
            return
        text = f"{self.task.log_prefix}{message}" if own else message
        if self._log is not None:
            self._log(text)
        elif self._bar is not None:
            self._bar.console.print(text, soft_wrap=True)
        else:
            self.console.print(text, soft_wrap=True)

    # ---- the run --------------------------------------------------------------------------------------------------

    def fit(self, *, resume: bool = False) -> TrainerResult:
        """Train (continuing the checkpoint with ``resume``); returns what the run did. The model is left in eval
        mode, holding the best weights with ``restore_best``, else the last ones.

        Raises:
            CheckpointError: ``resume`` without a checkpoint of a run with this task's signature.
        """
        return denormals_flushed(self._fit)(resume)

    def _fit(self, resume: bool) -> TrainerResult:
        opts, dist, task = self.options, self.dist, self.task
        broadcast_parameters(task.model, dist)
        pos = _Position()
        ranks: list[dict[str, Any]] | None = None
        totals: torch.Tensor | None = None
        if resume:
            pos, ranks, totals = self._resume()
        self.started = self.clock() - pos.elapsed - (0.0 if resume else opts.budget_spent)
        self._announced_budget = False
        self.trained_before = pos.trained
        self._timed_since: float | None = None
        self._timed_updates = 0
        self._evaluation_seconds: float | None = None
        self._last_evaluated = -1
        self._interval: torch.Tensor | None = None
        if resume:
            self._replan_on_resume(pos)
        stop = self._limit_reached(pos, pos.epoch_seconds) if resume else None
        with training_progress(enabled=opts.progress and dist.is_main, unit=task.unit, console=self.console) as bar:
            self._bar = bar
            try:
                while pos.epoch <= opts.epochs and stop is None:
                    stop = self._epoch(pos, bar, ranks, totals)
                    ranks, totals = None, None
            finally:
                self._bar = None
        if stop in ("time budget", "update limit") and dist.is_main:
            seconds = self._training_seconds(pos)
            self.log(f"stopped after {pos.updates} updates, {seconds / 60:.1f} minutes of training ({stop})")
        if opts.evaluate_at_end and self._last_evaluated != pos.updates and dist.is_main and pos.updates:
            self._evaluate_between_epochs(pos)
        self.result.updates = pos.updates
        self.result.stopped = stop if stop != "end" else None
        self.result.best_epoch = pos.best_epoch
        if opts.restore_best and self.best_state is not None:
            task.model.load_state_dict(self.best_state)
        task.model.eval()
        return self.result

    def _epoch(
        self,
        pos: _Position,
        bar: Any,
        ranks: list[dict[str, Any]] | None,
        totals: torch.Tensor | None,
    ) -> str | None:
        """Train (the rest of) epoch ``pos.epoch``; returns why training stops after it, or None to go on."""
        opts, dist, task, model = self.options, self.dist, self.task, self.task.model
        epoch = pos.epoch
        if ranks is not None:  # inside an interrupted epoch: its batches from the states at its start
            mine = ranks[dist.rank]
            restore_random_states(mine["start"], dist, task.generators())
            epoch_start = mine["start"]
            batches = task.epoch_batches(epoch)
            if pos.passes:  # saved after the epoch's batches were drawn (at its start, "now" is "start")
                restore_random_states(mine["now"], dist, task.generators())
        else:
            epoch_start = random_states(dist, task.generators())
            batches = task.epoch_batches(epoch)
        passes = len(batches)
        device = dist.device
        first_pass = pos.passes
        if totals is None:
            totals = torch.zeros(0, dtype=torch.float64, device=device)
        evaluating = 0.0
        start = self.clock() - pos.epoch_seconds
        model.train()
        shown = task.progress_counts(totals.tolist())[0] if totals.numel() else 0.0
        bar_task = bar.add_task(f"epoch {epoch}/{opts.epochs}", total=passes, completed=first_pass, loss=shown, speed=0)
        self.optimizer.zero_grad(set_to_none=True)
        update_stats: torch.Tensor | None = None
        items: torch.Tensor | float = 0.0
        stop: str | None = None
        for i in range(first_pass, passes):
            batch, weight = batches[i]
            t0 = self.clock()
            prepared = task.prepare(batch, weight)
            pos.data_seconds += self.clock() - t0
            with autocast(device, opts.precision):
                step = task.step(prepared, weight)
            (step.loss * (weight / opts.accumulate)).backward()
            stats = step.stats.detach().to(torch.float64)
            update_stats = stats if update_stats is None else update_stats + stats
            items = items + step.items
            if (i + 1) % opts.accumulate and i + 1 < passes:
                continue
            # an update
            rate = self.schedule.factor(pos.updates)
            pos.updates += 1
            pos.passes = i + 1
            seconds = self.clock() - start - evaluating
            self.schedule.after_update(self._update_done(pos, seconds, passes))
            self._announce_budget()
            local_stop = self._limit_reached(pos, seconds) if dist.is_main else None
            if local_stop is None and self.schedule.finished and i + 1 < passes:
                local_stop = "end"  # the schedule's plan ends inside this epoch (single process: see schedules)
            sums = update_stats
            if task.reduction == "sum" or dist.distributed:
                count = items if task.reduction == "sum" else 1.0
                flag = 0.0 if local_stop is None or not dist.is_main else 1.0 + _REASONS.index(local_stop)
                packed = torch.cat([_as_vector(count, device), sums, torch.tensor([flag], device=device)])
                packed = mean_gradients(self.params, packed.to(torch.float32), dist)
                sums = packed[1:-1].to(torch.float64)
                if dist.distributed:
                    code = int(packed[-1])
                    local_stop = None if code == 0 else _REASONS[min(code, len(_REASONS)) - 1]
            if opts.clip > 0:
                torch.nn.utils.clip_grad_norm_(self.params, opts.clip)
            for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
                group["lr"] = base * rate
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.average is not None:
                self.average.update()
            totals = sums if not totals.numel() else totals + sums
            self._interval = sums if self._interval is None else self._interval + sums
            update_stats, items = None, 0.0
            self._time_update(pos)
            if (pos.updates % 10 == 0 or i + 1 == passes) and bar_task is not None:
                loss, units = task.progress_counts(totals.tolist())
                elapsed = max(self.clock() - start - evaluating, 1e-9)
                bar.update(bar_task, completed=i + 1, loss=loss, speed=units / elapsed)
            else:
                bar.update(bar_task, completed=i + 1)
            if opts.evaluate_every and pos.updates % opts.evaluate_every == 0 and dist.is_main:
                pos.epoch_seconds = self.clock() - start - evaluating
                t1 = self.clock()
                self._evaluate_between_epochs(pos)
                model.train()
                evaluating += self.clock() - t1
            pos.epoch_seconds = self.clock() - start - evaluating
            if local_stop is not None:
                stop = local_stop
                break
            if opts.checkpoint_every and pos.updates % opts.checkpoint_every == 0 and i + 1 < passes:
                self._checkpoint(pos, totals, epoch_start)
        bar.remove_task(bar_task)
        complete = pos.passes >= passes
        train_seconds = pos.epoch_seconds
        record: dict[str, Any] = {
            "epoch": epoch,
            **task.epoch_fields(totals.tolist() if totals.numel() else [], train_seconds),
            "train_seconds": round(train_seconds, 3),
            "data_seconds": round(pos.data_seconds, 3),
            "lr": self.base_lrs[0] * self.schedule.factor(pos.updates),
        }
        if not complete:
            record["fraction"] = round(pos.passes / max(passes, 1), 3)
        t_other = self.clock()
        improved = False
        if dist.is_main:
            if opts.evaluate_each_epoch:
                improved = self._evaluate_epoch(record, pos)
            else:
                improved = False
            self.result.history.append(record)
            if opts.metrics_file is not None:
                atomic_write_text(opts.metrics_file, json.dumps(self.result.history, indent=2) + "\n")
            line = task.describe_epoch(record, improved)
            if line is not None:
                self.log(line, own=False)
        other_seconds = self.clock() - t_other
        if complete:
            pos.trained += train_seconds
            self._start_next_epoch(pos)
            totals = torch.zeros(0, dtype=torch.float64, device=device)
            epoch_start = None
        if stop is None and dist.is_main:
            if opts.patience is not None and pos.bad_evaluations >= opts.patience:
                stop = "patience"
            elif self.schedule.finished:
                stop = "end"
            elif opts.epochs <= epoch:
                stop = "end"
            else:
                end = EpochEnd(
                    epoch,
                    complete,
                    train_seconds,
                    other_seconds,
                    self._seconds_left(pos) if self.schedule.fits_budget else None,
                    opts.epochs,
                    dist.world_size,
                    pos.bad_evaluations,
                )
                if not self.schedule.after_epoch(end):
                    stop = "time budget" if self.schedule.fits_budget and opts.max_minutes is not None else "end"
        if dist.distributed:  # every process follows the first one's decision and plan
            code = 0.0 if stop is None else 1.0 + _REASONS.index(stop)
            values = _from_rank_0([code, *self.schedule.shared_state()], dist)
            stop = None if int(values[0]) == 0 else _REASONS[int(values[0]) - 1]
            self.schedule.set_shared_state(values[1:])
        # the checkpoint holds the schedule as planned for what follows (a plan made from the evaluations, such as
        # the start of a plateau's decay, is not made again on resuming)
        if opts.checkpoint is not None:
            history = self.result.history if complete else self.result.history[:-1]
            self._checkpoint(pos, totals, epoch_start, history=history)
        if self.on_epoch is not None and dist.is_main:
            self.on_epoch({**record, "best": improved})
        return stop

    # ---- pieces -------------------------------------------------------------------------------------------------

    @staticmethod
    def _start_next_epoch(pos: _Position) -> None:
        """Move ``pos`` to the start of the next epoch."""
        pos.epoch += 1
        pos.passes = 0
        pos.epoch_seconds = 0.0
        pos.data_seconds = 0.0

    def _evaluate(self) -> tuple[Evaluation | None, float]:
        """The task's evaluation of the (averaged) weights and its seconds."""
        t0 = self.clock()
        with self.average.swapped_in() if self.average is not None else contextlib.nullcontext():
            evaluation = self.task.evaluate()
        seconds = self.clock() - t0
        self._evaluation_seconds = max(self._evaluation_seconds or 0.0, seconds)
        if self._timed_since is not None:
            self._timed_since += seconds  # the update rate leaves evaluations out
        return evaluation, seconds

    def _judge(self, evaluation: Evaluation | None, record: dict[str, Any], pos: _Position) -> bool:
        """Whether ``evaluation`` is the best so far; if so the task keeps it (and the trainer holds it)."""
        if not self.options.keep_best:
            return False
        improved = evaluation is None or pos.best_score is None or list(evaluation.score) > pos.best_score
        if improved:
            pos.best_score = list(evaluation.score) if evaluation is not None else pos.best_score
            pos.best_epoch = pos.epoch
            pos.bad_evaluations = 0
            self.result.best = dict(evaluation.metrics) if evaluation is not None else {}
            with self.average.swapped_in() if self.average is not None else contextlib.nullcontext():
                self.task.keep(record)
                if self.options.restore_best:
                    self.best_state = copy.deepcopy(self.task.model.state_dict())
        else:
            pos.bad_evaluations += 1
        return improved

    def _evaluate_epoch(self, record: dict[str, Any], pos: _Position) -> bool:
        evaluation, seconds = self._evaluate()
        if evaluation is not None:
            record[self.task.evaluation_name] = evaluation.metrics
            record["eval_seconds"] = round(seconds, 2)
        self._last_evaluated = pos.updates
        return self._judge(evaluation, record, pos)

    def _evaluate_between_epochs(self, pos: _Position) -> None:
        evaluation, _ = self._evaluate()
        interval = self._interval
        seconds = self._training_seconds(pos)
        point: dict[str, Any] = {
            "epoch": pos.epoch,
            "updates": pos.updates,
            "seconds": seconds,
            "elapsed": self.clock() - self.started,
            "of": self._last_update(),
            **self.task.epoch_fields(interval.tolist() if interval is not None else [], seconds),
        }
        if evaluation is not None:
            point[self.task.evaluation_name] = evaluation.metrics
        self._interval = None
        self._last_evaluated = pos.updates
        improved = self._judge(evaluation, point, pos) if evaluation is not None else False
        self.result.evaluations.append(point)
        line = self.task.describe_evaluation(point, improved)
        if line is not None:
            self.log(line, own=False)

    def _announce_budget(self) -> None:
        """Say once when a schedule fitted to the time budget plans fewer updates than asked for."""
        plan = self.schedule.update_plan()
        if self._announced_budget or plan is None:
            return
        end, asked = plan
        if end < asked and self.options.max_minutes is not None:
            budget = f"the time budget ({self.options.max_minutes * 60:.0f} s)"
            self.log(f"{budget} allows about {end} of {asked} updates")
            self._announced_budget = True

    def _training_seconds(self, pos: _Position) -> float:
        return pos.trained + pos.epoch_seconds

    def _seconds_left(self, pos: _Position) -> float | None:
        if self.options.max_minutes is None:
            return None
        if self.options.budget_counts_evaluations:
            return self.options.max_minutes * 60 - (self.clock() - self.started)
        return self.options.max_minutes * 60 - self._training_seconds(pos)

    def _last_update(self) -> int | None:
        """The last update the options and the schedule plan (None: the epochs decide)."""
        limits = [self.options.max_updates] if self.options.max_updates is not None else []
        plan = self.schedule.update_plan()
        if plan is not None:
            limits.append(plan[0])
        return min(limits) if limits else None

    def _limit_reached(self, pos: _Position, epoch_seconds: float) -> str | None:
        """Why training must stop now (after ``pos.updates`` updates), if it must."""
        opts = self.options
        if opts.max_updates is not None and pos.updates >= opts.max_updates:
            return "update limit"
        plan = self.schedule.update_plan()
        if plan is not None and pos.updates >= plan[0]:
            return "end" if plan[0] >= plan[1] else "time budget"
        if opts.max_minutes is not None and not self.schedule.fits_budget:
            if opts.budget_counts_evaluations:
                spent = self.clock() - self.started
            else:
                spent = pos.trained + epoch_seconds
            if spent >= 60 * opts.max_minutes:
                return "time budget"
        return None

    def _update_done(self, pos: _Position, epoch_seconds: float, passes: int) -> UpdateDone:
        per_update = None
        if self._timed_since is not None and self._timed_updates > 0:
            per_update = (self.clock() - self._timed_since) / self._timed_updates
        left = None
        if self.options.max_minutes is not None:
            pos.epoch_seconds = epoch_seconds
            left = self._seconds_left(pos)
        return UpdateDone(
            epoch=pos.epoch,
            passes_done=pos.passes,
            passes=passes,
            updates=pos.updates,
            seconds_left=left,
            seconds_per_update=per_update,
            seconds_per_evaluation=self._evaluation_seconds,
            updates_between_evaluations=self.options.evaluate_every or None,
        )

    def _time_update(self, pos: _Position) -> None:
        """Time the updates from the third of this process on (the first ones also warm up caches and kernels)."""
        self._timed_updates += 1
        if self._timed_since is None and self._timed_updates >= 2:
            self._timed_since, self._timed_updates = self.clock(), 0

    def _signature(self) -> dict[str, Any]:
        return {
            "kind": self.task.kind,
            **self.task.signature(),
            "accumulate": self.options.accumulate,
            "ema": self.options.ema,
            "processes": self.dist.world_size,
            "checkpoint format": CHECKPOINT_FORMAT,
        }

    def _checkpoint(
        self,
        pos: _Position,
        totals: torch.Tensor,
        epoch_start: dict[str, Any] | None,
        *,
        history: list[dict[str, Any]] | None = None,
    ) -> None:
        """Write the checkpoint (a collective: every process calls it; the first one writes)."""
        path = self.options.checkpoint
        if path is None:
            return
        now = random_states(self.dist, self.task.generators())
        ranks = gather_rank_states(self.dist, {"start": epoch_start if epoch_start is not None else now, "now": now})
        if not self.dist.is_main:
            return
        saved = {**pos.__dict__, "elapsed": self.clock() - self.started}
        meta = {
            "signature": self._signature(),
            "position": saved,
            "history": self.result.history if history is None else history,
            "evaluations": self.result.evaluations,
            "best": self.result.best,
            "schedule": self.schedule.state_dict(),
        }
        state: dict[str, Any] = {
            "model": self.task.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ranks": ranks,
            "totals": totals.cpu(),
        }
        if self.average is not None:
            state["ema"] = self.average.state_dict()
        if self.best_state is not None:
            state["best"] = self.best_state
        write_checkpoint(path, state, meta)

    def _resume(self) -> tuple[_Position, list[dict[str, Any]], torch.Tensor]:
        """Load the checkpoint into the model, optimizer and trainer; the position, every rank's random states and
        the epoch's statistics so far."""
        path = self.options.checkpoint
        if path is None:
            raise ValueError("resuming needs a checkpoint path")
        state, meta = read_checkpoint(path)
        saved = meta["signature"]
        if saved.get("kind") == self.task.kind and saved.get("checkpoint format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path}: a checkpoint of an earlier unnparse that this version cannot continue; "
                "start a new run with --overwrite"
            )
        check_signature(path, saved, self._signature())
        try:
            self.task.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.average is not None:
                self.average.load_state_dict(state["ema"])
            if "best" in state and self.dist.is_main:  # the process that keeps the best (as in a run not resumed)
                self.best_state = {k: v.to(self.dist.device) for k, v in state["best"].items()}
            pos = _Position(**meta["position"])
            self.schedule.load_state_dict(meta["schedule"])
            self.result.history = list(meta["history"])
            self.result.evaluations = list(meta["evaluations"])
            self.result.best = dict(meta["best"])
            ranks = list(state["ranks"])
            totals = state["totals"].to(device=self.dist.device, dtype=torch.float64)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{path}: incomplete checkpoint ({' '.join(str(err).split())[:160]})") from None
        if pos.passes:
            self.log(f"resuming from {path} in epoch {pos.epoch} ({pos.updates} updates done)")
        else:
            self.log(f"resuming from {path} after epoch {pos.epoch - 1} ({pos.updates} updates done)")
        return pos, ranks, totals

    def _replan_on_resume(self, pos: _Position) -> None:
        """The options may ask for more epochs or minutes than the interrupted run planned."""
        if self.dist.is_main:
            end = EpochEnd(
                pos.epoch - 1,
                False,
                0.0,
                0.0,
                self._seconds_left(pos),
                self.options.epochs,
                self.dist.world_size,
                pos.bad_evaluations,
            )
            if self.schedule.fits_budget:
                self.schedule.after_epoch(end)
        if self.dist.distributed:
            self.schedule.set_shared_state(_from_rank_0(self.schedule.shared_state(), self.dist))


def _as_vector(value: torch.Tensor | float, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().reshape(1).to(device=device, dtype=torch.float64)
    return torch.tensor([float(value)], dtype=torch.float64, device=device)


def _from_rank_0(values: list[float], dist: DistContext) -> list[float]:
    """Rank 0's ``values`` on every rank."""
    if not values:
        return []
    sent = torch.tensor(values, dtype=torch.float64, device=dist.device)
    torch.distributed.broadcast(sent, src=0)
    return sent.tolist()
