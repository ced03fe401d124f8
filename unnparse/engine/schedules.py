"""Update schedules: which variable is updated when, sweep after sweep.

A schedule yields, for sweep t = 0, 1, ..., the ordered list of variables to update. Any order is a valid block
coordinate descent: the energy never increases, whatever the schedule (paper §2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["FixedOrder", "GroupedOrder", "RandomPermutation", "Schedule", "forward_backward"]


class Schedule:
    """Base class: ``sweep(t, generator)`` returns the update order of sweep ``t``."""

    def sweep(self, index: int, generator: torch.Generator | None = None) -> list[str]:
        raise NotImplementedError

    def steps(self, index: int, generator: torch.Generator | None = None) -> list[tuple[str, ...]]:
        """The updates of sweep ``index`` as steps: the variables of one step are all computed from the state
        before it (a Jacobi step), the steps one after the other. By default every step is one variable."""
        return [(name,) for name in self.sweep(index, generator)]

    @property
    def variables(self) -> set[str]:
        """Every variable this schedule may update."""
        raise NotImplementedError


class FixedOrder(Schedule):
    """The same order in every sweep."""

    def __init__(self, order: Sequence[str]) -> None:
        if not order:
            raise ValueError("a schedule needs at least one variable")
        self.order = list(order)

    def sweep(self, index: int, generator: torch.Generator | None = None) -> list[str]:
        return list(self.order)

    @property
    def variables(self) -> set[str]:
        return set(self.order)

    def __repr__(self) -> str:
        return f"FixedOrder({', '.join(self.order)})"


def forward_backward(order: Sequence[str], tail: Sequence[str] = ()) -> FixedOrder:
    """The "forward-backward" order: ``order`` then back again, then ``tail``.

    ``forward_backward("QKVSH", tail=["X"])`` is Q, K, V, S, H, S, V, K, Q, X (§4). (The MNIST model's sweep
    H1, H2, Y, H2 of §3 stops before H1, since the next sweep starts with it: declare it as a :class:`FixedOrder`.)
    """
    order = list(order)
    return FixedOrder(order + order[-2::-1] + list(tail))


class RandomPermutation(Schedule):
    """A fresh random permutation of ``variables`` in every sweep, followed by ``tail`` (App. B)."""

    def __init__(self, variables: Sequence[str], tail: Sequence[str] = ()) -> None:
        if not variables:
            raise ValueError("a schedule needs at least one variable")
        self.names = list(variables)
        self.tail = list(tail)

    def sweep(self, index: int, generator: torch.Generator | None = None) -> list[str]:
        perm = torch.randperm(len(self.names), generator=generator).tolist()
        return [self.names[i] for i in perm] + self.tail

    @property
    def variables(self) -> set[str]:
        return set(self.names) | set(self.tail)

    def __repr__(self) -> str:
        return f"RandomPermutation({', '.join(self.names)}; then {', '.join(self.tail)})"


class GroupedOrder(Schedule):
    """The same steps in every sweep, where a step of several variables updates them all from the state before the
    step (a Jacobi step: ``GroupedOrder([("H", "M"), "Y"])`` computes M from the H of the previous sweep, not the
    new one).

    Updating coupled variables at once is not block coordinate descent on their union: the energy can rise, which
    sequential updates never let it do. It is here to reproduce implementations that update that way.
    """

    def __init__(self, steps: Sequence[str | Sequence[str]]) -> None:
        if not steps:
            raise ValueError("a schedule needs at least one variable")
        self.groups = [(step,) if isinstance(step, str) else tuple(step) for step in steps]
        names = [name for group in self.groups for name in group]
        if not all(self.groups) or len(set(names)) != len(names):
            raise ValueError(f"every step names at least one variable, and no variable twice in a sweep: {steps!r}")

    def sweep(self, index: int, generator: torch.Generator | None = None) -> list[str]:
        return [name for group in self.groups for name in group]

    def steps(self, index: int, generator: torch.Generator | None = None) -> list[tuple[str, ...]]:
        return list(self.groups)

    @property
    def variables(self) -> set[str]:
        return {name for group in self.groups for name in group}

    def __repr__(self) -> str:
        return "GroupedOrder(" + ", ".join("{" + ", ".join(g) + "}" if len(g) > 1 else g[0] for g in self.groups) + ")"
