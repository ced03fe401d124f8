"""Tests of :func:`unnparse.structures.max_spanning_tree` (Chu-Liu-Edmonds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unnparse.structures import max_spanning_tree
from unnparse.structures._checks import arc_mask
from unnparse.structures.brute_force import brute_force


def is_tree(heads: np.ndarray, n: int) -> bool:
    """Every word reaches ROOT by following heads (no cycles, heads within the sentence)."""
    if heads[0] != 0 or np.any(heads[1 : n + 1] < 0) or np.any(heads[1 : n + 1] > n):
        return False
    for d in range(1, n + 1):
        x, steps = d, 0
        while x != 0 and steps <= n:
            x, steps = int(heads[x]), steps + 1
        if x != 0:
            return False
    return True


def tree_score(scores: torch.Tensor, heads: torch.Tensor, n: int) -> float:
    s = scores.double()
    return float(s[heads[1 : n + 1], torch.arange(1, n + 1)].sum())


@pytest.mark.parametrize("single_root", [True, False])
@pytest.mark.parametrize("scale,integer", [(1.0, False), (50.0, False), (2.0, True)])
def test_mst_matches_brute_force(single_root: bool, scale: float, integer: bool) -> None:
    g = torch.Generator().manual_seed(int(scale) + 10 * single_root + integer)
    lengths_l = [1, 2, 3, 4, 5, 6, 6, 5, 6, 3] * 3
    N = 6
    s = torch.randn(len(lengths_l), N + 1, N + 1, generator=g) * scale
    if integer:  # many ties
        s = s.round()
    lengths = torch.tensor(lengths_l)
    s = s.masked_fill(~arc_mask(lengths, N, s.device), float("nan"))  # ignored entries
    heads = max_spanning_tree(s, lengths, single_root)
    assert heads.dtype == torch.int64 and heads.shape == (len(lengths_l), N + 1)
    for b, n in enumerate(lengths_l):
        h = heads[b].numpy()
        assert np.all(h[n + 1 :] == 0) and h[0] == 0
        assert is_tree(h, n)
        if single_root:
            assert int((h[1 : n + 1] == 0).sum()) == 1
        block = s[b, : n + 1, : n + 1].double().numpy().copy()
        block[:, 0] = 0
        np.fill_diagonal(block, 0)
        bf = brute_force(block, single_root)
        assert bf.score(h) == pytest.approx(bf.best_score, abs=1e-9)


def _single_root_by_enumerating_the_root_child(s: torch.Tensor, n: int) -> float:
    """Best single-root tree score via n multi-root decodings, each allowing one ROOT arc."""
    best = -np.inf
    for r in range(1, n + 1):
        t = s[: n + 1, : n + 1].clone().double()
        t[0, 1:] = float("-inf")
        t[0, r] = s[0, r]
        h = max_spanning_tree(t[None], torch.tensor([n]), single_root=False)[0]
        assert int((h[1:] == 0).sum()) == 1 and h[r] == 0
        best = max(best, tree_score(t, h, n))
    return best


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_single_root_is_exact_on_longer_sentences(scale: float) -> None:
    g = torch.Generator().manual_seed(int(scale))
    # root arcs boosted so that the unconstrained optimum has several ROOT children
    s = torch.randn(6, 31, 31, generator=g, dtype=torch.float64) * scale
    s[:, 0, :] += 3 * scale
    lengths = torch.tensor([30, 25, 17, 30, 9, 2])
    heads = max_spanning_tree(s, lengths, single_root=True)
    multi = max_spanning_tree(s, lengths, single_root=False)
    n_multi_roots = 0
    for b, n in enumerate(lengths.tolist()):
        h = heads[b].numpy()
        assert is_tree(h, n) and int((h[1 : n + 1] == 0).sum()) == 1
        assert tree_score(s[b], heads[b], n) == pytest.approx(
            _single_root_by_enumerating_the_root_child(s[b], n), abs=1e-9
        )
        assert is_tree(multi[b].numpy(), n)
        assert tree_score(s[b], multi[b], n) >= tree_score(s[b], heads[b], n) - 1e-9
        n_multi_roots += int((multi[b, 1 : n + 1] == 0).sum()) > 1
    assert n_multi_roots > 0  # the single-root constraint was binding


def test_mst_against_ufal_if_available() -> None:
    ufal = pytest.importorskip("ufal.chu_liu_edmonds")
    g = torch.Generator().manual_seed(3)
    for n in [3, 10, 40, 80]:
        s = torch.randn(1, n + 1, n + 1, generator=g, dtype=torch.float64) * 5
        heads = max_spanning_tree(s, torch.tensor([n]), single_root=False)[0]
        m = s[0].numpy().T.copy()  # ufal: m[d, h] = score of h -> d
        np.fill_diagonal(m, np.nan)
        m[0, :] = np.nan
        ufal_heads, _ = ufal.chu_liu_edmonds(m)
        ref = torch.tensor([0] + list(ufal_heads[1:]))
        assert tree_score(s[0], heads, n) == pytest.approx(tree_score(s[0], ref, n), abs=1e-9)


@pytest.mark.parametrize("single_root", [True, False])
def test_extreme_scores_long_sentence(single_root: bool) -> None:
    g = torch.Generator().manual_seed(7)
    s = torch.randn(2, 251, 251, generator=g) * 1e4
    lengths = torch.tensor([250, 123])
    heads = max_spanning_tree(s, lengths, single_root)
    for b, n in enumerate(lengths.tolist()):
        h = heads[b].numpy()
        assert is_tree(h, n)
        if single_root:
            assert int((h[1 : n + 1] == 0).sum()) == 1
        # no single-arc change that keeps a (single-root) tree improves the score
        base = tree_score(s[b], heads[b], n)
        for d in range(1, n + 1, 25):
            for new_h in range(0, n + 1, 7):
                if new_h == d:
                    continue
                h2 = heads[b].clone()
                h2[d] = new_h
                roots = int((h2[1 : n + 1] == 0).sum())
                if is_tree(h2.numpy(), n) and (roots == 1 or not single_root):
                    assert tree_score(s[b], h2, n) <= base + 1e-6


def test_forbidden_arcs_are_avoided() -> None:
    g = torch.Generator().manual_seed(8)
    s = torch.randn(1, 8, 8, generator=g) * 3
    s[0, 0, 1:] = float("-inf")
    s[0, 0, 4] = -50.0  # the only allowed ROOT arc, and a bad one
    s[0, 2, 3] = 100.0
    s[0, 2, 3] = float("-inf")  # forbidding beats a high score
    heads = max_spanning_tree(s, torch.tensor([7]), single_root=False)[0]
    assert heads[4] == 0 and int((heads[1:] == 0).sum()) == 1 and heads[3] != 2
    # everything forbidden: still a tree
    heads = max_spanning_tree(torch.full((1, 4, 4), float("-inf")), torch.tensor([3]))[0]
    assert is_tree(heads.numpy(), 3)


def test_small_and_empty_sentences() -> None:
    s = torch.randn(3, 3, 3)
    heads = max_spanning_tree(s, torch.tensor([1, 0, 2]))
    assert heads[0].tolist() == [0, 0, 0] and heads[1].tolist() == [0, 0, 0]
    assert int((heads[2, 1:] == 0).sum()) == 1
    assert max_spanning_tree(torch.zeros(0, 5, 5), torch.zeros(0, dtype=torch.long)).shape == (0, 5)


def test_deterministic_and_errors() -> None:
    g = torch.Generator().manual_seed(9)
    s = torch.randn(50, 21, 21, generator=g).round()  # ties
    lengths = torch.randint(1, 21, (50,), generator=g)
    assert torch.equal(max_spanning_tree(s, lengths), max_spanning_tree(s.clone(), lengths))
    with pytest.raises(ValueError, match=r"\[B, N\+1, N\+1\]"):
        max_spanning_tree(torch.zeros(2, 3, 4), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="lengths must lie in"):
        max_spanning_tree(torch.zeros(2, 3, 3), torch.tensor([3, 2]))
    bad = torch.zeros(1, 3, 3)
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        max_spanning_tree(bad, torch.tensor([2]))
