"""Token-budget batching with length buckets (in the style of SuPar).

Sentences of similar length are grouped into buckets; each bucket is cut into batches
whose *padded* cost ``(max_len + 1) * count`` (the ``+ 1`` is the ROOT position a parser
adds) stays within a token budget.  A sentence that alone exceeds the budget gets a batch
of its own: nothing is ever dropped, every index appears exactly once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_MAX_PADDING",
    "inference_batches",
    "shard_batches",
    "shard_pass_weights",
    "token_budget_batches",
]

#: Number of buckets when ``n_buckets`` is ``None`` (SuPar's default).
DEFAULT_BUCKETS = 32

#: Padding allowed in an inference batch, as a fraction of its real positions (see :func:`inference_batches`).
DEFAULT_MAX_PADDING = 0.25


def _check_batch_tokens(batch_tokens: int) -> None:
    """ValueError unless ``batch_tokens`` is a positive integer."""
    if isinstance(batch_tokens, bool) or not isinstance(batch_tokens, int) or batch_tokens < 1:
        raise ValueError(f"batch_tokens must be a positive integer, not {batch_tokens!r}")


def _buckets(order: list[int], lengths: Sequence[int], n_buckets: int) -> list[list[int]]:
    """Cut ``order`` (indices sorted by length) into at most ``n_buckets`` contiguous groups.

    Like SuPar, the groups are the clusters of a 1-D k-means over the lengths (Lloyd's
    algorithm, weighted by how often each length occurs, deterministically initialised with
    centroids evenly spread over the distinct lengths), so a run of equal lengths is never
    split and well separated lengths never share a bucket.
    """
    counts: dict[int, int] = {}
    for i in order:
        counts[lengths[i]] = counts.get(lengths[i], 0) + 1
    distinct = sorted(counts)
    k = min(n_buckets, len(distinct))
    if k <= 1:
        return [order]
    centroids = [float(distinct[round(j * (len(distinct) - 1) / (k - 1))]) for j in range(k)]
    assignment: list[int] = []
    for _ in range(100):
        # nearest centroid; centroids stay sorted, so clusters are contiguous length ranges
        new_assignment = []
        c = 0
        for length in distinct:
            while c + 1 < len(centroids) and abs(centroids[c + 1] - length) < abs(centroids[c] - length):
                c += 1
            new_assignment.append(c)
        if new_assignment == assignment:
            break
        assignment = new_assignment
        sums = [0.0] * len(centroids)
        weights = [0] * len(centroids)
        for length, cluster in zip(distinct, assignment, strict=True):
            sums[cluster] += length * counts[length]
            weights[cluster] += counts[length]
        centroids = [sums[j] / weights[j] for j in range(len(centroids)) if weights[j]]
    cluster_of = dict(zip(distinct, assignment, strict=True))
    buckets: dict[int, list[int]] = {}
    for i in order:
        buckets.setdefault(cluster_of[lengths[i]], []).append(i)
    return [buckets[c] for c in sorted(buckets)]


def token_budget_batches(
    lengths: Sequence[int],
    batch_tokens: int,
    *,
    shuffle: bool,
    seed: int | None = None,
    n_buckets: int | None = None,
) -> list[list[int]]:
    """Group sentence indices into batches under a padded-token budget.

    Args:
        lengths: number of words of each sentence (index ``i`` is sentence ``i``).
        batch_tokens: budget per batch: ``(max length in batch + 1) * batch size`` stays
            ``<= batch_tokens`` except for a single over-long sentence, which is a batch alone.
        shuffle: if true, shuffle sentences inside each bucket (so batch composition varies
            with the seed) and shuffle the batch order, with ``random.Random(seed)``; if
            false, batches are deterministic and sorted by length.
        seed: seed for shuffling; with ``shuffle`` the result is a function of ``seed``.
        n_buckets: number of length buckets (default :data:`DEFAULT_BUCKETS`), capped at
            the number of distinct lengths.  Batches never mix buckets.  ``1`` means a single
            bucket (with ``shuffle``: random batches of mixed length).

    Returns:
        List of batches, each a list of indices into ``lengths``; every index exactly once.
    """
    _check_batch_tokens(batch_tokens)
    if n_buckets is not None and (not isinstance(n_buckets, int) or n_buckets < 1):
        raise ValueError(f"n_buckets must be a positive integer or None, not {n_buckets!r}")
    for i, length in enumerate(lengths):
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"lengths[{i}] must be a non-negative integer, not {length!r}")
    if not lengths:
        return []
    rng = random.Random(seed)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    buckets = _buckets(order, lengths, n_buckets or DEFAULT_BUCKETS)
    batches: list[list[int]] = []
    for bucket in buckets:
        if shuffle:
            rng.shuffle(bucket)
        batch: list[int] = []
        batch_max = 0
        for idx in bucket:
            cost_len = max(batch_max, lengths[idx]) + 1
            if batch and cost_len * (len(batch) + 1) > batch_tokens:
                batches.append(batch)
                batch, batch_max = [], 0
            batch.append(idx)
            batch_max = max(batch_max, lengths[idx])
        if batch:
            batches.append(batch)
    if shuffle:
        rng.shuffle(batches)
    return batches


def inference_batches(
    lengths: Sequence[int], batch_tokens: int, *, max_padding: float = DEFAULT_MAX_PADDING
) -> list[list[int]]:
    """Batches for parsing: sentences sorted by length, cut into contiguous runs.

    A batch is closed before the next sentence when adding it would take the padded cost ``(max_len + 1) * count``
    above ``batch_tokens`` or above ``1 + max_padding`` times the batch's real positions ``sum(len + 1)``. The
    budget alone leaves wide length ranges in one batch when the input is small against it (a 150-sentence file
    under a 10,000-token budget is one batch padded to its longest sentence, most of it padding); the padding bound
    keeps every batch's waste small, at the price of a few more batches. Deterministic; a sentence over the budget
    is a batch alone; every index appears exactly once.
    """
    _check_batch_tokens(batch_tokens)
    if not max_padding >= 0:
        raise ValueError(f"max_padding must be >= 0, not {max_padding!r}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    batch: list[int] = []
    real = 0
    for i in order:
        width = lengths[i] + 1  # sorted: the longest so far
        padded = width * (len(batch) + 1)
        if batch and (padded > batch_tokens or padded > (1 + max_padding) * (real + width)):
            batches.append(batch)
            batch, real = [], 0
        batch.append(i)
        real += width
    if batch:
        batches.append(batch)
    return batches


def shard_batches(batches: Sequence[Sequence[int]], rank: int, world_size: int) -> list[list[int]]:
    """The batches of process ``rank`` out of ``world_size`` (round-robin: ``batches[rank::world_size]``).

    Shards are disjoint and together hold every batch exactly once.  Nothing is padded or
    repeated: when ``len(batches)`` is not a multiple of ``world_size`` the higher ranks
    get one batch fewer, and a distributed training loop weighs its passes with
    :func:`shard_pass_weights`. Call with the same ``batches`` (same seed) on every rank.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, not {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0..{world_size - 1}, not {rank}")
    return [list(batch) for batch in batches[rank::world_size]]


def shard_pass_weights(n_batches: int, rank: int, world_size: int) -> list[float]:
    """Loss weights of process ``rank``'s passes over its shard of ``n_batches`` (see :func:`shard_batches`).

    Every rank makes ``ceil(n_batches / world_size)`` passes, one more than its shard holds where the shard is one
    batch short; that extra pass has weight 0 (its gradient is zero, but the rank joins the all-reduce). On a pass
    where only ``k < world_size`` ranks have a batch, theirs weigh ``world_size / k``, so that the mean over ranks
    that data-parallel training all-reduces is the mean gradient of the ``k`` batches drawn.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} out of a world of {world_size}")
    passes = -(-n_batches // world_size)
    drawn = [min(world_size, n_batches - i * world_size) for i in range(passes)]
    return [world_size / k if rank < k else 0.0 for k in drawn]
