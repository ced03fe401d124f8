"""The UNN itself: variables, factors, the total energy and unrolled block coordinate descent.

A model is declared as a list of :class:`Variable` (each with a regularizer Ψ and an optional learned bias) and a
list of :class:`~unnparse.engine.factors.Factor` (or a mapping from names to factors, to address them by name).
:meth:`UNN.infer` runs k sweeps of a :class:`~unnparse.engine.schedules.Schedule`, updating one block at a time with
x* = ∇Ψ*(z) (Lemma 1), as its regularizer's :meth:`~unnparse.engine.regularizers.Regularizer.activate` computes it.
The loop is plain PyTorch, so gradients flow through all unrolled sweeps and the parameters are tied across them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from unnparse.devices import host_to_device
from unnparse.engine.dropout import dropout_mask
from unnparse.engine.factors import Factor
from unnparse.engine.regularizers import Regularizer
from unnparse.engine.schedules import Schedule

__all__ = ["Inference", "InitMode", "MessageCache", "TraceStep", "UNN", "Variable"]

InitMode = Literal["zero", "uniform", "random"]
Context = Mapping[str, Any]


@dataclass(frozen=True)
class Variable:
    """Declaration of a UNN variable.

    Args:
        name: unique name, used by factors and schedules.
        regularizer: Ψ, which fixes the activation ∇Ψ*.
        bias_shape: shape of a learned bias b (broadcast against the state, e.g. ``(32, 1, 1)`` for per-filter
            biases of a conv layer or ``(d,)`` for a sequence of d-vectors); None for no bias.
        mask_key: ``context[mask_key]``, a boolean tensor broadcastable to the state; entries where it is False are
            fixed at 0 (padding). Equivalent to adding the indicator of that subspace to Ψ.
        clamp_key: ``context[clamp_key]``, a boolean tensor broadcastable to the state; True entries are observed
            and keep their current value during updates (e.g. the unmasked items of a sequence to complete).
        dropout: probability of dropping an entry after each update, with ONE mask per forward pass reused in
            every sweep (§5), so that dropped values do not leak through later sweeps. Active in training mode.
    """

    name: str
    regularizer: Regularizer
    bias_shape: tuple[int, ...] | None = None
    mask_key: str | None = None
    clamp_key: str | None = None
    dropout: float = 0.0


@dataclass
class TraceStep:
    """One block update in a trace: the sweep, the variable, the energy after the update, optionally the state."""

    sweep: int
    variable: str
    energy: Tensor | None
    state: Tensor | None = None


@dataclass
class Inference:
    """Result of :meth:`UNN.infer`."""

    states: dict[str, Tensor]
    #: the last pre-activation z of each updated (or initialized) variable
    preactivations: dict[str, Tensor]
    #: per-variable auxiliary outputs of the last update (:attr:`Activation.aux`, e.g. the log-partition of a
    #: tree variable); only for the variables whose regularizer gives one
    aux: dict[str, Tensor] = field(default_factory=dict)
    trace: list[TraceStep] = field(default_factory=list)


class UNN(nn.Module):
    """A factor graph with multilinear factors and convex unaries, run by block coordinate descent.

    ``factors`` is a sequence, or a mapping from names to factors: :meth:`factor` then finds one by its name. Either
    way :attr:`factors` lists them in the given order (their parameters are ``factors.<i>.*`` in the state dict).
    """

    def __init__(self, variables: Sequence[Variable], factors: Sequence[Factor] | Mapping[str, Factor]) -> None:
        super().__init__()
        names = [v.name for v in variables]
        if len(set(names)) != len(names):
            raise ValueError(f"variable names must be unique, got {names}")
        self.variables: dict[str, Variable] = {v.name: v for v in variables}
        factor_names: list[str] = []
        if isinstance(factors, Mapping):
            factor_names, factors = list(factors), list(factors.values())
        self.factors = nn.ModuleList(factors)
        self._factor_index: dict[str, int] = {n: i for i, n in enumerate(factor_names)}
        self.biases = nn.ParameterDict(
            {v.name: nn.Parameter(torch.zeros(v.bias_shape)) for v in variables if v.bias_shape is not None}
        )
        self._neighbors: dict[str, list[Factor]] = {n: [] for n in names}
        for f in factors:
            for n in f.variables:
                if n not in self._neighbors:
                    raise ValueError(f"factor {type(f).__name__} links unknown variable {n!r}; known: {names}")
                self._neighbors[n].append(f)

    @property
    def factor_names(self) -> tuple[str, ...]:
        """The names of the factors, in order (empty when they were given as a sequence)."""
        return tuple(self._factor_index)

    def factor(self, name: str) -> Factor:
        """The factor declared under ``name``."""
        if name not in self._factor_index:
            raise KeyError(f"no factor named {name!r}; named: {list(self._factor_index)}")
        return self.factors[self._factor_index[name]]  # type: ignore[return-value]

    # ------------------------------------------------------------------ updates
    def preactivation(
        self,
        name: str,
        states: Mapping[str, Tensor],
        context: Context | None = None,
        *,
        messages: MessageCache | None = None,
    ) -> Tensor:
        """z = b + Σ_f message_f→name (eq. 22); requires every neighbour's state.

        With ``messages`` (what :meth:`infer` keeps), a factor's message is computed again only when one of the
        other variables it links has changed since it was last computed.
        """
        z: Tensor | None = None
        for f in self._neighbors[name]:
            m = f.message(name, states, context) if messages is None else messages.get(f, name, states, context)
            z = m if z is None else z + m
        if name in self.biases:
            b = self.biases[name]
            z = b.expand_as(states[name]) if z is None else z + b
        if z is None:
            z = torch.zeros_like(states[name])
        return z

    def messages_into(
        self, name: str, states: Mapping[str, Tensor], context: Context | None = None
    ) -> dict[str, Tensor]:
        """Each named factor's message into ``name`` at ``states`` (the terms of :meth:`preactivation` without the
        bias), by factor name; for looking at what drives a variable."""
        by_factor = {id(self.factors[i]): n for n, i in self._factor_index.items()}
        return {by_factor.get(id(f), type(f).__name__): f.message(name, states, context) for f in self._neighbors[name]}

    def _finish(self, var: Variable, new: Tensor, old: Tensor | None, context: Context | None) -> Tensor:
        if var.mask_key is not None:
            new = new * _lookup(context, var.mask_key, var.name).to(new.dtype)
        if var.clamp_key is not None and old is not None:
            new = torch.where(_lookup(context, var.clamp_key, var.name), old, new)
        return new

    def update(
        self,
        name: str,
        states: Mapping[str, Tensor],
        context: Context | None = None,
        *,
        messages: MessageCache | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """The exact block minimizer of the energy in ``name``: returns (new state, pre-activation, aux), ``aux``
        the regularizer's auxiliary output (:attr:`Activation.aux`, None for most)."""
        var = self.variables[name]
        z = self.preactivation(name, states, context, messages=messages)
        act = var.regularizer.activate(z, context)
        return self._finish(var, act.state, states.get(name), context), z, act.aux

    # ------------------------------------------------------------------ states
    def initial_state(
        self,
        name: str,
        shape: Sequence[int],
        mode: InitMode = "zero",
        *,
        context: Context | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """An initial state and the pre-activation it corresponds to.

        ``zero``: all zeros (feed-forward equivalence with k=1); ``uniform``: ∇Ψ*(0) (uniform distribution for
        softmax and tree variables); ``random``: ∇Ψ*(u), u ~ U[0, 1) (App. C).
        """
        var = self.variables[name]
        z = torch.zeros(tuple(shape), dtype=dtype, device=device)
        if mode == "zero":
            state = z
        elif mode in ("uniform", "random"):
            if mode == "random":
                z = host_to_device(torch.rand(tuple(shape), generator=generator, dtype=dtype, device="cpu"), z.device)
            state = var.regularizer.activation(z, context)
        else:
            raise ValueError(f"unknown init mode {mode!r}; use zero, uniform or random")
        return self._finish(var, state, None, context), z

    # ------------------------------------------------------------------ energy
    def energy(
        self,
        states: Mapping[str, Tensor],
        context: Context | None = None,
        preactivations: Mapping[str, Tensor] | None = None,
        *,
        include: Iterable[str] | None = None,
    ) -> Tensor:
        """Total energy E(x) = Σ_X (-<b_X, x> + Ψ_X(x)) + Σ_f E_f(x_f), per instance ([B]).

        ``include`` restricts the unary terms to some variables (e.g. leave out observed inputs whose Ψ is
        irrelevant); the factor terms are always all included. Tree variables need their pre-activation.
        """
        names = list(self.variables) if include is None else list(include)
        total: Tensor | None = None
        for n in names:
            var, x = self.variables[n], states[n]
            pre = None if preactivations is None else preactivations.get(n)
            term = var.regularizer.value(x, context, pre)
            if n in self.biases:
                term = term - (self.biases[n].expand_as(x) * x).reshape(x.shape[0], -1).sum(1)
            total = term if total is None else total + term
        for f in self.factors:
            e = f.energy(states, context)
            total = e if total is None else total + e
        assert total is not None
        return total

    # ------------------------------------------------------------------ inference
    def infer(
        self,
        states: Mapping[str, Tensor],
        schedule: Schedule,
        sweeps: int,
        *,
        context: Context | None = None,
        preactivations: Mapping[str, Tensor] | None = None,
        generator: torch.Generator | None = None,
        trace: bool = False,
        trace_states: bool = False,
        activate_last: bool = True,
        reuse_messages: bool = True,
        damping: Mapping[str, float] | None = None,
    ) -> Inference:
        """Run ``sweeps`` sweeps of block coordinate descent from ``states``.

        ``states`` must hold a tensor for every variable: observed variables are those never named by the
        schedule (they stay fixed); the others start from the given values (see :meth:`initial_state`).
        Dropout masks (training mode only) are drawn once here and reused in every sweep; they come from
        ``generator`` when it lives on the states' device, else from the global generator.
        With ``trace``, the energy after every update is recorded (one energy evaluation per update); with
        ``trace_states``, the state after every update (no energy is computed unless ``trace`` is also set).
        With ``activate_last=False`` the very last update of the run computes only its pre-activation (in
        ``preactivations``) and leaves that variable's state as it was: nothing reads the new state, so callers that
        need only the final scores (tree decoding) skip its activation, e.g. a matrix-tree computation.
        With ``reuse_messages`` (the default) a factor's message to a variable is computed once and reused until
        one of the factor's other variables changes: the messages of observed inputs (X → H in every sweep) and
        those of a schedule that visits a variable again before its neighbours change (the second half of a
        forward-backward sweep) are computed once. The results are the same; ``False`` recomputes every message.
        ``damping`` (variable -> d in [0, 1)) makes every update of such a variable after its first move only
        ``1 - d`` of the way: ``new = (1 - d) * update + d * previous`` (its pre-activation stays the update's). The
        block energy is convex, so a damped update lowers the energy too (less than the full one), and the fixed
        points are the same; a variable whose regularizer needs the pre-activation (a tree) cannot be damped.
        """
        if sweeps < 0:
            raise ValueError(f"sweeps must be >= 0, got {sweeps}")
        if not activate_last and (trace or trace_states):
            raise ValueError("activate_last=False leaves the last state behind its pre-activation: no trace of it")
        missing = set(self.variables) - set(states)
        if missing:
            raise ValueError(f"infer needs a state for every variable; missing {sorted(missing)}")
        unknown = schedule.variables - set(self.variables)
        if unknown:
            raise ValueError(f"schedule names unknown variables {sorted(unknown)}")
        cur = dict(states)
        pre = dict(preactivations or {})
        messages = MessageCache() if reuse_messages else None
        result = Inference(states=cur, preactivations=pre)
        masks: dict[str, Tensor] = {}
        damping = dict(damping or {})
        for name, d in damping.items():
            if name not in self.variables or not 0.0 <= d < 1.0:
                raise ValueError(f"damping must map variables to [0, 1); got {name!r}: {d!r}")
            if self.variables[name].regularizer.needs_preactivation:
                raise ValueError(f"{name} cannot be damped: its regularizer's value needs the state's pre-activation")
        updated: set[str] = set()
        if trace or trace_states:
            energy0 = self._traced_energy(cur, context, pre) if trace else None
            result.trace.append(TraceStep(-1, "", energy0))
        for t in range(sweeps):
            steps = schedule.steps(t, generator)
            for i, group in enumerate(steps):
                if not activate_last and t == sweeps - 1 and i == len(steps) - 1 and len(group) == 1:
                    pre[group[0]] = self.preactivation(group[0], cur, context, messages=messages)
                    break
                updates = []
                for name in group:  # all from the state before the step
                    new, z, aux = self.update(name, cur, context, messages=messages)
                    var = self.variables[name]
                    if self.training and var.dropout > 0:
                        if name not in masks:
                            gen = generator if generator is not None and generator.device == new.device else None
                            masks[name] = dropout_mask(new, var.dropout, generator=gen)
                        new = new * masks[name]
                    if damping.get(name) and name in updated:
                        new = (1.0 - damping[name]) * new + damping[name] * cur[name]
                    updates.append((name, new, z, aux))
                for name, new, z, aux in updates:
                    cur[name], pre[name] = new, z
                    updated.add(name)
                    if messages is not None:
                        messages.changed(name)
                    if aux is not None:
                        result.aux[name] = aux
                    if trace or trace_states:
                        energy = self._traced_energy(cur, context, pre) if trace else None
                        result.trace.append(TraceStep(t, name, energy, new.detach() if trace_states else None))
        return result

    def forward(self, states: Mapping[str, Tensor], schedule: Schedule, sweeps: int, **kwargs: Any) -> Inference:
        """Same as :meth:`infer` (so that ``torch.func.functional_call`` and hooks work)."""
        return self.infer(states, schedule, sweeps, **kwargs)

    def _traced_energy(self, states: Mapping[str, Tensor], context: Context | None, pre: Mapping[str, Tensor]):
        with torch.no_grad():
            return self.energy(states, context, pre).detach()


class MessageCache:
    """Factor messages of one inference, each kept with the versions of the states it was computed from.

    A message of a multilinear factor to a variable depends only on the states of the factor's other variables
    (and on the context and parameters, fixed during an inference): it is reused while none of those changed.
    """

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._kept: dict[tuple[int, str], tuple[tuple[int, ...], Tensor]] = {}

    def changed(self, name: str) -> None:
        """Record that the state of ``name`` has been replaced."""
        self._versions[name] = self._versions.get(name, 0) + 1

    def get(self, factor: Factor, target: str, states: Mapping[str, Tensor], context: Context | None) -> Tensor:
        """``factor.message(target, states, context)``, computed again only if one of its inputs changed."""
        stamp = tuple(self._versions.get(v, 0) for v in factor.variables if v != target)
        key = (id(factor), target)
        kept = self._kept.get(key)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        message = factor.message(target, states, context)
        self._kept[key] = (stamp, message)
        return message


def _lookup(context: Context | None, key: str, name: str) -> Tensor:
    if context is None or key not in context:
        raise KeyError(f"variable {name!r} needs context[{key!r}]")
    return context[key]
