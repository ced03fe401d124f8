"""The parser's factors on the arc variable Y (§5): the trilinear arc factor, a head bias and arc positions.

``Y`` is [B, N+1, N+1] (``Y[b, h, m]`` for the arc h → m, row and column 0 = ROOT); ``H`` and ``M`` are [B, N+1, d]
head and modifier representations. Like every :class:`~unnparse.engine.Factor`, each sends its message to any of
its variables.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from unnparse.engine.factors import Context, Factor, States, sum_per_instance

__all__ = ["DISTANCE_EDGES", "ArcFactor", "ArcHeadBiasFactor", "ArcPositionFactor", "signed_distance_buckets"]

#: Distance edges of :func:`signed_distance_buckets`: 1, 2, 3, 4, 5-7, 8-15, 16 or more.
DISTANCE_EDGES = (1, 2, 3, 4, 5, 8, 16)


class ArcFactor(Factor):
    """The parser's trilinear factor E = -<Y, H V Mᵀ> (eq. 15, rows as words).

    ``H``, ``M``: [B, N+1, d] head and modifier representations (row 0 is ROOT); ``Y``: [B, N+1, N+1] arc marginals,
    ``Y[b, h, m]`` for the arc h → m. Messages: to Y the biaffine scores ``H V Mᵀ``; to H ``Y M Vᵀ``;
    to M ``Yᵀ H V`` (eq. 19).
    """

    def __init__(self, head: str, modifier: str, arcs: str, dim: int) -> None:
        super().__init__((head, modifier, arcs))
        self.head, self.modifier, self.arcs = head, modifier, arcs
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.xavier_uniform_(self.weight)

    def message(self, target: str, states: States, context: Context | None = None) -> Tensor:
        self._check_target(target)
        V = self.weight
        if target == self.arcs:
            return (states[self.head] @ V) @ states[self.modifier].transpose(-1, -2)
        Y = states[self.arcs]
        if target == self.head:
            return Y @ (states[self.modifier] @ V.transpose(0, 1))
        return Y.transpose(-1, -2) @ (states[self.head] @ V)

    def energy(self, states: States, context: Context | None = None) -> Tensor:
        return -sum_per_instance(states[self.arcs] * self.message(self.arcs, states, context))


class ArcHeadBiasFactor(Factor):
    """E = -Σ_{h,m} Y[h, m] <u, H_h>: the head-only term of a biaffine scorer (how likely a word is to be a head).

    Messages: to Y the score ``H u`` broadcast over dependents; to H the expected number of dependents times u.
    """

    def __init__(self, head: str, arcs: str, dim: int) -> None:
        super().__init__((head, arcs))
        self.head, self.arcs = head, arcs
        self.weight = nn.Parameter(torch.zeros(dim))

    def message(self, target: str, states: States, context: Context | None = None) -> Tensor:
        self._check_target(target)
        if target == self.arcs:
            h = states[self.head] @ self.weight  # [B, N+1]
            return h.unsqueeze(-1).expand(*h.shape, h.shape[-1])
        return states[self.arcs].sum(dim=-1, keepdim=True) * self.weight

    def energy(self, states: States, context: Context | None = None) -> Tensor:
        h = states[self.head] @ self.weight
        return -sum_per_instance(states[self.arcs] * h.unsqueeze(-1))


def signed_distance_buckets(offset: Tensor, edges: Sequence[int] = DISTANCE_EDGES) -> Tensor:
    """Bucket of each integer ``offset``: 0 for 0; ``1..E`` for positive offsets at least ``edges[0]``,
    ``edges[1]``, … (E = ``len(edges)``); ``E+1..2E`` likewise for negative offsets."""
    bounds = torch.tensor(list(edges), device=offset.device)
    size = torch.bucketize(offset.abs(), bounds, right=True)
    return torch.where(offset >= 0, size, size + len(edges)).masked_fill(offset == 0, 0)


class ArcPositionFactor(Factor):
    """E = -Σ_{h,m} Y[h, m] w[b(h, m)]: a learned score for each arc's direction and length.

    ``b(h, m)`` is the :func:`signed_distance_buckets` bucket of ``m - h`` (head to the left: 1..E, to the right:
    E+1..2E), and 0 for the arcs from ROOT (row 0). The factor links Y alone: its message to Y is the same table for
    every instance and does not depend on the other variables.
    """

    def __init__(self, arcs: str, edges: Sequence[int] = DISTANCE_EDGES) -> None:
        super().__init__((arcs,))
        self.arcs = arcs
        self.edges = tuple(edges)
        self.weight = nn.Parameter(torch.zeros(1 + 2 * len(self.edges)))

    def buckets(self, n: int, device: torch.device | None = None) -> Tensor:
        """[n, n] bucket of the arc h → m for ``n`` positions (ROOT at 0)."""
        positions = torch.arange(n, device=device)
        buckets = signed_distance_buckets(positions[None, :] - positions[:, None], self.edges)
        buckets[0] = 0
        return buckets

    def message(self, target: str, states: States, context: Context | None = None) -> Tensor:
        self._check_target(target)
        y = states[self.arcs]
        return self.weight[self.buckets(y.shape[-1], y.device)].to(y.dtype).expand_as(y)

    def energy(self, states: States, context: Context | None = None) -> Tensor:
        return -sum_per_instance(states[self.arcs] * self.message(self.arcs, states, context))
