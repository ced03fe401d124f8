"""The UNN engine against independent ground truth.

(a) zero init + k=1 in topological order == the plain feed-forward network;
(b) every block update is the exact block argmin (autograd / KKT / Fenchel-Young);
(c) the energy never increases along a Gauss-Seidel schedule, for every regularizer;
(d) gradcheck through two unrolled sweeps in float64.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from unnparse.engine import (
    UNN,
    Activation,
    Bilinear,
    Contraction,
    Conv2dFactor,
    FixedOrder,
    GroupedOrder,
    NonNegativeSquaredNorm,
    RandomPermutation,
    SigmoidEntropy,
    SoftmaxEntropy,
    SquaredNorm,
    TanhEntropy,
    TreeEntropy,
    Variable,
    forward_backward,
)
from unnparse.parser.factors import ArcFactor, ArcHeadBiasFactor, ArcPositionFactor, signed_distance_buckets
from unnparse.seqcomplete.factors import AttentionScoreFactor, AttentionValueFactor

DT = torch.float64


def _randomize(unn: UNN, seed: int, scale: float = 0.5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in unn.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)


def _zeros(unn: UNN, shapes: dict[str, tuple[int, ...]], context=None, mode="zero"):
    states, pre = {}, {}
    for n, shape in shapes.items():
        states[n], pre[n] = unn.initial_state(n, shape, mode, context=context, dtype=DT)
    return states, pre


# ----------------------------------------------------------------------------- (a) feed-forward equivalence
def test_k1_equals_mlp():
    unn = UNN(
        [
            Variable("X", SquaredNorm()),
            Variable("H1", NonNegativeSquaredNorm(), bias_shape=(7,)),
            Variable("H2", TanhEntropy(), bias_shape=(6,)),
            Variable("Y", SoftmaxEntropy(), bias_shape=(4,)),
        ],
        [Bilinear("X", "H1", 5, 7), Bilinear("H1", "H2", 7, 6), Bilinear("H2", "Y", 6, 4)],
    ).to(DT)
    _randomize(unn, 0)
    x = torch.randn(3, 5, dtype=DT)
    states, _ = _zeros(unn, {"H1": (3, 7), "H2": (3, 6), "Y": (3, 4)})
    out = unn.infer({"X": x, **states}, FixedOrder(["H1", "H2", "Y"]), sweeps=1)
    f = unn.factors
    h1 = torch.relu(x @ f[0].weight.T + unn.biases["H1"])
    h2 = torch.tanh(h1 @ f[1].weight.T + unn.biases["H2"])
    y = torch.softmax(h2 @ f[2].weight.T + unn.biases["Y"], dim=-1)
    torch.testing.assert_close(out.states["Y"], y, atol=1e-6, rtol=0)
    # a second sweep is NOT the feed-forward net any more: information flows back from Y
    out2 = unn.infer({"X": x, **states}, FixedOrder(["H1", "H2", "Y"]), sweeps=2)
    assert (out2.states["H1"] - h1).abs().max() > 1e-3


def _conv_unn() -> UNN:
    c1 = Conv2dFactor("X", "H1", 1, 32, 6, stride=2, in_size=(28, 28))
    c2 = Conv2dFactor("H1", "H2", 32, 64, 4, stride=2, in_size=c1.out_size)
    return UNN(
        [
            Variable("X", TanhEntropy()),
            Variable("H1", TanhEntropy(), bias_shape=(32, 1, 1)),
            Variable("H2", TanhEntropy(), bias_shape=(64, 1, 1)),
            Variable("Y", SoftmaxEntropy(), bias_shape=(10,)),
        ],
        [c1, c2, Contraction("H2", "Y", (64, *c2.out_size), (10,))],
    ).to(DT)


def test_k1_equals_two_layer_cnn():
    unn = _conv_unn()
    _randomize(unn, 1, scale=0.1)
    x = torch.rand(2, 1, 28, 28, dtype=DT) * 2 - 1
    states, _ = _zeros(unn, {"H1": (2, 32, 12, 12), "H2": (2, 64, 5, 5), "Y": (2, 10)})
    out = unn.infer({"X": x, **states}, FixedOrder(["H1", "H2", "Y"]), sweeps=1)
    f = unn.factors
    h1 = torch.tanh(F.conv2d(x, f[0].weight, stride=2) + unn.biases["H1"])
    h2 = torch.tanh(F.conv2d(h1, f[1].weight, stride=2) + unn.biases["H2"])
    y = torch.softmax(torch.tensordot(h2, f[2].weight, dims=([1, 2, 3], [1, 2, 3])) + unn.biases["Y"], -1)
    torch.testing.assert_close(out.states["Y"], y, atol=1e-6, rtol=0)


def _parser_unn(dx: int = 6, d: int = 5, position: bool = False) -> UNN:
    return UNN(
        [
            Variable("X", SquaredNorm()),
            Variable("H", NonNegativeSquaredNorm(), bias_shape=(d,), mask_key="token_mask"),
            Variable("M", NonNegativeSquaredNorm(), bias_shape=(d,), mask_key="token_mask"),
            Variable("Y", TreeEntropy()),
        ],
        {
            "xh": Bilinear("X", "H", dx, d),
            "xm": Bilinear("X", "M", dx, d),
            "arc": ArcFactor("H", "M", "Y", d),
            "head_bias": ArcHeadBiasFactor("H", "Y", d),
            **({"arc_position": ArcPositionFactor("Y", edges=(1, 2, 4))} if position else {}),
        },
    ).to(DT)


def _parser_inputs(lengths=(4, 2, 1), dx=6):
    lengths = torch.tensor(lengths)
    n = int(lengths.max()) + 1
    x = torch.randn(len(lengths), n, dx, dtype=DT)
    mask = (torch.arange(n)[None, :] <= lengths[:, None]).unsqueeze(-1)
    return x, {"lengths": lengths, "token_mask": mask}


def _k1_parser_and_biaffine_scores(position: bool):
    """One sweep of the parser graph from zeros, its context, and the biaffine scores written out by hand."""
    unn = _parser_unn(position=position)
    _randomize(unn, 2)
    x, ctx = _parser_inputs()
    B, n, _ = x.shape
    states, _ = _zeros(unn, {"H": (B, n, 5), "M": (B, n, 5), "Y": (B, n, n)}, ctx)
    out = unn.infer({"X": x, **states}, FixedOrder(["H", "M", "Y"]), sweeps=1, context=ctx)
    f = unn.factor
    mask = ctx["token_mask"].to(DT)
    h = torch.relu(x @ f("xh").weight.T + unn.biases["H"]) * mask
    m = torch.relu(x @ f("xm").weight.T + unn.biases["M"]) * mask
    scores = h @ f("arc").weight @ m.transpose(1, 2) + (h @ f("head_bias").weight).unsqueeze(-1)
    return unn, out, ctx, scores


def test_k1_equals_biaffine_scorer():
    _, out, ctx, scores = _k1_parser_and_biaffine_scores(position=False)
    torch.testing.assert_close(out.preactivations["Y"], scores, atol=1e-6, rtol=0)
    from unnparse.structures import arc_marginals

    log_z, marg = arc_marginals(scores, ctx["lengths"])
    torch.testing.assert_close(out.states["Y"], marg, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.aux["Y"], log_z, atol=1e-6, rtol=0)


def test_k1_with_arc_positions_adds_the_position_score_of_each_arc():
    unn, out, _, scores = _k1_parser_and_biaffine_scores(position=True)
    w = unn.factor("arc_position").weight
    n = scores.shape[-1]
    for head in range(n):
        for mod in range(n):
            d = mod - head  # > 0: the head is to the left; edges 1, 2, 4 make buckets 1-3 and 4-6
            size = 1 + (abs(d) >= 2) + (abs(d) >= 4)
            bucket = 0 if head == 0 or d == 0 else (size if d > 0 else size + 3)
            scores[:, head, mod] += w[bucket]
    torch.testing.assert_close(out.preactivations["Y"], scores, atol=1e-6, rtol=0)


def test_signed_distance_buckets():
    offsets = torch.tensor([0, 1, -1, 2, 3, 4, 7, 8, 15, 16, 40, -5, -8, -16, -40])
    expected = [0, 1, 8, 2, 3, 4, 5, 6, 6, 7, 7, 12, 13, 14, 14]
    assert signed_distance_buckets(offsets).tolist() == expected
    assert signed_distance_buckets(offsets, (1, 10)).tolist() == [0, 1, 3, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4]


def test_k1_equals_scaled_dot_product_attention():
    d, n = 8, 5
    unn = _attention_unn(d)
    _randomize(unn, 3)
    x = torch.randn(2, n, d, dtype=DT)
    pos = torch.randn(n, d, dtype=DT)
    ctx = {"positions": pos, "attn_mask": torch.ones(2, n, n, dtype=torch.bool)}
    states, _ = _zeros(unn, {v: ((2, n, n) if v == "S" else (2, n, d)) for v in "QKVSH"}, ctx)
    out = unn.infer({"X": x, **states}, FixedOrder(["V", "Q", "K", "S", "H"]), sweeps=1, context=ctx)
    wq, wk, wv = (f.weight for f in unn.factors[:3])
    q, k, v = ((x + pos) @ w.T for w in (wq, wk, wv))
    ref = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out.states["H"], ref, atol=1e-6, rtol=0)


def _attention_unn(d: int) -> UNN:
    return UNN(
        [
            Variable("X", SquaredNorm(), clamp_key="x_observed"),
            *(Variable(v, SquaredNorm()) for v in "QKV"),
            Variable("S", SoftmaxEntropy(scale=math.sqrt(d), mask_key="attn_mask")),
            Variable("H", SquaredNorm()),
        ],
        [
            Bilinear("X", "Q", d, d, input_offset_key="positions"),
            Bilinear("X", "K", d, d, input_offset_key="positions"),
            Bilinear("X", "V", d, d, input_offset_key="positions"),
            AttentionScoreFactor("Q", "K", "S"),
            AttentionValueFactor("S", "V", "H"),
        ],
    ).to(DT)


# ----------------------------------------------------------------------------- messages are -dE/dx
def _graphs():
    """(unn, states, context) triples covering every factor type."""
    out = []
    unn = _conv_unn()
    _randomize(unn, 4, 0.1)
    st = {
        "X": torch.rand(2, 1, 28, 28, dtype=DT) * 1.8 - 0.9,
        "H1": torch.rand(2, 32, 12, 12, dtype=DT) * 1.8 - 0.9,
        "H2": torch.rand(2, 64, 5, 5, dtype=DT) * 1.8 - 0.9,
        "Y": torch.softmax(torch.randn(2, 10, dtype=DT), -1),
    }
    out.append((unn, st, None))
    unn = _parser_unn(position=True)
    _randomize(unn, 5)
    x, ctx = _parser_inputs()
    B, n, _ = x.shape
    st = {"X": x, "H": torch.rand(B, n, 5, dtype=DT), "M": torch.rand(B, n, 5, dtype=DT)}
    st["Y"] = torch.rand(B, n, n, dtype=DT)
    out.append((unn, st, ctx))
    unn = _attention_unn(4)
    _randomize(unn, 6)
    ctx = {"positions": torch.randn(3, 4, dtype=DT), "attn_mask": torch.ones(2, 3, 3, dtype=torch.bool)}
    st = {v: torch.randn(2, 3, 4, dtype=DT) for v in "XQKVH"}
    st["S"] = torch.softmax(torch.randn(2, 3, 3, dtype=DT), -1)
    out.append((unn, st, ctx))
    return out


@pytest.mark.parametrize("index", [0, 1, 2])
def test_messages_are_negative_energy_gradients(index):
    unn, states, ctx = _graphs()[index]
    for f in unn.factors:
        for v in f.variables:
            leaf = {k: t.clone().requires_grad_(k == v) for k, t in states.items()}
            (grad,) = torch.autograd.grad(f.energy(leaf, ctx).sum(), leaf[v])
            torch.testing.assert_close(f.message(v, states, ctx), -grad, atol=1e-9, rtol=1e-9)


# ----------------------------------------------------------------------------- (b) exact block argmin
def _smooth_unn() -> UNN:
    return UNN(
        [
            Variable("A", SquaredNorm(), bias_shape=(4,)),
            Variable("B", TanhEntropy(), bias_shape=(3,)),
            Variable("C", SigmoidEntropy(), bias_shape=(5,)),
            Variable("D", SoftmaxEntropy(scale=2.0), bias_shape=(6,)),
            Variable("E", NonNegativeSquaredNorm(), bias_shape=(4,)),
        ],
        [
            Bilinear("A", "B", 4, 3),
            Bilinear("B", "C", 3, 5),
            Bilinear("C", "D", 5, 6),
            Bilinear("D", "A", 6, 4),
            Bilinear("A", "E", 4, 4),
            Bilinear("E", "C", 4, 5),
        ],
    ).to(DT)


def _random_states(unn: UNN, shapes, seed):
    g = torch.Generator().manual_seed(seed)
    states = {}
    for n, shape in shapes.items():
        z = torch.randn(shape, generator=g, dtype=DT)
        states[n] = unn.variables[n].regularizer.activation(z)
    return states


SMOOTH_SHAPES = {"A": (3, 4), "B": (3, 3), "C": (3, 5), "D": (3, 6), "E": (3, 4)}


@pytest.mark.parametrize("name", ["A", "B", "C", "D"])
def test_update_is_stationary_point_of_block(name):
    unn = _smooth_unn()
    _randomize(unn, 7)
    states = _random_states(unn, SMOOTH_SHAPES, 8)
    new, _, _ = unn.update(name, states)
    leaf = dict(states)
    leaf[name] = new.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(unn.energy(leaf).sum(), leaf[name])
    if name == "D":  # on the simplex: stationary up to the multiplier of sum = 1
        grad = grad - grad.mean(dim=-1, keepdim=True)
    assert grad.abs().max() < 1e-8
    # and it is the minimum: random feasible perturbations never do better
    base = unn.energy({**states, name: new})
    for s in range(5):
        other = _random_states(unn, {name: SMOOTH_SHAPES[name]}, 100 + s)[name]
        mix = 0.9 * new + 0.1 * other
        assert (unn.energy({**states, name: mix}) >= base - 1e-12).all()


def test_relu_update_satisfies_kkt():
    unn = _smooth_unn()
    _randomize(unn, 9)
    states = _random_states(unn, SMOOTH_SHAPES, 10)
    new, _, _ = unn.update("E", states)
    assert (new == 0).any() and (new > 0).any()  # both cases occur
    leaf = {**states, "E": new.detach().clone().requires_grad_(True)}
    # gradient of the smooth part (without the indicator of x >= 0)
    e = unn.energy({k: v for k, v in leaf.items()}, include=[k for k in leaf if k != "E"])
    e = e + 0.5 * (leaf["E"] ** 2).sum(-1) - (unn.biases["E"] * leaf["E"]).sum(-1)
    (grad,) = torch.autograd.grad(e.sum(), leaf["E"])
    positive = new > 0
    assert grad[positive].abs().max() < 1e-9
    assert (grad[~positive] >= -1e-9).all()


def test_tree_update_minimizes_block_energy():
    unn = _parser_unn(position=True)
    _randomize(unn, 11)
    x, ctx = _parser_inputs((5, 3, 1))
    B, n, _ = x.shape
    states = {"X": x, "H": torch.rand(B, n, 5, dtype=DT), "M": torch.rand(B, n, 5, dtype=DT)}
    states["Y"] = torch.zeros(B, n, n, dtype=DT)
    new, z, _ = unn.update("Y", states, ctx)
    best = unn.energy({**states, "Y": new}, ctx, {"Y": z}, include=["Y", "H", "M"])
    g = torch.Generator().manual_seed(12)
    for _ in range(8):  # any other point of the marginal polytope (marginals of other scores) is worse
        z2 = z + torch.randn(z.shape, generator=g, dtype=DT)
        y2 = unn.variables["Y"].regularizer.activation(z2, ctx)
        other = unn.energy({**states, "Y": y2}, ctx, {"Y": z2}, include=["Y", "H", "M"])
        assert (other >= best - 1e-9).all()
        assert (other > best + 1e-9).any()


# ----------------------------------------------------------------------------- (c) energy monotone
def _assert_monotone(trace):
    energies = torch.stack([s.energy for s in trace[1:]])  # skip the start, which may be +inf
    diffs = energies[1:] - energies[:-1]
    assert torch.isfinite(energies).all()
    assert (diffs <= 1e-9 * (1 + energies[:-1].abs())).all(), diffs.max()


@pytest.mark.parametrize("seed", range(4))
def test_energy_never_increases_smooth_graph(seed):
    unn = _smooth_unn()
    _randomize(unn, seed)
    states = _random_states(unn, SMOOTH_SHAPES, 50 + seed)
    g = torch.Generator().manual_seed(seed)
    out = unn.infer(states, RandomPermutation(list("ABCDE")), sweeps=6, generator=g, trace=True)
    _assert_monotone(out.trace)
    assert len(out.trace) == 1 + 6 * 5


@pytest.mark.parametrize("seed", range(3))
def test_energy_never_increases_tree_graph(seed):
    unn = _parser_unn(position=seed == 2)
    _randomize(unn, 20 + seed)
    x, ctx = _parser_inputs((5, 4, 2, 1))
    B, n, _ = x.shape
    states, pre = _zeros(unn, {"H": (B, n, 5), "M": (B, n, 5), "Y": (B, n, n)}, ctx, mode="uniform")
    out = unn.infer(
        {"X": x, **states},
        RandomPermutation(["H", "M", "Y"]),
        sweeps=5,
        context=ctx,
        preactivations=pre,
        generator=torch.Generator().manual_seed(seed),
        trace=True,
    )
    # with the uniform start the initial energy is finite too
    assert torch.isfinite(out.trace[0].energy).all()
    _assert_monotone(out.trace)


def test_energy_never_increases_conv_and_attention_graphs():
    unn = _conv_unn()
    _randomize(unn, 30, 0.1)
    x = torch.rand(2, 1, 28, 28, dtype=DT) * 1.8 - 0.9
    states, _ = _zeros(unn, {"H1": (2, 32, 12, 12), "H2": (2, 64, 5, 5), "Y": (2, 10)}, mode="uniform")
    out = unn.infer({"X": x, **states}, forward_backward(["H1", "H2", "Y"], tail=["X"]), sweeps=3, trace=True)
    _assert_monotone(out.trace)

    unn = _attention_unn(4)
    _randomize(unn, 31)
    lengths = torch.tensor([3, 2])
    key_mask = torch.arange(3)[None, :] < lengths[:, None]
    ctx = {
        "positions": torch.randn(3, 4, dtype=DT),
        "attn_mask": key_mask[:, None, :].expand(2, 3, 3),
        "x_observed": torch.tensor([[True], [False], [True]]).expand(3, 4).unsqueeze(0).expand(2, 3, 4),
    }
    states, _ = _zeros(unn, {v: ((2, 3, 3) if v == "S" else (2, 3, 4)) for v in "QKVSH"}, ctx, mode="uniform")
    x0 = torch.randn(2, 3, 4, dtype=DT)
    out = unn.infer({"X": x0, **states}, forward_backward("QKVSH", tail="X"), sweeps=3, context=ctx, trace=True)
    _assert_monotone(out.trace)
    # clamped rows of X never change; padded keys get no attention
    torch.testing.assert_close(out.states["X"][:, [0, 2]], x0[:, [0, 2]])
    assert (out.states["S"][1, :, 2] == 0).all()


# ----------------------------------------------------------------------------- (d) gradcheck through unrolling
def test_gradcheck_two_sweeps():
    unn = UNN(
        [
            Variable("X", SquaredNorm()),
            Variable("H", TanhEntropy(), bias_shape=(3,)),
            Variable("Y", SoftmaxEntropy(), bias_shape=(2,)),
        ],
        [Bilinear("X", "H", 4, 3), Bilinear("H", "Y", 3, 2)],
    ).to(DT)
    _randomize(unn, 40)
    names = [n for n, _ in unn.named_parameters()]

    def run(x, *params):
        states, _ = _zeros(unn, {"H": (2, 3), "Y": (2, 2)})
        out = torch.func.functional_call(
            unn, dict(zip(names, params, strict=True)), ({"X": x, **states}, forward_backward(["H", "Y"]), 2)
        )
        return out.states["Y"], out.states["H"]

    x = torch.randn(2, 4, dtype=DT, requires_grad=True)
    params = [p.detach().clone().requires_grad_(True) for p in unn.parameters()]
    assert torch.autograd.gradcheck(run, (x, *params))


def test_gradcheck_two_sweeps_tree():
    unn = _parser_unn(dx=3, d=2, position=True)
    _randomize(unn, 41)
    x, ctx = _parser_inputs((3, 2), dx=3)
    B, n, _ = x.shape
    names = [n for n, _ in unn.named_parameters()]

    def run(x, *params):
        states, _ = _zeros(unn, {"H": (B, n, 2), "M": (B, n, 2), "Y": (B, n, n)}, ctx)
        out = torch.func.functional_call(
            unn,
            dict(zip(names, params, strict=True)),
            ({"X": x, **states}, FixedOrder(["H", "M", "Y"]), 2),
            {"context": ctx},
        )
        return out.aux["Y"], out.states["Y"]

    x = x.clone().requires_grad_(True)
    params = [p.detach().clone().requires_grad_(True) for p in unn.parameters()]
    assert torch.autograd.gradcheck(run, (x, *params), atol=1e-5)


# ----------------------------------------------------------------------------- mechanics
def test_dropout_mask_is_reused_across_sweeps():
    unn = UNN(
        [Variable("X", SquaredNorm()), Variable("H", NonNegativeSquaredNorm(), bias_shape=(50,), dropout=0.5)],
        [Bilinear("X", "H", 4, 50)],
    ).to(DT)
    _randomize(unn, 50)
    with torch.no_grad():
        unn.biases["H"].fill_(50.0)  # every unit active before dropout
    unn.train()
    x = torch.randn(8, 4, dtype=DT)
    out = unn.infer(
        {"X": x, "H": torch.zeros(8, 50, dtype=DT)}, FixedOrder(["H"]), sweeps=3, trace=True, trace_states=True
    )
    zeros = [(s.state == 0) for s in out.trace[1:]]
    assert zeros[0].any() and not zeros[0].all()
    assert all(torch.equal(zeros[0], z) for z in zeros[1:])
    unn.eval()
    out = unn.infer({"X": x, "H": torch.zeros(8, 50, dtype=DT)}, FixedOrder(["H"]), sweeps=1)
    assert (out.states["H"] > 0).all()


@pytest.mark.parametrize("sweeps", [1, 3])
def test_skipping_the_last_activation_changes_nothing_else(sweeps):
    unn = _parser_unn()
    _randomize(unn, 7)
    x, ctx = _parser_inputs((5, 4, 2))
    B, n, _ = x.shape
    states, pre = _zeros(unn, {"H": (B, n, 5), "M": (B, n, 5), "Y": (B, n, n)}, ctx, mode="uniform")
    schedule = FixedOrder(["H", "M", "Y"])
    full = unn.infer({"X": x, **states}, schedule, sweeps, context=ctx, preactivations=pre)
    calls = []
    reg = unn.variables["Y"].regularizer
    original = reg.log_partition_and_marginals
    reg.log_partition_and_marginals = lambda z, c=None: calls.append(1) or original(z, c)
    try:
        short = unn.infer({"X": x, **states}, schedule, sweeps, context=ctx, preactivations=pre, activate_last=False)
    finally:
        del reg.log_partition_and_marginals
    assert len(calls) == sweeps - 1  # the last matrix-tree computation is the one left out
    torch.testing.assert_close(short.preactivations["Y"], full.preactivations["Y"], rtol=0, atol=0)
    for name in ("H", "M"):
        torch.testing.assert_close(short.states[name], full.states[name], rtol=0, atol=0)
    # Y keeps its state from before the last update
    before = states["Y"]
    if sweeps > 1:
        before = unn.infer({"X": x, **states}, schedule, sweeps - 1, context=ctx).states["Y"]
    torch.testing.assert_close(short.states["Y"], before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="trace"):
        unn.infer({"X": x, **states}, schedule, 1, context=ctx, activate_last=False, trace=True)


def _count_messages(unn: UNN) -> dict[tuple[int, str], int]:
    """Wrap every factor's ``message`` to count calls per (factor index, target); undo with ``del f.message``."""
    counts: dict[tuple[int, str], int] = {}
    for i, f in enumerate(unn.factors):
        original = f.message

        def counted(target, states, context=None, i=i, original=original):
            counts[(i, target)] = counts.get((i, target), 0) + 1
            return original(target, states, context)

        f.message = counted
    return counts


def _attention_run(unn: UNN, reuse: bool, sweeps: int, order=None):
    g = torch.Generator().manual_seed(8)
    b, n, d = 2, 5, 4
    x = torch.randn(b, n, d, dtype=DT, generator=g).requires_grad_()
    ctx = {
        "positions": torch.randn(n, d, dtype=DT, generator=g),
        "attn_mask": torch.ones(b, n, n, dtype=torch.bool),
        "x_observed": torch.rand(b, n, 1, generator=g) > 0.4,
    }
    states, _ = _zeros(unn, {v: ((b, n, n) if v == "S" else (b, n, d)) for v in "QKVSH"}, ctx)
    schedule = order or forward_backward(["Q", "K", "V", "S", "H"], tail=["X"])
    out = unn.infer({"X": x, **states}, schedule, sweeps, context=ctx, reuse_messages=reuse)
    return out, x


@pytest.mark.parametrize("sweeps", [1, 2])
def test_reused_messages_give_the_same_states_and_gradients(sweeps):
    unn = _attention_unn(4)
    _randomize(unn, 9)
    runs = []
    for reuse in (True, False):
        out, x = _attention_run(unn, reuse, sweeps)
        loss = sum((v * torch.cos(torch.arange(v.numel(), dtype=DT)).view_as(v)).sum() for v in out.states.values())
        grads = torch.autograd.grad(loss, [x, *unn.parameters()])
        runs.append((out, grads))
    (fast, g_fast), (slow, g_slow) = runs
    for name in slow.states:
        torch.testing.assert_close(fast.states[name], slow.states[name], rtol=0, atol=0)
        torch.testing.assert_close(fast.preactivations[name], slow.preactivations[name], rtol=0, atol=0)
    for a, b in zip(g_fast, g_slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_messages_are_computed_again_only_when_an_input_changed():
    unn = _attention_unn(4)
    _randomize(unn, 10)
    counts = _count_messages(unn)
    _attention_run(unn, True, 1)  # Q K V S H S V K Q X
    xq, xk, xv, qks, svh = range(5)
    # X does not change before the last update: its messages to Q, K, V are computed once, not twice; S's second
    # update reuses the Q-K score message (Q and K unchanged since the first) and recomputes the S-V-H one (H changed)
    assert counts[(xq, "Q")] == counts[(xk, "K")] == counts[(xv, "V")] == 1
    assert counts[(qks, "S")] == 1 and counts[(svh, "S")] == 2
    assert counts[(qks, "Q")] == counts[(qks, "K")] == counts[(svh, "V")] == 2
    assert sum(counts.values()) == 16
    counts.clear()
    _attention_run(unn, False, 1)
    assert sum(counts.values()) == 20 and counts[(xq, "Q")] == 2
    # the parser's K sweeps of H, M, Y: X is observed, so X -> H and X -> M are computed once for all K sweeps
    parser = _parser_unn()
    _randomize(parser, 11)
    counts = _count_messages(parser)
    x, ctx = _parser_inputs()
    B, n, _ = x.shape
    states, pre = _zeros(parser, {"H": (B, n, 5), "M": (B, n, 5), "Y": (B, n, n)}, ctx, mode="uniform")
    parser.infer({"X": x, **states}, FixedOrder(["H", "M", "Y"]), 3, context=ctx, preactivations=pre)
    assert counts[(0, "H")] == counts[(1, "M")] == 1 and counts[(2, "Y")] == 3


def test_errors_are_clear():
    unn = _smooth_unn()
    with pytest.raises(ValueError, match="missing"):
        unn.infer({"A": torch.zeros(1, 4)}, FixedOrder(["A"]), 1)
    states = _random_states(unn, SMOOTH_SHAPES, 0)
    with pytest.raises(ValueError, match="unknown"):
        unn.infer(states, FixedOrder(["Z"]), 1)
    with pytest.raises(ValueError, match="unknown variable"):
        UNN([Variable("A", SquaredNorm())], [Bilinear("A", "B", 1, 1)])


def test_schedules():
    assert forward_backward(["H1", "H2", "Y"]).sweep(0) == ["H1", "H2", "Y", "H2", "H1"]
    assert forward_backward("QKVSH", tail="X").sweep(0) == list("QKVSHSVKQX")
    g = torch.Generator().manual_seed(0)
    sweeps = [RandomPermutation("QKVSH", tail="X").sweep(t, g) for t in range(20)]
    assert all(sorted(s[:5]) == sorted("QKVSH") and s[5] == "X" for s in sweeps)
    assert len({tuple(s) for s in sweeps}) > 1


def test_grouped_order_updates_a_group_from_the_state_before_it():
    """GroupedOrder([("H", "M"), "Y"]): M is computed from the H before the sweep (Jacobi), then Y from both new
    ones; by hand with single updates."""
    unn = _parser_unn()
    _randomize(unn, 7)
    x, ctx = _parser_inputs((4, 3))
    B, n, _ = x.shape
    states, pre = _zeros(unn, {"H": (B, n, 5), "M": (B, n, 5), "Y": (B, n, n)}, ctx, mode="uniform")
    start = {"X": x, **states}
    out = unn.infer(start, GroupedOrder([("H", "M"), "Y"]), sweeps=2, context=ctx, preactivations=pre)
    cur = dict(start)
    for _ in range(2):
        h = unn.update("H", cur, ctx)[0]
        m = unn.update("M", cur, ctx)[0]  # the old H
        cur.update(H=h, M=m)
        cur["Y"] = unn.update("Y", cur, ctx)[0]
    for name in ("H", "M", "Y"):
        torch.testing.assert_close(out.states[name], cur[name])
    sequential = unn.infer(start, FixedOrder(["H", "M", "Y"]), sweeps=2, context=ctx, preactivations=pre)
    assert not torch.allclose(sequential.states["M"], out.states["M"])  # the order matters from the start
    g = GroupedOrder([("H", "M"), "Y"])
    assert g.sweep(0) == ["H", "M", "Y"] and g.steps(0) == [("H", "M"), ("Y",)] and g.variables == {"H", "M", "Y"}
    assert FixedOrder(["H", "Y"]).steps(3) == [("H",), ("Y",)]
    with pytest.raises(ValueError, match="no variable twice"):
        GroupedOrder([("H", "M"), "H"])
    with pytest.raises(ValueError, match="at least one variable"):
        GroupedOrder([])


def test_damped_updates_move_part_of_the_way_and_still_lower_the_energy():
    unn = _parser_unn()
    _randomize(unn, 9)
    x, ctx = _parser_inputs((5, 3))
    B, n, _ = x.shape
    states, pre = _zeros(unn, {"H": (B, n, 5), "M": (B, n, 5), "Y": (B, n, n)}, ctx, mode="uniform")
    start = {"X": x, **states}
    order = FixedOrder(["H", "M", "Y"])
    damped = unn.infer(start, order, sweeps=3, context=ctx, preactivations=pre, damping={"H": 0.6, "M": 0.3})
    cur = dict(start)
    for sweep in range(3):
        for name in ("H", "M", "Y"):
            new = unn.update(name, cur, ctx)[0]
            d = {"H": 0.6, "M": 0.3}.get(name, 0.0) if sweep else 0.0  # the first update is a full one
            cur[name] = (1 - d) * new + d * cur[name]
    for name in ("H", "M", "Y"):
        torch.testing.assert_close(damped.states[name], cur[name])
    traced = unn.infer(
        start, RandomPermutation(["H", "M", "Y"]), sweeps=5, context=ctx, preactivations=pre, trace=True,
        damping={"H": 0.5, "M": 0.5}, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    _assert_monotone(traced.trace)
    one = unn.infer(start, order, sweeps=1, context=ctx, preactivations=pre, damping={"H": 0.9, "M": 0.9})
    plain = unn.infer(start, order, sweeps=1, context=ctx, preactivations=pre)
    torch.testing.assert_close(one.states["Y"], plain.states["Y"])  # one sweep: nothing to damp
    with pytest.raises(ValueError, match="Y cannot be damped"):
        unn.infer(start, order, sweeps=1, context=ctx, preactivations=pre, damping={"Y": 0.5})
    with pytest.raises(ValueError, match=r"damping must map variables to \[0, 1\)"):
        unn.infer(start, order, sweeps=1, context=ctx, preactivations=pre, damping={"H": 1.0})


# ----------------------------------------------------------------------------- a task-free engine
@pytest.mark.parametrize(
    "reg", [SquaredNorm(), NonNegativeSquaredNorm(), TanhEntropy(), SigmoidEntropy(), SoftmaxEntropy(scale=2.0)]
)
def test_every_regularizer_activates_through_one_interface(reg):
    z = torch.randn(3, 4, 5, dtype=DT, generator=torch.Generator().manual_seed(1))
    act = reg.activate(z)
    assert isinstance(act, Activation) and act.aux is None
    torch.testing.assert_close(reg.activation(z), act.state, rtol=0, atol=0)


def test_tree_activation_gives_the_log_partition_as_its_auxiliary_output():
    from unnparse.structures import arc_marginals

    lengths = torch.tensor([4, 2])
    z = torch.randn(2, 5, 5, dtype=DT, generator=torch.Generator().manual_seed(2))
    act = TreeEntropy().activate(z, {"lengths": lengths})
    log_z, marginals = arc_marginals(z, lengths)
    torch.testing.assert_close(act.state, marginals, rtol=0, atol=0)
    torch.testing.assert_close(act.aux, log_z, rtol=0, atol=0)


def test_any_regularizer_auxiliary_output_reaches_the_inference():
    class CountingRelu(NonNegativeSquaredNorm):
        """relu, with the number of active units per instance as its auxiliary output."""

        def activate(self, z, context=None):
            state = torch.relu(z)
            return Activation(state, (state > 0).sum(-1))

    unn = UNN([Variable("X", SquaredNorm()), Variable("H", CountingRelu())], [Bilinear("X", "H", 3, 6)]).to(DT)
    _randomize(unn, 3)
    x = torch.randn(4, 3, dtype=DT)
    out = unn.infer({"X": x, "H": torch.zeros(4, 6, dtype=DT)}, FixedOrder(["H"]), sweeps=2)
    assert torch.equal(out.aux["H"], (out.states["H"] > 0).sum(-1))
    assert "X" not in out.aux


def test_factors_are_addressed_by_name_and_keep_their_state_dict_keys():
    named = _parser_unn(position=True)
    assert named.factor_names == ("xh", "xm", "arc", "head_bias", "arc_position")
    assert named.factor("arc") is named.factors[2] and isinstance(named.factor("arc"), ArcFactor)
    keys = {k for k in named.state_dict() if k.startswith("factors.")}
    assert keys == {f"factors.{i}.weight" for i in range(5)}  # as when the factors are given as a list
    with pytest.raises(KeyError, match="no factor named 'nope'"):
        named.factor("nope")
    assert _smooth_unn().factor_names == ()


def test_importing_the_engine_draws_nothing_and_knows_no_task():
    code = (
        "import sys, unnparse.engine\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'rich' or m.startswith(('unnparse.runtime', "
        "'unnparse.parser', 'unnparse.seqcomplete', 'unnparse.mnist', 'unnparse.cli')))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
