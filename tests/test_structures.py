"""Tests of the matrix-tree functions of :mod:`unnparse.structures` against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unnparse.structures import (
    DependencyTreeDistribution,
    arc_marginals,
    log_partition,
    max_spanning_tree,
    tree_entropy,
    tree_log_likelihood,
)
from unnparse.structures import matrix_tree as mt
from unnparse.structures._checks import arc_mask, prepare_log_weights
from unnparse.structures.brute_force import brute_force, enumerate_trees
from unnparse.structures.elimination import eliminate_batch

LENGTHS = [6, 1, 4, 6, 2, 5, 3, 6]  # mixed lengths, including 1, padded to N = 6
SCALES = [1.0, 5.0, 20.0, 50.0]


def random_scores(
    seed: int, lengths: list[int], scale: float, dtype: torch.dtype = torch.float32, garbage: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random normal scores x scale; ignored entries hold NaN to prove they are ignored."""
    g = torch.Generator().manual_seed(seed)
    N = max(lengths)
    s = torch.randn(len(lengths), N + 1, N + 1, generator=g, dtype=torch.float64) * scale
    lengths_t = torch.tensor(lengths)
    if garbage:
        s = s.masked_fill(~arc_mask(lengths_t, N, s.device), float("nan"))
    return s.to(dtype), lengths_t


def sentence(scores: torch.Tensor, b: int, n: int) -> np.ndarray:
    """The float64 ``[n+1, n+1]`` block of sentence ``b`` (ignored entries zeroed)."""
    s = scores[b, : n + 1, : n + 1].detach().to(torch.float64).numpy().copy()
    s[:, 0] = 0.0
    np.fill_diagonal(s, 0.0)
    return s


def tree_probabilities(bf) -> np.ndarray:
    return np.exp(bf.tree_scores - bf.log_partition)


# --------------------------------------------------------------------------- brute force


@pytest.mark.parametrize("n", range(1, 6))
def test_brute_force_counts_trees(n: int) -> None:
    # rooted labelled trees on n nodes: n^(n-1); spanning arborescences of K_{n+1}: (n+1)^(n-1)
    assert len(enumerate_trees(n, True)) == n ** (n - 1)
    assert len(enumerate_trees(n, False)) == (n + 1) ** (n - 1)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("single_root", [True, False])
@pytest.mark.parametrize("scale", SCALES)
def test_arc_marginals_match_brute_force_float32(single_root: bool, scale: float) -> None:
    scores, lengths = random_scores(int(scale) + 7 * single_root, LENGTHS, scale)
    log_z, mu = arc_marginals(scores, lengths, single_root)
    assert log_z.dtype == torch.float32 and mu.dtype == torch.float32
    assert mu.shape == scores.shape
    for b, n in enumerate(LENGTHS):
        bf = brute_force(sentence(scores, b, n), single_root)
        assert abs(log_z[b].item() - bf.log_partition) <= 1e-4 * max(1.0, abs(bf.log_partition))
        np.testing.assert_allclose(mu[b, : n + 1, : n + 1].numpy(), bf.marginals, rtol=0, atol=1e-4)
        # ignored entries are exactly zero
        full = mu[b].clone()
        full[: n + 1, : n + 1] = 0
        assert torch.count_nonzero(full) == 0
        assert torch.count_nonzero(mu[b, :, 0]) == 0 and torch.count_nonzero(mu[b].diagonal()) == 0


@pytest.mark.parametrize("single_root", [True, False])
@pytest.mark.parametrize("scale", [1.0, 20.0, 50.0, 200.0])
def test_arc_marginals_match_brute_force_float64(single_root: bool, scale: float) -> None:
    scores, lengths = random_scores(100 + int(scale), LENGTHS, scale, torch.float64)
    log_z, mu = arc_marginals(scores, lengths, single_root)
    for b, n in enumerate(LENGTHS):
        bf = brute_force(sentence(scores, b, n), single_root)
        assert abs(log_z[b].item() - bf.log_partition) <= 1e-9 * max(1.0, abs(bf.log_partition))
        np.testing.assert_allclose(mu[b, : n + 1, : n + 1].numpy(), bf.marginals, rtol=0, atol=1e-7)


@pytest.mark.parametrize("single_root", [True, False])
@pytest.mark.parametrize("scale", [1.0, 50.0, 1000.0])
def test_exact_elimination_matches_brute_force(single_root: bool, scale: float) -> None:
    scores, lengths = random_scores(3 + int(scale), LENGTHS, scale, torch.float64, garbage=False)
    logw = prepare_log_weights(scores, arc_mask(lengths, scores.shape[1] - 1, scores.device))
    log_z = np.zeros(len(LENGTHS))
    mu = np.zeros(tuple(scores.shape))
    eliminate_batch(logw.numpy(), lengths.numpy(), single_root, log_z, mu)
    for b, n in enumerate(LENGTHS):
        bf = brute_force(sentence(scores, b, n), single_root)
        assert abs(log_z[b] - bf.log_partition) <= 1e-12 * max(1.0, abs(bf.log_partition))
        np.testing.assert_allclose(mu[b, : n + 1, : n + 1], bf.marginals, rtol=0, atol=1e-12)


def test_sharp_cycle_is_routed_to_the_exact_path() -> None:
    # Words 1..3 prefer each other in a cycle (score 0); everything else is far lower, so
    # the Laplacian is singular to float64 after the per-word shift.
    s = torch.full((1, 4, 4), -80.0, dtype=torch.float64)
    s[0, 0, 1:] = torch.tensor([-60.0, -61.0, -62.5])
    s[0, 1, 2] = s[0, 2, 3] = s[0, 3, 1] = 0.0
    lengths = torch.tensor([3])
    logw = prepare_log_weights(s, arc_mask(lengths, 3, s.device))
    _, _, ok = mt._lu_matrix_tree(logw, lengths, True)
    assert not bool(ok[0])  # the fast path rejects it ...
    log_z, mu = arc_marginals(s, lengths)
    bf = brute_force(s[0].numpy(), True)  # ... and the exact path gets it right
    assert abs(log_z[0].item() - bf.log_partition) < 1e-10
    np.testing.assert_allclose(mu[0].numpy(), bf.marginals, atol=1e-12)


@pytest.mark.parametrize("single_root", [True, False])
def test_fast_path_acceptance_is_accurate(single_root: bool) -> None:
    # Longer sentences: compare the fast path's *accepted* sentences and the combined result
    # with the exact elimination, across scales where both branches are taken.
    g = torch.Generator().manual_seed(11)
    B, N = 48, 30
    lengths = torch.randint(1, N + 1, (B,), generator=g)
    rejected = 0
    for scale in [1.0, 10.0, 30.0, 1e4]:
        s = torch.randn(B, N + 1, N + 1, generator=g, dtype=torch.float64) * scale
        logw = prepare_log_weights(s, arc_mask(lengths, N, s.device))
        lz_fast, mu_fast, ok = mt._lu_matrix_tree(logw, lengths, single_root)
        lz_ex, mu_ex = mt._exact_matrix_tree(logw, lengths, single_root)
        lz, mu = arc_marginals(s, lengths, single_root)
        rel = (lz_fast - lz_ex).abs() / lz_ex.abs().clamp_min(1)
        zero = torch.zeros(1, dtype=torch.float64)
        assert float(torch.cat([rel[ok], zero]).max()) < 1e-9
        assert float(torch.cat([(mu_fast - mu_ex).abs().amax(dim=(1, 2))[ok], zero]).max()) < 1e-7
        assert float(((lz - lz_ex).abs() / lz_ex.abs().clamp_min(1)).max()) < 1e-9
        assert float((mu - mu_ex).abs().max()) < 1e-7
        rejected += int((~ok).sum())
        if scale == 1.0:
            assert bool(ok.all())  # smooth scores never need the slow path
    assert rejected > 0  # the exact path was exercised


def test_length_buckets_do_not_change_results() -> None:
    g = torch.Generator().manual_seed(5)
    B, N = 260, 12  # large enough for bucketing
    lengths = torch.randint(0, N + 1, (B,), generator=g)
    s = torch.randn(B, N + 1, N + 1, generator=g, dtype=torch.float64) * 3
    s[::7] *= 20  # some sentences take the exact path
    assert len(mt._length_buckets(lengths)) > 1
    s.requires_grad_(True)
    v = torch.randn(s.shape, generator=g, dtype=torch.float64)
    log_z, mu = arc_marginals(s, lengths)
    (hv,) = torch.autograd.grad((mu * v).sum(), s)
    for b in range(0, B, 13):
        sb = s[b : b + 1].detach().requires_grad_(True)
        lz_b, mu_b = arc_marginals(sb, lengths[b : b + 1])
        (hv_b,) = torch.autograd.grad((mu_b * v[b : b + 1]).sum(), sb)
        assert torch.allclose(log_z[b], lz_b[0], rtol=1e-12, atol=1e-12)
        assert torch.allclose(mu[b], mu_b[0], atol=1e-12)
        assert torch.allclose(hv[b], hv_b[0], atol=1e-10)


def test_padding_and_garbage_are_ignored() -> None:
    s, lengths = random_scores(1, [4], 3.0, torch.float64, garbage=False)
    big = torch.full((3, 9, 9), float("nan"), dtype=torch.float64)
    big[1, :5, :5] = s[0]
    big[1, :, 0] = 123.0  # column 0 and the diagonal are ignored too
    big[1].diagonal().fill_(float("inf"))
    big[0, :3, :3] = 0.0
    big[2] = 1.0
    lz_big, mu_big = arc_marginals(big, torch.tensor([2, 4, 8]))
    lz, mu = arc_marginals(s, lengths)
    assert torch.allclose(lz_big[1], lz[0], atol=1e-12)
    assert torch.allclose(mu_big[1, :5, :5], mu[0], atol=1e-12)
    assert torch.count_nonzero(mu_big[1, 5:]) == 0 and torch.count_nonzero(mu_big[1, :, 5:]) == 0


@pytest.mark.parametrize("single_root", [True, False])
def test_one_word_and_empty_sentences(single_root: bool) -> None:
    s = torch.randn(3, 3, 3, dtype=torch.float64)
    log_z, mu = arc_marginals(s, torch.tensor([1, 0, 2]), single_root)
    assert log_z[0].item() == pytest.approx(s[0, 0, 1].item(), abs=1e-12)
    assert mu[0, 0, 1].item() == pytest.approx(1.0, abs=1e-12)
    assert mu[0].sum().item() == pytest.approx(1.0, abs=1e-12)
    assert log_z[1].item() == 0.0 and torch.count_nonzero(mu[1]) == 0
    lz_all_empty, mu_all_empty = arc_marginals(torch.zeros(2, 1, 1), torch.tensor([0, 0]))
    assert torch.equal(lz_all_empty, torch.zeros(2)) and mu_all_empty.shape == (2, 1, 1)


def test_forbidden_arcs() -> None:
    s, lengths = random_scores(9, [5], 2.0, torch.float64, garbage=False)
    s[0, 0, 2] = s[0, 3, 1] = s[0, 1, 4] = float("-inf")
    log_z, mu = arc_marginals(s, lengths)
    bf = brute_force(sentence(s, 0, 5), True)  # -inf trees get probability 0
    assert log_z[0].item() == pytest.approx(bf.log_partition, abs=1e-10)
    np.testing.assert_allclose(mu[0].numpy(), bf.marginals, atol=1e-12)
    assert mu[0, 0, 2].item() == 0.0 or mu[0, 0, 2].item() < 1e-300


def test_deterministic() -> None:
    s, lengths = random_scores(4, LENGTHS * 4, 40.0, garbage=False)  # mixes both paths
    a = arc_marginals(s, lengths)
    b = arc_marginals(s, lengths)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --------------------------------------------------------------------------- entropy etc.


@pytest.mark.parametrize("single_root", [True, False])
@pytest.mark.parametrize("scale", [1.0, 5.0, 20.0, 50.0])
def test_entropy_and_log_likelihood_match_brute_force(single_root: bool, scale: float) -> None:
    scores, lengths = random_scores(40 + int(scale), LENGTHS, scale, torch.float64)
    rng = np.random.default_rng(int(scale))
    gold = torch.zeros(len(LENGTHS), scores.shape[1], dtype=torch.long)
    bfs = []
    for b, n in enumerate(LENGTHS):
        bf = brute_force(sentence(scores, b, n), single_root)
        bfs.append(bf)
        gold[b, : n + 1] = torch.from_numpy(bf.trees[rng.integers(len(bf.trees))].copy())
    ent = tree_entropy(scores, lengths, single_root)
    ll = tree_log_likelihood(scores, gold, lengths, single_root)
    for b, bf in enumerate(bfs):
        assert ent[b].item() == pytest.approx(bf.entropy, abs=1e-8)
        want = bf.score(gold[b].numpy()) - bf.log_partition
        assert ll[b].item() == pytest.approx(want, abs=1e-9 * max(1.0, abs(want)))
    # float32 inputs: computed in float64 inside, so still accurate
    ent32 = tree_entropy(scores.float(), lengths, single_root)
    assert ent32.dtype == torch.float32
    assert torch.allclose(ent32.double(), ent, atol=1e-4, rtol=1e-4)


def test_distribution_object_agrees_with_functions() -> None:
    scores, lengths = random_scores(8, LENGTHS, 3.0, torch.float64)
    dist = DependencyTreeDistribution(scores, lengths)
    lz, mu = arc_marginals(scores, lengths)
    assert torch.equal(dist.log_partition, lz) and torch.equal(dist.marginals, mu)
    assert torch.equal(dist.argmax, max_spanning_tree(scores, lengths))
    assert torch.allclose(dist.entropy, tree_entropy(scores, lengths))
    heads = dist.argmax
    assert torch.allclose(dist.log_prob(heads), tree_log_likelihood(scores, heads, lengths))
    assert torch.equal(log_partition(scores, lengths), lz)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("single_root", [True, False])
@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_gradient_of_log_partition_is_marginals(single_root: bool, scale: float) -> None:
    scores, lengths = random_scores(60 + int(scale), LENGTHS, scale, torch.float32, garbage=False)
    scores.requires_grad_(True)
    log_z, mu = arc_marginals(scores, lengths, single_root)
    (grad,) = torch.autograd.grad(log_z.sum(), scores)
    assert grad.dtype == torch.float32
    assert torch.equal(grad, mu.detach())
    for b, n in enumerate(LENGTHS):  # and both equal the brute-force marginals
        bf = brute_force(sentence(scores, b, n), single_root)
        np.testing.assert_allclose(grad[b, : n + 1, : n + 1].numpy(), bf.marginals, atol=1e-4)


def test_training_loss_backward() -> None:
    """loss = -(gold score - log Z): scores are used twice; grad = marginals - gold arcs."""
    scores, lengths = random_scores(70, LENGTHS, 2.0, torch.float32, garbage=False)
    scores.requires_grad_(True)
    gold = max_spanning_tree(scores.detach() + torch.randn_like(scores), lengths)
    N = scores.shape[1] - 1
    words = torch.arange(N + 1)[None, :] <= lengths[:, None]
    words[:, 0] = False
    gold_score = (scores.gather(1, gold[:, None, :]).squeeze(1) * words).sum(-1)
    loss = -(gold_score - log_partition(scores, lengths)).sum()
    loss.backward()
    onehot = torch.zeros_like(scores)
    onehot.scatter_(1, gold[:, None, :], 1.0)
    onehot = onehot * words[:, None, :]
    _, mu = arc_marginals(scores.detach(), lengths)
    assert torch.allclose(scores.grad, mu - onehot, atol=1e-6)
    scores.grad = None
    (-tree_log_likelihood(scores, gold, lengths).sum()).backward()
    assert torch.allclose(scores.grad, mu - onehot, atol=1e-6)


@pytest.mark.parametrize("single_root", [True, False])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_marginals_backward_is_exact_hessian_vector_product(single_root: bool, scale: float) -> None:
    lengths_l = [5, 3, 1, 4]
    scores, lengths = random_scores(80 + int(scale), lengths_l, scale, torch.float64, garbage=False)
    scores.requires_grad_(True)
    _, mu = arc_marginals(scores, lengths, single_root)
    v = torch.randn(scores.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (hv,) = torch.autograd.grad((mu * v).sum(), scores)
    for b, n in enumerate(lengths_l):
        bf = brute_force(sentence(scores, b, n), single_root)
        p = tree_probabilities(bf)
        # arc indicators of every tree, flattened over (h, d); Hessian = covariance
        ind = np.zeros((len(bf.trees), (n + 1) ** 2))
        for d in range(1, n + 1):
            ind[np.arange(len(bf.trees)), bf.trees[:, d] * (n + 1) + d] = 1.0
        mean = p @ ind
        cov = (ind * p[:, None]).T @ ind - np.outer(mean, mean)
        vb = sentence(v, b, n).reshape(-1)
        want = (cov @ vb).reshape(n + 1, n + 1)
        np.testing.assert_allclose(hv[b, : n + 1, : n + 1].numpy(), want, atol=1e-9)


@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_gradcheck(scale: float) -> None:
    scores, lengths = random_scores(90 + int(scale), [3, 2], scale, torch.float64, garbage=False)
    scores.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: arc_marginals(s, lengths), (scores,), atol=1e-5, rtol=1e-4)
    assert torch.autograd.gradcheck(lambda s: tree_entropy(s, lengths, False), (scores,), atol=1e-5)


def test_entropy_gradient_matches_brute_force() -> None:
    scores, lengths = random_scores(95, [5, 4], 3.0, torch.float64, garbage=False)
    scores.requires_grad_(True)
    (grad,) = torch.autograd.grad(tree_entropy(scores, lengths).sum(), scores)
    w = torch.randn(scores.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps = 1e-5
    for b, n in enumerate([5, 4]):
        s, wb = sentence(scores, b, n), sentence(w, b, n)
        fd = (brute_force(s + eps * wb).entropy - brute_force(s - eps * wb).entropy) / (2 * eps)
        assert float((grad[b, : n + 1, : n + 1].numpy() * wb).sum()) == pytest.approx(fd, abs=1e-7)


# --------------------------------------------------------------------------- stability


@pytest.mark.parametrize("single_root", [True, False])
def test_extreme_scores_long_sentences(single_root: bool) -> None:
    g = torch.Generator().manual_seed(123 + single_root)
    lengths = torch.tensor([250, 180])
    scores = (torch.randn(2, 251, 251, generator=g) * 1e4).requires_grad_(True)
    log_z, mu = arc_marginals(scores, lengths, single_root)
    ent = tree_entropy(scores, lengths, single_root)
    assert torch.isfinite(log_z).all() and torch.isfinite(mu).all() and torch.isfinite(ent).all()
    mu64 = mu.detach().double()
    assert float(mu64.min()) >= 0.0
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(mu64[b, :, 1 : n + 1].sum(0), torch.ones(n, dtype=torch.float64), atol=1e-5)
        if single_root:
            assert mu64[b, 0].sum().item() == pytest.approx(1.0, abs=1e-5)
    # log Z lies between the best tree's score and that plus log(number of trees)
    heads = max_spanning_tree(scores.detach(), lengths, single_root)
    s64 = scores.detach().double()
    for b, n in enumerate(lengths.tolist()):
        best = s64[b, heads[b, 1 : n + 1], torch.arange(1, n + 1)].sum().item()
        lz = log_z[b].item()
        assert best - 1.0 <= lz <= best + n * math.log(n + 1) + 1.0  # float32 rounding: ~0.5
    loss = log_z.sum() + ent.sum() + (mu * torch.randn_like(mu)).sum()
    loss.backward()
    assert torch.isfinite(scores.grad).all()


def test_moderate_scales_longer_sentences_against_exact() -> None:
    # the combined result stays within float32 precision of the exact elimination
    g = torch.Generator().manual_seed(321)
    lengths = torch.randint(1, 41, (40,), generator=g)
    for scale in [0.1, 3.0, 15.0, 100.0]:
        s = torch.randn(40, 41, 41, generator=g, dtype=torch.float64) * scale
        log_z, mu = arc_marginals(s, lengths)
        logw = prepare_log_weights(s, arc_mask(lengths, 40, s.device))
        lz_ex, mu_ex = mt._exact_matrix_tree(logw, lengths, True)
        assert float(((log_z - lz_ex).abs() / lz_ex.abs().clamp_min(1)).max()) < 1e-9
        assert float((mu - mu_ex).abs().max()) < 1e-7


# --------------------------------------------------------------------------- API


def test_shape_and_value_errors() -> None:
    s = torch.zeros(2, 4, 4)
    with pytest.raises(ValueError, match=r"\[B, N\+1, N\+1\]"):
        arc_marginals(torch.zeros(2, 4, 3), torch.tensor([3, 3]))
    with pytest.raises(ValueError, match=r"\[B, N\+1, N\+1\]"):
        arc_marginals(torch.zeros(4, 4), torch.tensor([3]))
    with pytest.raises(ValueError, match=r"lengths must have shape \[B\]"):
        arc_marginals(s, torch.tensor([3, 3, 3]))
    with pytest.raises(ValueError, match="lengths must lie in"):
        arc_marginals(s, torch.tensor([4, 1]))
    with pytest.raises(TypeError):
        arc_marginals(s, torch.tensor([3.0, 1.0]))
    bad = s.clone()
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        arc_marginals(bad, torch.tensor([3, 3]))
    with pytest.raises(ValueError, match=r"heads must have shape \[B, N\+1\]"):
        tree_log_likelihood(s, torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 3]))
    with pytest.raises(ValueError, match="heads"):
        tree_log_likelihood(s, torch.tensor([[0, 1, 1, 1], [0, 0, 1, 2]]), torch.tensor([3, 3]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    scores, lengths = random_scores(77, LENGTHS * 20, 30.0, torch.float32, garbage=False)
    dev = torch.device("cuda")
    s_cuda = scores.to(dev).requires_grad_(True)
    lz, mu = arc_marginals(s_cuda, lengths.to(dev))
    assert lz.device.type == "cuda" and mu.device.type == "cuda"
    lz_cpu, mu_cpu = arc_marginals(scores, lengths)
    assert torch.allclose(lz.cpu(), lz_cpu, rtol=1e-6) and torch.allclose(mu.cpu(), mu_cpu, atol=1e-6)
    (lz.sum() + tree_entropy(s_cuda, lengths.to(dev)).sum()).backward()
    assert torch.isfinite(s_cuda.grad).all()
    heads = max_spanning_tree(s_cuda.detach(), lengths.to(dev))
    assert heads.device.type == "cuda"
    assert torch.equal(heads.cpu(), max_spanning_tree(scores, lengths))
