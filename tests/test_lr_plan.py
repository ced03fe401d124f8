"""The learning-rate plan: warmup and linear decay to zero at the end of training, also under a time budget."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from rich.console import Console

from tests.parser_fixtures import conllu_text
from unnparse.conllu import read_conllu
from unnparse.parser.batching import token_budget_batches
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import TrainOptions, train_parser
from unnparse.training.schedules import EpochEnd, EpochLinearDecay, PlateauDecay, epochs_that_fit


def test_factor_warms_up_then_decays_linearly_to_zero_at_the_planned_end():
    plan = EpochLinearDecay(epochs=4.0, warmup_steps=4, warmup_epochs=0.5)
    assert [plan.factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    plan.advance(1, 1, 2)  # half of epoch 1: the end of warmup
    assert plan.factor(4) == 1.0
    plan.advance(3, 1, 4)  # 2.25 epochs
    assert plan.factor(9) == pytest.approx((4 - 2.25) / 3.5)
    assert not plan.finished
    plan.advance(4, 4, 4)
    assert plan.finished and plan.factor(16) == 0.0
    plan.advance(5, 1, 4)  # beyond the plan: zero, never negative
    assert plan.factor(17) == 0.0


def test_epochs_that_fit_counts_evaluation_and_leaves_out_tiny_parts():
    # an epoch costs 10 s of training and 2 s of evaluation; 100 s left: 8 whole epochs (96 s), then 4 s:
    # evaluation 2 s and 0.2 of an epoch's training
    assert epochs_that_fit(100, [10.0], [2.0]) == pytest.approx(8.2)
    assert epochs_that_fit(100, [10.0], [2.0], whole=True) == 8.0
    assert epochs_that_fit(97.5, [10.0], [2.0]) == 8.0  # 1.5 s left: not even the evaluation fits
    assert epochs_that_fit(98.5, [10.0], [2.0]) == 8.0  # 0.05 of an epoch: not worth its evaluation
    assert epochs_that_fit(0, [10.0], [2.0]) == 0.0
    assert epochs_that_fit(50, [], []) == 0.0
    # the last three epochs count: a slow first epoch (warm-up of caches, a neighbour's load) is forgotten
    assert epochs_that_fit(60, [30.0, 10.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]) == 6.0


def _data():
    def read(n: int, seed: int):
        return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")

    return read(30, 1), read(6, 2)


def _parser(train) -> Parser:
    torch.manual_seed(0)
    config = default_config(unn_iter=1, hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1)
    return Parser.build(config, train)


def test_learning_rate_reaches_zero_on_the_last_update_of_the_last_epoch(tmp_path, monkeypatch):
    train, dev = _data()
    opts = TrainOptions(epochs=3, lr=5e-3, batch_tokens=150, patience=100, seed=2, schedule="decay")
    lrs: list[float] = []
    parser = _parser(train)
    real_step = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    result = train_parser(parser, train, dev, opts, tmp_path / "m", progress=False)
    per_epoch = [
        len(token_budget_batches([len(s) for s in train], 150, shuffle=True, seed=2 * 1000 + e)) for e in (1, 2, 3)
    ]
    assert len(lrs) == sum(per_epoch) and len(result.history) == 3
    # every update trains (the last with the smallest non-zero rate), and the decay ends exactly after it
    assert min(lrs) > 0 and lrs[-1] == min(lrs)
    assert lrs[-1] == pytest.approx(opts.lr * (1 / per_epoch[2]) / (3 - 1 / per_epoch[0]))
    assert result.history[-1]["lr"] == 0.0


class _BatchClock:
    """A clock for the training loop that advances one second per training batch (evaluation takes no time)."""

    def __init__(self) -> None:
        self.now = 0.0

    def read(self) -> float:
        return self.now

    def tick(self, _idx) -> None:
        self.now += 1.0


def _budget_run_data():
    """The toy data, and the batches of epoch 1 with seed 3 (every epoch here has as many)."""
    train, dev = _data()
    return train, dev, len(token_budget_batches([len(s) for s in train], 150, shuffle=True, seed=3 * 1000 + 1))


def test_time_budget_ends_inside_an_epoch_with_the_rate_at_zero(tmp_path, monkeypatch):
    train, dev, batches = _budget_run_data()
    clock = _BatchClock()

    budget = 2.5 * batches  # seconds: two epochs and a half (evaluation takes no time on this clock)
    opts = TrainOptions(epochs=100, lr=5e-3, batch_tokens=150, patience=100, seed=3, max_minutes=budget / 60)
    result = train_parser(
        _parser(train), train, dev, opts, tmp_path / "m", progress=False, on_batch=clock.tick, clock=clock.read
    )
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    last = result.history[-1]
    assert last["fraction"] == round(math.ceil(0.5 * batches) / batches, 3)
    assert "fraction" not in result.history[1]
    assert last["lr"] == 0.0 and result.history[1]["lr"] > 0
    assert clock.now <= budget + 1


def test_resuming_with_a_larger_time_budget_trains_on_and_decays_to_zero_again(tmp_path, monkeypatch):
    train, dev, batches = _budget_run_data()
    clock = _BatchClock()

    def options(epochs_of_time: float) -> TrainOptions:
        minutes = epochs_of_time * batches / 60
        return TrainOptions(
            epochs=100, lr=5e-3, batch_tokens=150, patience=100, seed=3, max_minutes=minutes, schedule="decay"
        )

    parser = _parser(train)
    first = train_parser(
        parser, train, dev, options(2.0), tmp_path / "m", progress=False, on_batch=clock.tick, clock=clock.read
    )
    assert [r["epoch"] for r in first.history] == [1, 2] and first.history[-1]["lr"] == 0.0
    clock.now = 0.0  # a new process: the budget counts the time the first run spent
    again = train_parser(
        _parser(train),
        train,
        dev,
        options(4.0),
        tmp_path / "m",
        progress=False,
        resume=True,
        on_batch=clock.tick,
        clock=clock.read,
    )
    assert [r["epoch"] for r in again.history] == [1, 2, 3, 4]
    assert again.history[2]["lr"] > 0 and again.history[-1]["lr"] == 0.0


def _end(epoch: int, epochs: int = 1000, bad: int = 0, seconds_left=None, train=10.0) -> EpochEnd:
    return EpochEnd(epoch, True, train, 0.0, seconds_left, epochs, bad_evaluations=bad)


def test_plateau_decay_keeps_the_rate_until_dev_stops_improving_then_decays_a_fifth():
    plan = PlateauDecay(epochs=1000.0, warmup_steps=1, warmup_epochs=0.01, patience=3)
    bad = [0, 0, 0, 0, 1, 0, 1, 2, 0, 1, 2, 3]  # the 12th epoch is the third in a row without a better score
    for epoch, b in enumerate(bad, start=1):
        plan.advance(epoch, 10, 10)
        assert plan.factor(epoch * 10) == 1.0 and plan.decay_start is None
        assert plan.after_epoch(_end(epoch, bad=b))
    assert plan.decay_start == 12.0 and plan.epochs == pytest.approx(12 + 0.2 * 12)
    plan.advance(13, 5, 10)  # 12.5 epochs: a fifth of the way down
    assert plan.factor(125) == pytest.approx(1 - 0.5 / 2.4)
    assert plan.after_epoch(_end(13, bad=4))  # the plan does not move once the decay has begun
    plan.advance(15, 4, 10)  # 14.4 epochs: the end of the decay (training stops inside epoch 15)
    assert plan.finished and plan.factor(144) == 0.0
    assert not plan.after_epoch(_end(15, bad=5))


def test_plateau_decay_starts_early_enough_to_end_within_the_epochs_or_the_budget():
    plan = PlateauDecay(epochs=10.0, warmup_steps=1, warmup_epochs=0.1, patience=50)
    for epoch in range(1, 8):
        plan.advance(epoch, 1, 1)
        assert plan.after_epoch(_end(epoch, epochs=10)) and plan.decay_start is None
    plan.advance(8, 1, 1)
    assert plan.after_epoch(_end(8, epochs=10))  # 2 epochs left: the shortest decay
    assert (plan.decay_start, plan.epochs) == (8.0, 10.0)
    budget = PlateauDecay(epochs=1000.0, warmup_steps=1, warmup_epochs=0.1, patience=50, budget=True)
    budget.advance(1, 1, 1)
    assert budget.after_epoch(_end(1, seconds_left=100.0))  # 10 epochs fit: no decay yet
    assert budget.decay_start is None and budget.limit == 11.0
    budget.advance(2, 1, 1)
    assert budget.after_epoch(_end(2, seconds_left=20.0))  # 2 epochs fit: decay now, to end with the budget
    assert (budget.decay_start, budget.epochs) == (2.0, 4.0)
    with pytest.raises(ValueError):
        PlateauDecay(epochs=5.0, warmup_steps=1, warmup_epochs=0.1, patience=0)


def test_plateau_decay_state_survives_a_checkpoint():
    plan = PlateauDecay(epochs=100.0, warmup_steps=1, warmup_epochs=0.1, patience=1)
    plan.advance(3, 1, 1)
    plan.after_epoch(_end(3, bad=1))
    again = PlateauDecay(epochs=100.0, warmup_steps=1, warmup_epochs=0.1, patience=1)
    again.load_state_dict(json.loads(json.dumps(plan.state_dict())))
    assert (again.decay_start, again.epochs, again.progress) == (plan.decay_start, plan.epochs, plan.progress)
    shared = PlateauDecay(epochs=100.0, warmup_steps=1, warmup_epochs=0.1)
    shared.set_shared_state(plan.shared_state())
    assert (shared.decay_start, shared.epochs) == (3.0, plan.epochs)


def test_a_parser_trained_to_its_plateau_says_so_and_ends_at_zero(tmp_path):
    train = read_conllu(io.StringIO(conllu_text(30, 1)), name="toy")
    dev = read_conllu(io.StringIO(conllu_text(6, 2)), name="toy")
    torch.manual_seed(0)
    parser = Parser.build(default_config(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1), train)
    log = io.StringIO()
    opts = TrainOptions(epochs=60, batch_tokens=400, patience=2, schedule="plateau", seed=1)
    console = Console(file=log, width=400, markup=False)
    result = train_parser(parser, train, dev, opts, tmp_path / "m", progress=False, console=console)
    assert "training ends: when 2 epochs in a row bring no better dev LAS" in log.getvalue().splitlines()[0]
    assert len(result.history) < 60  # the plateau ended it
    assert result.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)
    rates = [r["lr"] for r in result.history]
    assert rates[0] == pytest.approx(opts.lr)
    start = next(i for i, rate in enumerate(rates) if rate < opts.lr - 1e-12)
    assert all(a >= b for a, b in zip(rates[start:], rates[start + 1 :], strict=False))  # a decay, once begun
