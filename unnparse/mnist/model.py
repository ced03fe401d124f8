"""The convolutional UNN of §3 / App. F, declared on the shared engine, and its untied baseline (Table 3).

Variables: the image X [1, 28, 28] (tanh regularizer, no bias: E_X = Ψ_tanh), H1 [32, 12, 12] and H2 [64, 5, 5]
(tanh, one bias per filter) and the class Y [10] (softmax, with bias). Factors: X–H1 a 6x6 stride-2
cross-correlation, H1–H2 a 4x4 stride-2 one, H2–Y a dense tensor contraction. That is 50,026 parameters, the
count of Table 3 for k = 1.

* classification: X observed, H1, H2 zero, Y initialised by ``y_init``; k sweeps of H1, H2, Y (``fw``) or
  H1, H2, Y, H2 (``fb``); the logits are the last pre-activation of Y.
* prototypes: Y = e_c observed, X, H1, H2 zero; k sweeps of H2, H1, X, H1; X = tanh(z_X).

The *untied* baseline unrolls the same sweeps into a layered UNN in which every update writes a fresh copy of
its variable with its own weights (k = 1: exactly the tied model); one sweep in topological order from zeros is
then the unconstrained feed-forward network (Lemma 1). Channel counts shrink so that the parameter count stays
close to the tied model's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from unnparse.engine import (
    UNN,
    Contraction,
    Conv2dFactor,
    Factor,
    FixedOrder,
    Inference,
    SoftmaxEntropy,
    TanhEntropy,
    Variable,
)
from unnparse.mnist.config import CLASSIFY_ORDERS, CONFIG_LIMITS, MODEL_KIND, MnistConfig

__all__ = ["CONFIG_LIMITS", "MODEL_KIND", "MnistConfig", "MnistUNN", "count_parameters", "untied_channels"]

#: the edges of the tied graph, each (input variable, output variable) of its factor
EDGES = (("X", "H1"), ("H1", "H2"), ("H2", "Y"))
GENERATE_ORDER = ("H2", "H1", "X", "H1")


def _unrolled(cfg: MnistConfig) -> tuple[list[tuple[str, str]], list[tuple[str, str, str, str]]]:
    """Copies and edges of the untied graph: ([(copy, base variable)], [(edge input, edge output, copy in,
    copy out)]). Every update makes a new copy, linked to the latest copy of each neighbour (zero-initialised
    neighbours, which never send anything, are left out)."""
    latest = {"X": "X"}
    if cfg.y_init != "zero":
        latest["Y"] = "Y_0"
    copies: list[tuple[str, str]] = []
    edges: list[tuple[str, str, str, str]] = []
    counts: dict[str, int] = {}
    for name in CLASSIFY_ORDERS[cfg.order] * cfg.unn_iter:
        counts[name] = counts.get(name, 0) + 1
        new = f"{name}_{counts[name]}"
        for inp, out in EDGES:
            other = out if name == inp else inp if name == out else None
            if other in latest:
                copy = {name: new, other: latest[other]}
                edges.append((inp, out, copy[inp], copy[out]))
        latest[name] = new
        copies.append((new, name))
    return copies, edges


def count_parameters(cfg: MnistConfig, channels: tuple[int, int] | None = None) -> int:
    """Number of trained parameters of the model ``cfg`` describes (with ``channels`` for the untied one)."""
    c1, c2 = channels or (cfg.channels1, cfg.channels2)
    _, (s2, _) = cfg.sizes
    weight = {
        ("X", "H1"): c1 * cfg.kernel1**2,
        ("H1", "H2"): c2 * c1 * cfg.kernel2**2,
        ("H2", "Y"): cfg.classes * c2 * s2 * s2,
    }
    bias = {"H1": c1, "H2": c2, "Y": cfg.classes, "X": 0}
    if not cfg.untied:
        return sum(weight.values()) + sum(bias.values())
    copies, edges = _unrolled(cfg)
    return sum(weight[(i, o)] for i, o, _, _ in edges) + sum(bias[base] for _, base in copies)


def untied_channels(cfg: MnistConfig) -> tuple[int, int]:
    """Channel counts (H1, H2) of the untied model, keeping the tied ratio, whose parameter count is closest
    to the tied model's (Table 3)."""
    target = count_parameters(MnistConfig(**{**cfg.to_dict(), "untied": False}))
    ratio = cfg.channels2 / cfg.channels1
    best: tuple[int, tuple[int, int]] | None = None
    for c1 in range(1, cfg.channels1 + 1):
        for c2 in range(max(1, math.floor(c1 * ratio) - 2), min(cfg.channels2, math.ceil(c1 * ratio) + 2) + 1):
            gap = abs(count_parameters(cfg, (c1, c2)) - target)
            if best is None or gap < best[0]:
                best = (gap, (c1, c2))
    assert best is not None
    return best[1]


class MnistUNN(nn.Module):
    """The convolutional UNN (or its untied baseline), built on :class:`unnparse.engine.UNN`."""

    def __init__(self, config: MnistConfig) -> None:
        super().__init__()
        self.config = config
        self.channels = untied_channels(config) if config.untied else (config.channels1, config.channels2)
        if config.untied:
            copies, edges = _unrolled(config)
        else:
            copies = [(n, n) for n in ("H1", "H2", "Y")]
            edges = [(i, o, i, o) for i, o in EDGES]
        self._base = {"X": "X", "Y_0": "Y", **dict(copies)}
        variables = [Variable("X", TanhEntropy())]
        if config.untied and config.y_init != "zero":
            variables.append(Variable("Y_0", SoftmaxEntropy()))
        variables += [self._variable(name, base) for name, base in copies]
        self.unn = UNN(variables, [self._factor(*edge) for edge in edges])
        if config.untied:
            self.classify_schedule = FixedOrder([name for name, _ in copies])
            self.classify_sweeps = 1
            self.output = copies[max(i for i, (_, b) in enumerate(copies) if b == "Y")][0]
        else:
            self.classify_schedule = FixedOrder(CLASSIFY_ORDERS[config.order])
            self.classify_sweeps = config.unn_iter
            self.output = "Y"

    # ---------------------------------------------------------------- declaration
    def _shape(self, base: str) -> tuple[int, ...]:
        c1, c2 = self.channels
        (h1, w1), (h2, w2) = self.config.sizes
        n = self.config.image_size
        return {"X": (1, n, n), "H1": (c1, h1, w1), "H2": (c2, h2, w2), "Y": (self.config.classes,)}[base]

    def _variable(self, name: str, base: str) -> Variable:
        if base == "Y":
            return Variable(name, SoftmaxEntropy(), bias_shape=(self.config.classes,))
        channels = self._shape(base)[0]
        return Variable(name, TanhEntropy(), bias_shape=(channels, 1, 1), dropout=self.config.dropout)

    def _factor(self, inp_base: str, out_base: str, inp: str, out: str) -> Factor:
        cfg, (c1, c2) = self.config, self.channels
        if (inp_base, out_base) == ("X", "H1"):
            return Conv2dFactor(inp, out, 1, c1, cfg.kernel1, stride=cfg.stride, in_size=self._shape("X")[1:])
        if (inp_base, out_base) == ("H1", "H2"):
            return Conv2dFactor(inp, out, c1, c2, cfg.kernel2, stride=cfg.stride, in_size=self._shape("H1")[1:])
        return Contraction(inp, out, self._shape("H2"), (cfg.classes,))

    # ---------------------------------------------------------------- inference
    def _zeros(self, batch: int, like: Tensor) -> dict[str, Tensor]:
        return {
            name: like.new_zeros((batch, *self._shape(base)))
            for name, base in self._base.items()
            if name in self.unn.variables
        }

    def classify(self, images: Tensor, *, generator: torch.Generator | None = None) -> Inference:
        """Run the classification sweeps on ``images`` [B, 1, 28, 28] in [-1, 1]; Y is ``states[self.output]``
        and its logits ``preactivations[self.output]``.

        ``generator`` drives the random y initialisation; by default one seeded with ``config.seed`` is used, so
        that predictions are deterministic.
        """
        cfg = self.config
        states = self._zeros(images.shape[0], images)
        states["X"] = images
        y_name = "Y_0" if cfg.untied else "Y"
        if y_name in states and cfg.y_init != "zero":
            if generator is None:
                generator = torch.Generator().manual_seed(cfg.seed)
            states[y_name], _ = self.unn.initial_state(
                y_name, states[y_name].shape, cfg.y_init, generator=generator, dtype=images.dtype, device=images.device
            )
        return self.unn.infer(states, self.classify_schedule, self.classify_sweeps)

    def forward(self, images: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Class logits [B, 10] (the softmax of which is the inferred Y)."""
        return self.classify(images, generator=generator).preactivations[self.output]

    def generate(self, labels: Tensor, *, sweeps: int | None = None, trace: bool = False) -> Inference:
        """Prototype generation from the one-hot ``labels`` [B]: X, H1, H2 start at zero, Y = e_c is observed,
        and ``sweeps`` (default k) sweeps of H2, H1, X, H1 run. ``preactivations["X"]`` are the logits of the
        pixels being on (X = tanh(z), so p = sigmoid(2z)); with ``trace``, the trace holds X after every sweep.
        """
        if self.config.untied:
            raise ValueError("the untied baseline is a forward-only classifier; it generates no prototypes")
        p = next(self.parameters())
        y = torch.nn.functional.one_hot(labels.to(p.device), self.config.classes).to(p.dtype)
        states = self._zeros(y.shape[0], y)
        states["Y"] = y
        return self.unn.infer(
            states,
            FixedOrder(GENERATE_ORDER),
            self.config.unn_iter if sweeps is None else sweeps,
            trace_states=trace,
        )

    def prototypes(self, *, sweeps: int | None = None) -> Tensor:
        """X of every class after each sweep: [sweeps, classes, 28, 28], values in [-1, 1]."""
        labels = torch.arange(self.config.classes)
        with torch.no_grad():
            out = self.generate(labels, sweeps=sweeps, trace=True)
        xs = [step.state for step in out.trace if step.variable == "X" and step.state is not None]
        return torch.stack(xs)[:, :, 0]

    def num_parameters(self) -> int:
        """Number of trained parameters."""
        return sum(p.numel() for p in self.parameters())
