"""The factors of undirected self-attention (paper eq. 13): scores S from queries and keys, output H from S and
values. Neither has parameters; Q, K, V come from X through :class:`~unnparse.engine.Bilinear` factors.

Shapes: Q, K, V, H are [B, n, d]; S is [B, n, n] (rows: queries i, columns: keys j).
"""

from __future__ import annotations

from torch import Tensor

from unnparse.engine.factors import Context, Factor, States, sum_per_instance

__all__ = ["AttentionScoreFactor", "AttentionValueFactor"]


class AttentionScoreFactor(Factor):
    """E = -<S, Q Kᵀ> (eq. 13): messages Q Kᵀ to S, S K to Q, Sᵀ Q to K. No parameters."""

    def __init__(self, query: str, key: str, weights: str) -> None:
        super().__init__((query, key, weights))
        self.query, self.key, self.weights = query, key, weights

    def message(self, target: str, states: States, context: Context | None = None) -> Tensor:
        self._check_target(target)
        if target == self.weights:
            return states[self.query] @ states[self.key].transpose(-1, -2)
        S = states[self.weights]
        if target == self.query:
            return S @ states[self.key]
        return S.transpose(-1, -2) @ states[self.query]

    def energy(self, states: States, context: Context | None = None) -> Tensor:
        return -sum_per_instance(states[self.weights] * self.message(self.weights, states, context))


class AttentionValueFactor(Factor):
    """E = -<H, S V> (eq. 13): messages S V to H, H Vᵀ to S, Sᵀ H to V. No parameters.

    The message to S, ∂<H, S V>/∂S = H Vᵀ (rows: queries i, columns: keys j), is what eq. 14 writes as V Hᵀ in the
    paper's column-vector convention.
    """

    def __init__(self, weights: str, value: str, output: str) -> None:
        super().__init__((weights, value, output))
        self.weights, self.value, self.output = weights, value, output

    def message(self, target: str, states: States, context: Context | None = None) -> Tensor:
        self._check_target(target)
        if target == self.output:
            return states[self.weights] @ states[self.value]
        H = states[self.output]
        if target == self.weights:
            return H @ states[self.value].transpose(-1, -2)
        return states[self.weights].transpose(-1, -2) @ H

    def energy(self, states: States, context: Context | None = None) -> Tensor:
        return -sum_per_instance(states[self.output] * self.message(self.output, states, context))
