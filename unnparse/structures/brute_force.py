"""Reference implementations by exhaustive enumeration of trees (small sentences only).

Independent ground truth for tests and benchmarks: every head assignment of the ``n`` words
is enumerated, the ones that form a tree rooted at the artificial ROOT (index 0) are kept
(exactly one ROOT child for ``single_root=True``, at least one otherwise), and all
quantities are computed from the explicit list of trees in float64.  Same convention as
the rest of :mod:`unnparse.structures`: ``scores[h, d]`` is the score of the arc
``h -> d``, words are ``1..n``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["BruteForceTrees", "enumerate_trees", "brute_force"]

MAX_BRUTE_FORCE_LENGTH = 7


@lru_cache(maxsize=32)
def enumerate_trees(n: int, single_root: bool = True) -> np.ndarray:
    """All dependency trees over ``n`` words as a read-only int array ``[num_trees, n + 1]``.

    Row ``t`` holds the heads of tree ``t``: ``trees[t, d]`` is the head of word ``d``
    (``1 <= d <= n``); ``trees[t, 0] = 0``.
    """
    if n < 0 or n > MAX_BRUTE_FORCE_LENGTH:
        raise ValueError(f"brute force supports 0 <= n <= {MAX_BRUTE_FORCE_LENGTH}, got {n}")
    if n == 0:
        empty = np.zeros((1, 1), dtype=np.int64)
        empty.flags.writeable = False
        return empty
    choices = [[h for h in range(n + 1) if h != d] for d in range(1, n + 1)]
    heads = np.array(list(itertools.product(*choices)), dtype=np.int64)
    heads = np.concatenate([np.zeros((heads.shape[0], 1), dtype=np.int64), heads], axis=1)
    # A head assignment is a tree iff following heads from any word reaches ROOT in n steps.
    node = np.broadcast_to(np.arange(n + 1), heads.shape).copy()
    for _ in range(n):
        node = np.take_along_axis(heads, node, axis=1)
    is_tree = (node == 0).all(axis=1)
    n_root = (heads[:, 1:] == 0).sum(axis=1)
    keep = is_tree & ((n_root == 1) if single_root else (n_root >= 1))
    trees = heads[keep]
    trees.flags.writeable = False
    return trees


@dataclass
class BruteForceTrees:
    """Exact quantities of one sentence's tree distribution (float64)."""

    log_partition: float
    marginals: np.ndarray  # [n + 1, n + 1], marginals[h, d] = P(h -> d)
    entropy: float
    best_score: float
    best_heads: np.ndarray  # [n + 1]
    tree_scores: np.ndarray  # [num_trees]
    trees: np.ndarray  # [num_trees, n + 1]
    scores: np.ndarray  # [n + 1, n + 1], the arc scores (float64)

    def score(self, heads: np.ndarray) -> float:
        """Score of the tree given by ``heads`` (``heads[d]`` = head of word ``d``)."""
        n = self.scores.shape[0] - 1
        return float(self.scores[np.asarray(heads)[1 : n + 1], np.arange(1, n + 1)].sum())


def brute_force(scores: np.ndarray, single_root: bool = True) -> BruteForceTrees:
    """Exact log-partition, marginals, entropy and best tree of one sentence.

    ``scores``: ``[n + 1, n + 1]`` array, ``scores[h, d]`` = score of arc ``h -> d``.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"scores must have shape [n + 1, n + 1], got {tuple(s.shape)}")
    n = s.shape[0] - 1
    trees = enumerate_trees(n, single_root)
    cols = np.arange(1, n + 1)
    tree_scores = s[trees[:, 1:], cols].sum(axis=1) if n > 0 else np.zeros(1)
    m = tree_scores.max()
    w = np.exp(tree_scores - m)
    log_z = float(m + np.log(w.sum()))
    p = w / w.sum()
    marg = np.zeros((n + 1, n + 1))
    for d in range(1, n + 1):
        np.add.at(marg[:, d], trees[:, d], p)
    entropy = float(-(p * np.where(p > 0, tree_scores - log_z, 0.0)).sum())
    best = int(np.argmax(tree_scores))
    return BruteForceTrees(
        log_partition=log_z,
        marginals=marg,
        entropy=entropy,
        best_score=float(tree_scores[best]),
        best_heads=trees[best].copy(),
        tree_scores=tree_scores,
        trees=trees,
        scores=s,
    )
