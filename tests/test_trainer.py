"""The one training loop (:mod:`unnparse.training`) on a toy task: accumulation, resuming from inside an epoch,
best keeping and early stopping, weight averaging, limits and time budgets, checkpoints of another layout."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import torch

from unnparse.training import (
    ConstantRate,
    Evaluation,
    LinearDecay,
    Step,
    Trainer,
    TrainerOptions,
    TrainingTask,
)
from unnparse.training.checkpoints import CheckpointError, read_checkpoint, write_checkpoint
from unnparse.training.schedules import UpdateDone


class ToyTask(TrainingTask):
    """Least squares with dropout on 4 inputs: random batches (a generator of the task's), random masks (the global
    generator), the squared error summed over items; evaluation: minus the dev error."""

    kind = "toy"
    unit = "rows"
    reduction = "sum"

    def __init__(self, batch_size: int = 5, scores: Sequence[float] | None = None, lr: float = 0.05) -> None:
        torch.manual_seed(0)
        data = torch.Generator().manual_seed(7)
        self.x = torch.randn(40, 4, generator=data)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(40, generator=data)
        self.model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(4, 1))
        self.batch_size, self.lr = batch_size, lr
        self.shuffle = torch.Generator().manual_seed(3)
        self.scores = list(scores) if scores is not None else None  # scripted evaluation scores
        self.kept: list[dict[str, Any]] = []
        self.seen: list[list[int]] = []

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.parameters()), "lr": self.lr}]

    def signature(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    def generators(self) -> list[torch.Generator]:
        return [self.shuffle]

    def epoch_batches(self, epoch: int) -> list[tuple[torch.Tensor, float]]:
        order = torch.randperm(30, generator=self.shuffle)
        return [(order[i : i + self.batch_size], 1.0) for i in range(0, 30, self.batch_size)]

    def prepare(self, batch: torch.Tensor, weight: float) -> torch.Tensor:
        self.seen.append(batch.tolist())
        return batch

    def step(self, batch: torch.Tensor, weight: float) -> Step:
        error = ((self.model(self.x[batch]).squeeze(-1) - self.y[batch]) ** 2).sum()
        n = float(len(batch))
        return Step(error, torch.stack([error.detach(), error.detach().new_tensor(n)]), n)

    def evaluate(self) -> Evaluation:
        if self.scores is not None:
            score = self.scores.pop(0)
        else:
            with torch.no_grad():
                self.model.eval()
                score = -float(((self.model(self.x[30:]).squeeze(-1) - self.y[30:]) ** 2).mean())
                self.model.train()
        return Evaluation({"score": score}, (score,))

    def epoch_fields(self, totals: Sequence[float], seconds: float) -> dict[str, Any]:
        return {"loss": totals[0] / max(totals[1], 1)} if totals else {"loss": 0.0}

    def progress_counts(self, totals: Sequence[float]) -> tuple[float, float]:
        return (totals[0] / max(totals[1], 1), totals[1]) if totals else (0.0, 0.0)

    def keep(self, record: Mapping[str, Any]) -> None:
        self.kept.append(dict(record))


def _weights(task: ToyTask) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in task.model.state_dict().items()}


def _fit(task: ToyTask, **options: Any) -> Any:
    schedule = options.pop("schedule", None)
    clock = options.pop("clock", None)
    kwargs = {"clock": clock} if clock is not None else {}
    opts = TrainerOptions(progress=False, **options)
    return Trainer(task, opts, schedule=schedule, log=lambda _line: None, **kwargs).fit()


def test_accumulating_two_half_batches_is_one_whole_batch():
    """With the loss summed over items, two accumulated batches of 5 make the update of one batch of 10."""
    whole, halves = ToyTask(batch_size=10), ToyTask(batch_size=5)
    whole.model[0].p = halves.model[0].p = 0.0  # no dropout: the two runs draw different masks otherwise
    _fit(whole, epochs=2, evaluate_each_epoch=False)
    _fit(halves, epochs=2, accumulate=2, evaluate_each_epoch=False)
    for (name, a), b in zip(_weights(whole).items(), _weights(halves).values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)


def test_resuming_from_inside_an_epoch_continues_exactly(tmp_path):
    straight = ToyTask()
    _fit(straight, epochs=3)
    cut = ToyTask()
    ckpt = tmp_path / "checkpoint.pt"
    first = Trainer(
        cut,
        TrainerOptions(epochs=3, max_updates=8, checkpoint=ckpt, progress=False),
        log=lambda _line: None,
    ).fit()
    assert first.stopped == "update limit" and first.updates == 8  # 6 batches per epoch: inside epoch 2
    state, meta = read_checkpoint(ckpt)
    assert meta["position"]["epoch"] == 2 and meta["position"]["passes"] == 2
    resumed = ToyTask()
    lines: list[str] = []
    again = Trainer(resumed, TrainerOptions(epochs=3, checkpoint=ckpt, progress=False), log=lines.append).fit(
        resume=True
    )
    assert any("in epoch 2 (8 updates done)" in line for line in lines)
    assert cut.seen + resumed.seen == straight.seen  # the same batches, none twice
    assert [r["epoch"] for r in again.history] == [1, 2, 3]
    assert again.history[1]["loss"] == pytest.approx(_fit_history(ToyTask())[1]["loss"], rel=1e-12)
    for name, value in _weights(straight).items():
        torch.testing.assert_close(_weights(resumed)[name], value, rtol=0, atol=0, msg=name)


def _fit_history(task: ToyTask) -> list[dict[str, Any]]:
    return Trainer(task, TrainerOptions(epochs=3, progress=False), log=lambda _line: None).fit().history


def test_best_evaluation_is_kept_and_patience_stops():
    task = ToyTask(scores=[1.0, 3.0, 2.0, 3.0, 2.5, 9.0])
    result = _fit(task, epochs=6, patience=2, restore_best=True)
    # epochs 3 and 4 do not beat epoch 2 (3.0 is not better than 3.0): stop after epoch 4
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert result.stopped == "patience" and result.best_epoch == 2 and result.best == {"score": 3.0}
    assert [k["epoch"] for k in task.kept] == [1, 2]


def test_restore_best_puts_the_best_weights_back():
    task = ToyTask(scores=[1.0, 5.0, 2.0])
    snapshots: list[dict[str, torch.Tensor]] = []
    opts = TrainerOptions(epochs=3, restore_best=True, progress=False)
    Trainer(task, opts, log=lambda _line: None, on_epoch=lambda _r: snapshots.append(_weights(task))).fit()
    for name, value in snapshots[1].items():
        torch.testing.assert_close(_weights(task)[name], value, rtol=0, atol=0, msg=name)
    assert not torch.equal(snapshots[1]["1.weight"], snapshots[2]["1.weight"])


def test_weight_average_is_what_is_evaluated_and_kept():
    task = ToyTask()
    evaluated: list[torch.Tensor] = []
    real = task.evaluate

    def evaluate() -> Evaluation:
        evaluated.append(task.model[1].weight.detach().clone())
        return real()

    task.evaluate = evaluate  # type: ignore[method-assign]
    trainer = Trainer(task, TrainerOptions(epochs=1, ema=0.5, progress=False), log=lambda _line: None)
    trainer.fit()
    assert trainer.average is not None
    torch.testing.assert_close(evaluated[0], trainer.average.average[0])
    assert not torch.equal(evaluated[0], task.model[1].weight.detach())  # the live weights are back


def test_metrics_file_and_evaluations_between_epochs(tmp_path):
    task = ToyTask()
    metrics = tmp_path / "metrics.json"
    result = _fit(task, epochs=2, evaluate_every=4, keep_best=False, metrics_file=metrics)
    assert [p["updates"] for p in result.evaluations] == [4, 8, 12]
    assert json.loads(metrics.read_text()) == result.history
    assert all("dev" in r and r["loss"] > 0 for r in result.history)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_time_budget_stops_a_constant_rate_after_the_update_that_spends_it():
    task, clock = ToyTask(), _Clock()
    task.prepare = lambda batch, weight: (setattr(clock, "now", clock.now + 1.0), batch)[1]  # type: ignore[method-assign]
    result = _fit(task, epochs=100, max_minutes=7.5 / 60, schedule=ConstantRate(), clock=clock)
    assert result.stopped == "time budget" and result.updates == 8
    assert result.history[-1]["fraction"] == pytest.approx(2 / 6, abs=1e-3)


def test_a_decay_fitted_to_the_budget_ends_at_zero_when_the_budget_does():
    task, clock = ToyTask(), _Clock()
    task.prepare = lambda batch, weight: (setattr(clock, "now", clock.now + 1.0), batch)[1]  # type: ignore[method-assign]
    schedule = LinearDecay(1000, fit_to_budget=True)
    lines: list[str] = []
    opts = TrainerOptions(epochs=1000, max_minutes=20 / 60, evaluate_each_epoch=False, progress=False)
    result = Trainer(task, opts, schedule=schedule, clock=clock, log=lines.append).fit()
    assert 15 <= result.updates <= 20 and schedule.total == result.updates
    assert schedule.factor(result.updates) == 0.0 and schedule.factor(result.updates - 1) > 0
    assert any("time budget (20 s) allows about" in line for line in lines)


def test_linear_decay_refits_the_end_from_the_update_rate():
    schedule = LinearDecay(100, fit_to_budget=True, evaluation_updates=3.0)
    schedule.after_update(UpdateDone(1, 6, 10, 6, seconds_left=10.0, seconds_per_update=0.5))
    # 10 s left, an evaluation not yet timed costs 3 updates (1.5 s): 17 more updates
    assert schedule.total == 6 + 17
    schedule.after_update(UpdateDone(1, 7, 10, 7, seconds_left=100.0, seconds_per_update=0.5))
    assert schedule.total == 100  # never beyond the first plan


def test_a_checkpoint_of_an_earlier_layout_is_one_clear_line(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    write_checkpoint(ckpt, {"model": {}}, {"signature": {"kind": "toy", "batch_size": 5}, "epoch": 1})
    trainer = Trainer(ToyTask(), TrainerOptions(checkpoint=ckpt, progress=False), log=lambda _line: None)
    with pytest.raises(CheckpointError, match="earlier unnparse.*--overwrite"):
        trainer.fit(resume=True)


def test_a_checkpoint_of_other_settings_names_the_difference(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    _fit(ToyTask(), epochs=1, checkpoint=ckpt)
    trainer = Trainer(ToyTask(batch_size=10), TrainerOptions(checkpoint=ckpt, progress=False), log=lambda _l: None)
    with pytest.raises(CheckpointError, match="batch_size 5, not 10"):
        trainer.fit(resume=True)
