"""Multilinear factors of UNNs: energies and the messages they send to each of their variables.

A factor f linking variables x_1..x_m has the energy E_f = -<W_f, x_1 ⊗ ... ⊗ x_m> (paper eq. 3). Its message to
x_i is the pre-activation contribution ρ_i(W_f) ⊗_{j≠i} x_j of eq. 22, which equals -∂E_f/∂x_i: the block update of
x_i is ∇Ψ*(bias + Σ messages). Every factor here can send its message to ANY of its variables given the others, so
the same graph runs in any order and direction.

Shapes: every state has a leading batch dimension. Vector variables may carry further leading dimensions
(e.g. [B, n, d] for a sequence of d-dimensional vectors); the factor acts on the trailing feature dimensions.

The factors here know no task: dense maps (:class:`Contraction`, :class:`Bilinear`) and 2-d convolutions
(:class:`Conv2dFactor`). A task's own factors subclass :class:`Factor` in the task's package (the parser's arc
factors in :mod:`unnparse.parser.factors`, the attention factors in :mod:`unnparse.seqcomplete.factors`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Bilinear", "Context", "Contraction", "Conv2dFactor", "Factor", "States", "sum_per_instance"]

States = Mapping[str, Tensor]
Context = Mapping[str, Any]


def sum_per_instance(x: Tensor) -> Tensor:
    """Sum over every dimension but the first (the batch): a factor's energy per instance, shape [B]."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


class Factor(nn.Module):
    """Base class of higher-order factors. Subclasses define :meth:`message` and :meth:`energy`."""

    def __init__(self, variables: Sequence[str]) -> None:
        super().__init__()
        if len(set(variables)) != len(variables):
            raise ValueError(f"a factor links distinct variables, got {tuple(variables)}")
        self.variables: tuple[str, ...] = tuple(variables)

    def message(self, target: str, states: States, context: Context | None = None) -> Tensor:
        """Pre-activation contribution to ``target`` given the states of the other variables (= -∂E_f/∂target)."""
        raise NotImplementedError

    def energy(self, states: States, context: Context | None = None) -> Tensor:
        """E_f per instance, shape [B]."""
        raise NotImplementedError

    def _check_target(self, target: str) -> None:
        if target not in self.variables:
            raise KeyError(f"{type(self).__name__} links {self.variables}, not {target!r}")

    def extra_repr(self) -> str:
        return "variables=" + ", ".join(self.variables)


class Contraction(Factor):
    """E = -<W, x_out ⊗ x_in> with W of shape ``out_shape + in_shape``: a dense linear map and its adjoint.

    The message to ``out`` is the tensor contraction W·x_in (e.g. ``torch.tensordot(V, H2, dims=3)`` in App. F);
    the message to ``in`` contracts W with x_out over the ``out`` axes (σ_y(V) y, the "rolled" transpose).
    With ``input_offset_key``, ``context[key]`` (e.g. positional encodings P) is added to x_in inside the factor:
    E = -<x_out, W (x_in + P)>, as in the XQ/XK/XV factors of eq. 13.
    """

    def __init__(
        self,
        inp: str,
        out: str,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        *,
        input_offset_key: str | None = None,
    ) -> None:
        super().__init__((inp, out))
        self.inp, self.out = inp, out
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = tuple(int(s) for s in out_shape)
        self.input_offset_key = input_offset_key
        n_in, n_out = math.prod(self.in_shape), math.prod(self.out_shape)
        self.weight = nn.Parameter(torch.empty(*self.out_shape, *self.in_shape))
        nn.init.kaiming_uniform_(self.weight.view(n_out, n_in), a=math.sqrt(5))

    def _matrix(self) -> Tensor:
        return self.weight.reshape(math.prod(self.out_shape), math.prod(self.in_shape))

    def _input(self, states: States, context: Context | None) -> Tensor:
        x = states[self.inp]
        if self.input_offset_key is not None:
            if context is None or self.input_offset_key not in context:
                raise KeyError(f"factor {self.inp}-{self.out} needs context[{self.input_offset_key!r}]")
            x = x + context[self.input_offset_key]
        return x

    def message(self, target: str, states: States, context: Context | None = None) -> Tensor:
        self._check_target(target)
        if target == self.out:
            x = self._input(states, context)
            lead = x.shape[: x.dim() - len(self.in_shape)]
            y = F.linear(x.reshape(*lead, -1), self._matrix())
            return y.reshape(*lead, *self.out_shape)
        y = states[self.out]
        lead = y.shape[: y.dim() - len(self.out_shape)]
        x = y.reshape(*lead, -1) @ self._matrix()
        return x.reshape(*lead, *self.in_shape)

    def energy(self, states: States, context: Context | None = None) -> Tensor:
        return -sum_per_instance(states[self.out] * self.message(self.out, states, context))

    def extra_repr(self) -> str:
        return f"{self.inp} {self.in_shape} -> {self.out} {self.out_shape}"


class Bilinear(Contraction):
    """E = -<x_out, W x_in> between vector variables: message W x_in to ``out`` and Wᵀ x_out to ``in`` (eq. 8)."""

    def __init__(self, inp: str, out: str, in_dim: int, out_dim: int, *, input_offset_key: str | None = None):
        super().__init__(inp, out, (in_dim,), (out_dim,), input_offset_key=input_offset_key)


class Conv2dFactor(Factor):
    """E = -<x_out, C(x_in; W)> with C a 2-d cross-correlation (App. F, eq. 24).

    Message to ``out``: ``conv2d(x_in)``; to ``in``: the adjoint ``conv_transpose2d(x_out)`` with the same filters,
    sized to the input's spatial shape (taken from ``in_size``).
    """

    def __init__(
        self,
        inp: str,
        out: str,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        in_size: tuple[int, int],
    ) -> None:
        super().__init__((inp, out))
        self.inp, self.out = inp, out
        self.stride, self.padding, self.kernel_size = stride, padding, kernel_size
        self.in_size = tuple(in_size)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    @property
    def out_size(self) -> tuple[int, int]:
        """Spatial size of the output variable."""
        k, s, p = self.kernel_size, self.stride, self.padding
        return tuple((n + 2 * p - k) // s + 1 for n in self.in_size)  # type: ignore[return-value]

    def message(self, target: str, states: States, context: Context | None = None) -> Tensor:
        self._check_target(target)
        if target == self.out:
            return F.conv2d(states[self.inp], self.weight, stride=self.stride, padding=self.padding)
        y = states[self.out]
        k, s, p = self.kernel_size, self.stride, self.padding
        extra = [n - ((m - 1) * s - 2 * p + k) for n, m in zip(self.in_size, y.shape[-2:], strict=True)]
        return F.conv_transpose2d(y, self.weight, stride=s, padding=p, output_padding=tuple(extra))

    def energy(self, states: States, context: Context | None = None) -> Tensor:
        return -sum_per_instance(states[self.out] * self.message(self.out, states, context))
