"""The shared UNN engine: variables and regularizers, factors, schedules, energy and unrolled coordinate descent.

A UNN is declared, not programmed::

    unn = UNN(
        [Variable("X", SquaredNorm()), Variable("H", NonNegativeSquaredNorm(), bias_shape=(d,)),
         Variable("Y", SoftmaxEntropy(), bias_shape=(c,))],
        [Bilinear("X", "H", n_in, d), Bilinear("H", "Y", d, c)],
    )
    out = unn.infer({"X": x, "H": h0, "Y": y0}, FixedOrder(["H", "Y"]), sweeps=3)

Observed variables are simply those the schedule never updates.

The engine knows no task and draws nothing on a screen: it imports torch, :mod:`unnparse.devices` and (for
:class:`TreeEntropy`) :mod:`unnparse.structures`. A task's own factors live with the task
(:mod:`unnparse.parser.factors`, :mod:`unnparse.seqcomplete.factors`).
"""

from unnparse.engine.dropout import Dropout, dropout_mask
from unnparse.engine.factors import Bilinear, Contraction, Conv2dFactor, Factor, sum_per_instance
from unnparse.engine.graph import UNN, Inference, InitMode, MessageCache, TraceStep, Variable
from unnparse.engine.regularizers import (
    Activation,
    NonNegativeSquaredNorm,
    Regularizer,
    SigmoidEntropy,
    SoftmaxEntropy,
    SquaredNorm,
    TanhEntropy,
    TreeEntropy,
)
from unnparse.engine.schedules import FixedOrder, GroupedOrder, RandomPermutation, Schedule, forward_backward

__all__ = [
    "UNN",
    "Activation",
    "Bilinear",
    "Contraction",
    "Conv2dFactor",
    "Dropout",
    "Factor",
    "FixedOrder",
    "GroupedOrder",
    "Inference",
    "InitMode",
    "MessageCache",
    "NonNegativeSquaredNorm",
    "RandomPermutation",
    "Regularizer",
    "Schedule",
    "SigmoidEntropy",
    "SoftmaxEntropy",
    "SquaredNorm",
    "TanhEntropy",
    "TraceStep",
    "TreeEntropy",
    "Variable",
    "dropout_mask",
    "forward_backward",
    "sum_per_instance",
]
