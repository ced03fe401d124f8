"""Unary regularizers Ψ of UNN variables and their activations ∇Ψ* (paper Table 1 and §5).

Every variable X of a UNN has the unary energy ``E_X(x) = -<b, x> + Ψ(x)`` with Ψ strictly convex. The block update of
X is ``x* = ∇Ψ*(z)`` where ``z`` is the pre-activation (bias plus the messages of the factors touching X; Lemma 1).
Each regularizer here provides

* :meth:`Regularizer.activate` — ∇Ψ*(z), the exact block minimizer, as an :class:`Activation`: the new state and,
  for a regularizer whose activation computes one on the way, an auxiliary output (the log-partition of a
  structured distribution, which the loss reuses);
* :meth:`Regularizer.value` — Ψ(x) summed over all but the batch dimension, for the energy.

:meth:`Regularizer.activation` is the state alone.

The ``context`` mapping carries per-call data such as sentence lengths or attention masks, looked up under a key
chosen when the regularizer is built. A regularizer itself holds no parameters and no state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from unnparse.engine.factors import sum_per_instance

Context = Mapping[str, Any]

__all__ = [
    "Activation",
    "Context",
    "NonNegativeSquaredNorm",
    "Regularizer",
    "SigmoidEntropy",
    "SoftmaxEntropy",
    "SquaredNorm",
    "TanhEntropy",
    "TreeEntropy",
]


def _xlogx(x: Tensor) -> Tensor:
    """``x log x`` with the convention ``0 log 0 = 0``."""
    return torch.where(x > 0, x * torch.log(x.clamp_min(torch.finfo(x.dtype).tiny)), torch.zeros_like(x))


def _outside(x: Tensor, bad: Tensor) -> Tensor:
    """Per-instance +inf where any element violates the domain, else 0."""
    count = sum_per_instance(bad.to(x.dtype))
    return torch.where(count > 0, torch.full_like(count, math.inf), torch.zeros_like(count))


@dataclass(frozen=True)
class Activation:
    """What a block update computes: the new ``state`` ∇Ψ*(z) and an optional auxiliary output ``aux`` (same
    batch dimension), such as the log-partition log Z(z) [B] of :class:`TreeEntropy`; None when there is none."""

    state: Tensor
    aux: Tensor | None = None


class Regularizer:
    """Base class: a strictly convex Ψ with its activation ∇Ψ*. Subclasses define :meth:`activate` and
    :meth:`value`."""

    #: whether Ψ is differentiable in the interior of its domain (False for constrained/structured ones)
    smooth: bool = True
    #: whether :meth:`value` needs the pre-activation that produced the state (a state between two activations,
    #: such as a damped update, then has no value)
    needs_preactivation: bool = False

    def activate(self, z: Tensor, context: Context | None = None) -> Activation:
        """∇Ψ*(z), the unique maximizer of <x, z> - Ψ(x), with the auxiliary output of its computation."""
        raise NotImplementedError

    def activation(self, z: Tensor, context: Context | None = None) -> Tensor:
        """∇Ψ*(z) alone: the state of :meth:`activate`."""
        return self.activate(z, context).state

    def value(self, x: Tensor, context: Context | None = None, preactivation: Tensor | None = None) -> Tensor:
        """Ψ(x) per instance (shape [B]); +inf outside the domain."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SquaredNorm(Regularizer):
    """Ψ(x) = ½‖x‖²; activation: identity."""

    def activate(self, z: Tensor, context: Context | None = None) -> Activation:
        return Activation(z)

    def value(self, x: Tensor, context: Context | None = None, preactivation: Tensor | None = None) -> Tensor:
        return 0.5 * sum_per_instance(x * x)


class NonNegativeSquaredNorm(Regularizer):
    """Ψ(x) = ½‖x‖² + ι_{x ≥ 0}; activation: relu."""

    smooth = False

    def activate(self, z: Tensor, context: Context | None = None) -> Activation:
        return Activation(torch.relu(z))

    def value(self, x: Tensor, context: Context | None = None, preactivation: Tensor | None = None) -> Tensor:
        return 0.5 * sum_per_instance(x * x) + _outside(x, x < 0)


class TanhEntropy(Regularizer):
    """Ψ(x) = Σ φ((1+x)/2) + φ((1-x)/2) + ι_{[-1,1]}, φ(t) = t log t; activation: tanh."""

    def activate(self, z: Tensor, context: Context | None = None) -> Activation:
        return Activation(torch.tanh(z))

    def value(self, x: Tensor, context: Context | None = None, preactivation: Tensor | None = None) -> Tensor:
        inside = sum_per_instance(_xlogx((1 + x) / 2) + _xlogx((1 - x) / 2))
        return inside + _outside(x, x.abs() > 1)


class SigmoidEntropy(Regularizer):
    """Ψ(x) = Σ φ(x) + φ(1-x) + ι_{[0,1]}; activation: sigmoid."""

    def activate(self, z: Tensor, context: Context | None = None) -> Activation:
        return Activation(torch.sigmoid(z))

    def value(self, x: Tensor, context: Context | None = None, preactivation: Tensor | None = None) -> Tensor:
        inside = sum_per_instance(_xlogx(x) + _xlogx(1 - x))
        return inside + _outside(x, (x < 0) | (x > 1))


class SoftmaxEntropy(Regularizer):
    """Ψ(x) = scale · Σ x log x on the simplex along ``dim`` (i.e. −scale·H); activation: softmax(z / scale).

    ``scale = sqrt(d)`` gives the attention variable S of §4 (eq. 14). With ``mask_key``, ``context[mask_key]`` is a
    boolean tensor broadcastable to x: False entries are outside the support (probability 0), as for padded keys.
    """

    def __init__(self, dim: int = -1, scale: float = 1.0, mask_key: str | None = None) -> None:
        if scale <= 0:
            raise ValueError(f"SoftmaxEntropy scale must be positive, got {scale}")
        self.dim = dim
        self.scale = float(scale)
        self.mask_key = mask_key

    def _mask(self, context: Context | None) -> Tensor | None:
        if self.mask_key is None:
            return None
        if context is None or self.mask_key not in context:
            raise KeyError(f"SoftmaxEntropy needs context[{self.mask_key!r}]")
        return context[self.mask_key]

    def activate(self, z: Tensor, context: Context | None = None) -> Activation:
        mask = self._mask(context)
        logits = z / self.scale
        if mask is not None:
            logits = logits.masked_fill(~mask, -math.inf)
        probs = torch.softmax(logits, dim=self.dim)
        if mask is not None:
            probs = torch.nan_to_num(probs, nan=0.0)  # rows with an empty support stay 0
        return Activation(probs)

    def value(self, x: Tensor, context: Context | None = None, preactivation: Tensor | None = None) -> Tensor:
        mask = self._mask(context)
        total = x.sum(dim=self.dim, keepdim=True)
        bad = (x < 0) | ((total - 1).abs() > 1e-4)
        if mask is not None:
            bad = bad | ((~mask) & (x != 0))
            # rows whose support is empty must be all zero and then contribute nothing
            empty = ~mask.any(dim=self.dim, keepdim=True)
            bad = bad & ~(empty & (x == 0))
        return self.scale * sum_per_instance(_xlogx(x)) + _outside(x, bad)

    def __repr__(self) -> str:
        return f"SoftmaxEntropy(dim={self.dim}, scale={self.scale:g}, mask_key={self.mask_key!r})"


class TreeEntropy(Regularizer):
    """Ψ(Y) = −H_M(Y) + ι_M(Y) on the marginal polytope of dependency trees (§5, eq. 17–18).

    The activation maps arc scores ``z`` of shape [B, N+1, N+1] (``z[b, h, d]``: head h → dependent d, index 0 =
    ROOT) to the arc marginals of p(tree) ∝ exp(<z, tree>), computed by the matrix-tree theorem;
    ``context[lengths_key]`` holds the number of words per sentence. ``single_root`` follows UD.

    Ψ has no closed form at an arbitrary point of M; at the image of the activation it is known through the Fenchel
    identity Ψ(∇Ψ*(z)) = <z, Y> − log Z(z), so :meth:`value` requires the pre-activation that produced Y (a state
    that does not match it, such as the all-zero start, counts as +inf).
    """

    smooth = False
    needs_preactivation = True

    def __init__(self, lengths_key: str = "lengths", single_root: bool = True) -> None:
        self.lengths_key = lengths_key
        self.single_root = single_root

    def _lengths(self, context: Context | None) -> Tensor:
        if context is None or self.lengths_key not in context:
            raise KeyError(f"TreeEntropy needs context[{self.lengths_key!r}] (words per sentence)")
        return context[self.lengths_key]

    def activate(self, z: Tensor, context: Context | None = None) -> Activation:
        """The arc marginals, with the log-partition [B] as ``aux``: one matrix-tree computation serves the update
        and the loss (footnote 3)."""
        log_z, marginals = self.log_partition_and_marginals(z, context)
        return Activation(marginals, log_z)

    def log_partition_and_marginals(self, z: Tensor, context: Context | None = None) -> tuple[Tensor, Tensor]:
        """Both outputs of the matrix-tree computation: log Z(z) [B] and the marginals [B, N+1, N+1]."""
        from unnparse.structures import arc_marginals

        return arc_marginals(z, self._lengths(context), single_root=self.single_root)

    def value(self, x: Tensor, context: Context | None = None, preactivation: Tensor | None = None) -> Tensor:
        if preactivation is None:
            raise ValueError(
                "TreeEntropy.value needs the pre-activation that produced the marginals "
                "(Ψ = <z, Y> - log Z(z) on the image of the activation)"
            )
        log_z, marginals = self.log_partition_and_marginals(preactivation, context)
        valid = marginals != 0
        inner = sum_per_instance(torch.where(valid, preactivation * x, torch.zeros_like(x)))
        # a state that is not the image of its pre-activation (e.g. the all-zero start) is taken as outside M
        mismatch = (marginals.to(x.dtype) - x).abs() > 1e-5 + 1e-4 * x.abs()
        return inner - log_z.to(x.dtype) + _outside(x, mismatch)

    def __repr__(self) -> str:
        return f"TreeEntropy(lengths_key={self.lengths_key!r}, single_root={self.single_root})"
