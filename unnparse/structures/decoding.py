"""Maximum spanning (dependency) tree decoding: Chu-Liu-Edmonds, compiled with numba.

Convention as in :mod:`unnparse.structures`: ``scores[b, h, d]`` is the score of the arc
``h -> d`` (index 0 = ROOT, words ``1..lengths[b]``); the result ``heads[b, d]`` is the head
of word ``d``.

Single root, exactly: a penalty ``P = (n + 1) (max - min) + 1`` (``max``/``min`` over the
sentence's used finite scores, computed in float64) is subtracted from every ROOT arc.  A
tree with ``k`` ROOT arcs then scores ``score - k P``; since any two trees differ by less
than ``n (max - min)`` in unpenalised score, every tree with one ROOT arc beats every tree
with two or more, so plain Chu-Liu-Edmonds returns the best single-root tree.  The gaps the
penalty creates are at least 1, far above float64 round-off.

The algorithm is the classic contraction version (greedy heads, contract a cycle into a new
node whose entering arcs are re-scored by ``s(h, d) - s(head(d), d)``, repeat, then expand in
reverse order), ``O(n^3)`` in the worst case and usually close to ``O(n^2)``.  Ties are broken
towards the lowest head index, so the result is deterministic.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from ._checks import check_scores

__all__ = ["max_spanning_tree"]


@njit(cache=True)
def _cle(S, n):  # pragma: no cover - compiled
    """Chu-Liu-Edmonds on one sentence: ``S`` is ``[n+1, n+1]`` finite float64 scores.

    Returns the heads ``[n+1]`` (``heads[0] = 0``) of a maximum spanning arborescence
    rooted at node 0 (any number of ROOT children).
    """
    heads = np.zeros(n + 1, np.int64)
    if n == 0:
        return heads
    M = 2 * n + 1  # node ids: 0..n original words, n+1.. contracted cycles
    W = np.full((M, M), -np.inf)
    oh = np.zeros((M, M), np.int64)  # original head of the arc that realises u -> v
    od = np.zeros((M, M), np.int64)  # original dependent of that arc
    for h in range(n + 1):
        for d in range(1, n + 1):
            if h != d:
                W[h, d] = S[h, d]
                oh[h, d] = h
                od[h, d] = d
    alive = np.zeros(M, np.bool_)
    alive[: n + 1] = True
    par = np.full(M, -1, np.int64)  # greedy head of every alive node (current ids)
    cparent = np.full(M, -1, np.int64)  # the cycle node a node was contracted into
    mem_start = np.zeros(M, np.int64)  # members of cycle node c: mem_list[mem_start[c]:mem_end[c]]
    mem_end = np.zeros(M, np.int64)
    mem_list = np.zeros(2 * n + 1, np.int64)
    cyc_h = np.zeros(M, np.int64)  # original arc chosen for a member inside its cycle
    cyc_d = np.zeros(M, np.int64)
    n_mem = 0
    next_id = n + 1

    for v in range(1, n + 1):
        best = -np.inf
        bh = -1
        for u in range(n + 1):
            if u != v and W[u, v] > best:
                best = W[u, v]
                bh = u
        par[v] = bh

    mark = np.zeros(M, np.int64)  # 0 = unvisited, else (walk start + 1)
    while True:
        # find a cycle among the greedy heads of the alive nodes
        for x in range(next_id):
            mark[x] = 0
        cyc_node = -1
        for s in range(1, next_id):
            if not alive[s] or mark[s] != 0:
                continue
            x = s
            while x != 0 and mark[x] == 0:
                mark[x] = s + 1
                x = par[x]
            if x != 0 and mark[x] == s + 1:
                cyc_node = x
                break
        if cyc_node < 0:
            break
        # contract the cycle through cyc_node into a new node c
        c = next_id
        next_id += 1
        m0 = n_mem
        x = cyc_node
        while True:
            mem_list[n_mem] = x
            n_mem += 1
            cyc_h[x] = oh[par[x], x]
            cyc_d[x] = od[par[x], x]
            cparent[x] = c
            alive[x] = False
            x = par[x]
            if x == cyc_node:
                break
        mem_start[c] = m0
        mem_end[c] = n_mem
        alive[c] = True
        for u in range(c):
            if not alive[u]:
                continue
            # u -> cycle: best entering point, re-scored by the cycle arc it replaces
            best = -np.inf
            bd = -1
            for i in range(m0, n_mem):
                d = mem_list[i]
                val = W[u, d] - W[par[d], d]
                if val > best:
                    best = val
                    bd = d
            W[u, c] = best
            oh[u, c] = oh[u, bd]
            od[u, c] = od[u, bd]
            if u == 0:
                continue
            # cycle -> u: best member as head
            best = -np.inf
            bh = -1
            for i in range(m0, n_mem):
                h = mem_list[i]
                if W[h, u] > best:
                    best = W[h, u]
                    bh = h
            W[c, u] = best
            oh[c, u] = oh[bh, u]
            od[c, u] = od[bh, u]
            if cparent[par[u]] == c:
                par[u] = c
        best = -np.inf
        bh = -1
        for u in range(c):
            if alive[u] and W[u, c] > best:
                best = W[u, c]
                bh = u
        par[c] = bh

    # expand: alive nodes take their greedy arc; cycles are opened in reverse order, the
    # member that contains the entering arc's dependent takes that arc, the others keep
    # their cycle arcs
    in_h = np.zeros(M, np.int64)
    in_d = np.zeros(M, np.int64)
    for v in range(1, next_id):
        if alive[v]:
            in_h[v] = oh[par[v], v]
            in_d[v] = od[par[v], v]
    for c in range(next_id - 1, n, -1):
        d0 = in_d[c]
        x = d0
        while cparent[x] != c:
            x = cparent[x]
        for i in range(mem_start[c], mem_end[c]):
            m = mem_list[i]
            if m == x:
                in_h[m] = in_h[c]
                in_d[m] = d0
            else:
                in_h[m] = cyc_h[m]
                in_d[m] = cyc_d[m]
    for d in range(1, n + 1):
        heads[d] = in_h[d]
    return heads


@njit(cache=True)
def _cle_batch(S, lengths, single_root, heads):  # pragma: no cover - compiled
    """Batched decoding; ``S`` is ``[B, N+1, N+1]`` float64, writes ``heads [B, N+1]``."""
    for b in range(S.shape[0]):
        n = lengths[b]
        heads[b, :] = 0
        if n == 0:
            continue
        lo = np.inf
        hi = -np.inf
        n_forbidden = 0
        for h in range(n + 1):
            for d in range(1, n + 1):
                if h == d:
                    continue
                x = S[b, h, d]
                if np.isnan(x) or x == np.inf:
                    raise ValueError("scores contain NaN or +inf in a used entry")
                if x == -np.inf:
                    n_forbidden += 1
                else:
                    lo = min(lo, x)
                    hi = max(hi, x)
        if lo > hi:  # every arc forbidden
            lo = 0.0
            hi = 0.0
        if n_forbidden > 0:
            # any tree using a forbidden arc loses to any tree that avoids them
            forbidden = lo - ((n + 1) * (hi - lo) + 1.0)
            lo = forbidden
        else:
            forbidden = lo
        T = np.empty((n + 1, n + 1))
        for h in range(n + 1):
            for d in range(1, n + 1):
                x = S[b, h, d]
                T[h, d] = forbidden if (h == d or x == -np.inf) else x
        if single_root:
            penalty = (n + 1) * (hi - lo) + 1.0
            for d in range(1, n + 1):
                T[0, d] -= penalty
        hb = _cle(T, n)
        for d in range(1, n + 1):
            heads[b, d] = hb[d]


def max_spanning_tree(scores: torch.Tensor, lengths: torch.Tensor, single_root: bool = True) -> torch.Tensor:
    """Highest-scoring non-projective dependency tree of every sentence (Chu-Liu-Edmonds).

    Args:
        scores: ``[B, N+1, N+1]`` float tensor; ``scores[b, h, d]`` is the score of the arc
            ``h -> d`` (index 0 = ROOT, words ``1..lengths[b]``).  Column 0, the diagonal
            and positions past ``lengths[b]`` are ignored; ``-inf`` forbids an arc (used only
            if no tree avoids it).  NaN / ``+inf`` in a used entry raise ``ValueError``.
        lengths: ``[B]`` integer tensor, number of words (excluding ROOT).
        single_root: exactly one word attached to ROOT (exact, see the module docstring);
            otherwise any number (at least one).

    Returns:
        ``heads``: ``[B, N+1]`` int64 tensor on ``scores.device``; ``heads[b, d]`` is the head
        of word ``d`` for ``1 <= d <= lengths[b]``, 0 elsewhere.  Computed on the CPU in
        float64 (CUDA inputs are copied).
    """
    B, N, lengths_cpu = check_scores(scores, lengths)
    if scores.is_complex():
        raise TypeError("scores must be real")
    S = scores.detach().to("cpu", torch.float64)
    heads = np.zeros((B, N + 1), dtype=np.int64)
    _cle_batch(np.ascontiguousarray(S.numpy()), lengths_cpu.numpy(), bool(single_root), heads)
    return torch.from_numpy(heads).to(scores.device)
