"""Tests for unnparse.parser.batching."""

from __future__ import annotations

import random

import pytest

from unnparse.parser.batching import inference_batches, shard_batches, shard_pass_weights, token_budget_batches


def _lengths(n: int = 500, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [max(1, int(rng.gauss(20, 10))) for _ in range(n)]


def _cost(batch: list[int], lengths: list[int]) -> int:
    return (max(lengths[i] for i in batch) + 1) * len(batch)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n_buckets", [None, 1, 4, 1000])
def test_every_index_once_and_budget_respected(shuffle: bool, n_buckets: int | None) -> None:
    lengths = _lengths() + [300, 0]  # one sentence longer than the budget, one empty
    budget = 200
    batches = token_budget_batches(lengths, budget, shuffle=shuffle, seed=3, n_buckets=n_buckets)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in batches:
        assert batch
        assert _cost(batch, lengths) <= budget or len(batch) == 1
    assert [len(lengths) - 2] in batches  # the over-long sentence, alone


def test_batches_are_reasonably_full() -> None:
    lengths = [10] * 100
    batches = token_budget_batches(lengths, 110, shuffle=False)
    # (10 + 1) * 10 = 110 fits exactly: 10 batches of 10
    assert [len(b) for b in batches] == [10] * 10


def test_unshuffled_is_sorted_and_deterministic() -> None:
    lengths = _lengths()
    a = token_budget_batches(lengths, 300, shuffle=False)
    b = token_budget_batches(lengths, 300, shuffle=False, seed=99)
    assert a == b
    maxima = [max(lengths[i] for i in batch) for batch in a]
    assert maxima == sorted(maxima)


def test_shuffle_is_deterministic_given_seed() -> None:
    lengths = _lengths()
    a = token_budget_batches(lengths, 300, shuffle=True, seed=1)
    assert a == token_budget_batches(lengths, 300, shuffle=True, seed=1)
    c = token_budget_batches(lengths, 300, shuffle=True, seed=2)
    assert a != c
    assert sorted(map(sorted, a)) != sorted(map(sorted, c))  # composition changes too, not only the order


def test_buckets_keep_lengths_apart() -> None:
    lengths = [5] * 60 + [50] * 60
    random.Random(0).shuffle(lengths)
    for seed in range(5):
        batches = token_budget_batches(lengths, 400, shuffle=True, seed=seed, n_buckets=2)
        for batch in batches:
            assert len({lengths[i] for i in batch}) == 1
    # a single bucket mixes them when shuffling
    mixed = token_budget_batches(lengths, 400, shuffle=True, seed=0, n_buckets=1)
    assert any(len({lengths[i] for i in batch}) == 2 for batch in mixed)


def test_edge_cases_and_validation() -> None:
    assert token_budget_batches([], 100, shuffle=True, seed=0) == []
    assert token_budget_batches([1000], 10, shuffle=False) == [[0]]
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError):
            token_budget_batches([1, 2], bad, shuffle=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        token_budget_batches([1, -2], 10, shuffle=False)
    with pytest.raises(ValueError):
        token_budget_batches([1, 2], 10, shuffle=False, n_buckets=0)


@pytest.mark.parametrize("max_padding", [0.0, 0.25, 10.0])
def test_inference_batches_cover_sorted_runs_within_budget_and_padding(max_padding: float) -> None:
    lengths = _lengths() + [300, 0]
    budget = 400
    batches = inference_batches(lengths, budget, max_padding=max_padding)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert flat == sorted(range(len(lengths)), key=lambda i: (lengths[i], i))  # contiguous runs of the sorted order
    for batch in batches:
        real = sum(lengths[i] + 1 for i in batch)
        assert len(batch) == 1 or _cost(batch, lengths) <= min(budget, (1 + max_padding) * real)
    assert [len(lengths) - 2] in batches
    if max_padding == 0.0:  # no padding at all: every batch holds one length
        assert all(len({lengths[i] for i in batch}) == 1 for batch in batches)
    assert inference_batches(lengths, budget, max_padding=max_padding) == batches


def test_inference_batches_bound_the_padding_of_a_small_input() -> None:
    """A small input under a large budget: the budget alone makes one batch, mostly padding; the bound does not."""
    lengths = [5] * 40 + [60]
    assert token_budget_batches(lengths, 10_000, shuffle=False, n_buckets=1) == [list(range(41))]
    batches = inference_batches(lengths, 10_000)
    assert batches == [list(range(40)), [40]]
    greedy_single = inference_batches(lengths, 10_000, max_padding=float("inf"))
    assert greedy_single == [list(range(41))]  # no bound: fewest, fullest batches, as before
    assert inference_batches([], 100) == []
    with pytest.raises(ValueError):
        inference_batches([3], 0)
    with pytest.raises(ValueError):
        inference_batches([3], 10, max_padding=-0.5)


def test_shard_batches() -> None:
    batches = [[i] for i in range(10)]
    shards = [shard_batches(batches, rank, 3) for rank in range(3)]
    assert shards == [[[0], [3], [6], [9]], [[1], [4], [7]], [[2], [5], [8]]]
    flat = sorted(b[0] for shard in shards for b in shard)
    assert flat == list(range(10))  # disjoint and complete, nothing repeated
    assert shard_batches(batches, 0, 1) == batches
    for rank, world in ((3, 3), (-1, 2), (0, 0)):
        with pytest.raises(ValueError):
            shard_batches(batches, rank, world)
        with pytest.raises(ValueError):
            shard_pass_weights(10, rank, world)


@pytest.mark.parametrize("n_batches", [0, 1, 2, 7, 9, 10, 11])
def test_shard_pass_weights_give_every_rank_the_same_passes_and_the_mean_gradient(n_batches) -> None:
    world = 3
    weights = [shard_pass_weights(n_batches, rank, world) for rank in range(world)]
    shards = [shard_batches([[i] for i in range(n_batches)], rank, world) for rank in range(world)]
    passes = -(-n_batches // world)
    for rank in range(world):
        assert len(weights[rank]) == passes  # the same number of passes (and all-reduces) on every rank
        assert all(w > 0 for w in weights[rank][: len(shards[rank])])  # every batch of the shard is trained on
        assert all(w == 0 for w in weights[rank][len(shards[rank]) :])  # passes beyond it weigh nothing
    # on each pass, the all-reduced mean over ranks of weight * gradient is the plain mean over the batches drawn
    for i in range(passes):
        drawn = [rank for rank in range(world) if i < len(shards[rank])]
        gradients = {rank: float(shards[rank][i][0] + 1) for rank in drawn}
        reduced = sum(weights[rank][i] * gradients.get(rank, 5.0) for rank in range(world)) / world
        assert reduced == pytest.approx(sum(gradients.values()) / len(drawn))
    assert shard_pass_weights(n_batches, 0, 1) == [1.0] * n_batches
