"""A small distribution object over non-projective dependency trees."""

from __future__ import annotations

from functools import cached_property

import torch

from .decoding import max_spanning_tree
from .matrix_tree import _arc_marginals64, _gold_score64

__all__ = ["DependencyTreeDistribution"]


class DependencyTreeDistribution:
    """``p(tree) ∝ exp(sum of arc scores)`` over the non-projective trees of each sentence.

    Same convention as the functions of :mod:`unnparse.structures`: ``scores[b, h, d]`` is
    the score of arc ``h -> d`` (``[B, N+1, N+1]``, index 0 = ROOT), ``lengths[b]`` the
    number of words, ``single_root`` requires exactly one ROOT child.  The matrix-tree
    computation runs once (lazily) and is shared by :attr:`log_partition`,
    :attr:`marginals`, :attr:`entropy` and :meth:`log_prob`; results are in the dtype of
    ``scores`` and differentiable, except :attr:`argmax`.

    Example::

        dist = DependencyTreeDistribution(scores, lengths)
        loss = -dist.log_prob(gold_heads).mean()
        heads = dist.argmax
    """

    def __init__(self, scores: torch.Tensor, lengths: torch.Tensor, single_root: bool = True) -> None:
        self.scores = scores
        self.lengths = lengths
        self.single_root = bool(single_root)

    @cached_property
    def _computed(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return _arc_marginals64(self.scores, self.lengths, self.single_root)

    @property
    def log_partition(self) -> torch.Tensor:
        """``log Z`` per sentence, ``[B]``."""
        return self._computed[0].to(self.scores.dtype)

    @property
    def marginals(self) -> torch.Tensor:
        """Arc marginals ``[B, N+1, N+1]``: ``marginals[b, h, d] = P(h -> d)``."""
        return self._computed[1].to(self.scores.dtype)

    @cached_property
    def argmax(self) -> torch.Tensor:
        """Highest-scoring tree, ``heads [B, N+1]`` (``heads[b, d]`` = head of word ``d``)."""
        return max_spanning_tree(self.scores, self.lengths, self.single_root)

    @property
    def entropy(self) -> torch.Tensor:
        """Entropy of the tree distribution (nats), ``[B]``."""
        log_z, mu, s64, _ = self._computed
        return (log_z - (s64 * mu).sum(dim=(1, 2))).to(self.scores.dtype)

    def log_prob(self, heads: torch.Tensor) -> torch.Tensor:
        """Log-probability ``[B]`` of the trees ``heads [B, N+1]``."""
        gold = _gold_score64(self.scores, heads, self.lengths)
        return (gold - self._computed[0]).to(self.scores.dtype)
