"""The learning-rate plan: warmup and linear decay to zero at the end of training, also under a time budget."""

from __future__ import annotations

import io
import math

import pytest
import torch

from tests.parser_fixtures import conllu_text
from unnparse.conllu import read_conllu
from unnparse.parser.batching import token_budget_batches
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import TrainOptions, train_parser
from unnparse.training.schedules import EpochLinearDecay, epochs_that_fit


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
    opts = TrainOptions(epochs=3, lr=5e-3, batch_tokens=150, patience=100, seed=2)
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
        return TrainOptions(epochs=100, lr=5e-3, batch_tokens=150, patience=100, seed=3, max_minutes=minutes)

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
