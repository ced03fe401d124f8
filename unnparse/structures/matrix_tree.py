"""Matrix-tree theorem: log-partition function and arc marginals of non-projective trees.

Convention (shared by all of :mod:`unnparse.structures`): ``scores`` is a float tensor
``[B, N+1, N+1]`` with ``scores[b, h, d]`` the score of the arc ``h -> d``; index 0 is the
artificial ROOT and the words of sentence ``b`` are ``1..lengths[b]``.  Column 0, the
diagonal and every position past ``lengths[b]`` are ignored.  The distribution is
``p(tree) ∝ exp(sum of its arc scores)`` over all non-projective dependency trees, with
exactly one word attached to ROOT when ``single_root`` (as Universal Dependencies require)
or at least one otherwise.

How it is computed (all in float64, whatever the input dtype):

1. **Fast path** (any device, batched): every dependent's incoming scores are shifted by
   their maximum (exact: each tree picks one head per word, so ``log Z`` shifts by the sum
   of the maxima), the weighted Laplacian is built (Koo et al., 2007: ROOT weights on the
   diagonal for multi-root; the first word's row replaced by the ROOT weights for single
   root), padded words get an identity block, and one batched LU factorisation gives both
   ``log det`` and the inverse, hence ``log Z`` and the marginals.
2. **Check**: a sentence is accepted only if its determinant is positive and finite, its
   1-norm condition number ``||L||_1 ||L^{-1}||_1`` is at most :data:`MAX_CONDITION`
   (so the float64 result has at least ~7 correct digits), all marginals are
   ``>= -1e-9``, and every word's incoming marginals (and, for a single root, the ROOT's
   outgoing ones) sum to 1 within ``1e-7``.
3. **Exact fallback** for the rejected sentences (sharp scores whose per-word maxima form
   cycles make the Laplacian numerically singular; random scores at scale >~ 15 do):
   :mod:`unnparse.structures.elimination`, a subtraction-free log-domain elimination with
   an exact reverse pass, accurate to a few float64 ulps in every regime (CPU/numba; CUDA
   inputs are copied to the CPU for those sentences only).  There is therefore no
   "point-mass" approximation anywhere: marginals are accurate to ~1e-8 absolute or better
   (fast path; typically ~1e-13) or a few float64 ulps (fallback), and ``log Z`` to ~1e-9
   relative or better, for scores up to 1e4 and beyond and any sentence length.
   Before the triangular solves, sentences whose LU pivots already prove the condition
   number too large are sent straight to the fallback.

Gradients: the gradient of ``log_partition`` is the marginals (computed once, in the
forward pass).  The returned marginals are differentiable too; their backward pass is a
Hessian-vector product computed exactly by complex-step differentiation of the same two
algorithms, so ``tree_entropy`` and losses on marginals can be trained through.  Double
backward through these gradients is not supported.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ._checks import arc_mask, check_heads, check_scores, prepare_log_weights
from .elimination import eliminate_batch

__all__ = ["arc_marginals", "log_partition", "tree_entropy", "tree_log_likelihood", "MAX_CONDITION"]

#: Largest accepted 1-norm condition number of the (shifted) Laplacian on the fast path.
MAX_CONDITION = 1e8
#: Tolerance of the "marginals sum to one" and "marginals are non-negative" checks.
_SUM_TOL = 1e-7
_NEG_TOL = 1e-9
#: Step of the complex-step derivative (relative to the largest direction component).
_COMPLEX_STEP = 1e-20
#: Length bucketing of large batches on the fast path.
_MAX_BUCKETS = 4
_MIN_BUCKET_SIZE = 64


def _lu_matrix_tree(
    logw: torch.Tensor, lengths: torch.Tensor, single_root: bool, skip: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fast path: ``(log Z [B], marginals [B, N+1, N+1], accepted [B] bool)``.

    ``logw`` is float64 or complex128 with ``-inf`` at every ignored entry; ``lengths`` is on
    the same device.  ``skip`` (bool ``[B]`` on the device) marks sentences whose result is
    not needed (they are replaced by identities before the solve).  For complex input
    ``accepted`` is meaningless.
    """
    B, N1, _ = logw.shape
    N = N1 - 1
    dev = logw.device
    cplx = logw.is_complex()
    real = logw.real if cplx else logw
    shift = real.amax(dim=1)  # [B, N+1]: max incoming score per dependent
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    W = torch.exp(logw - shift[:, None, :])  # 0 at ignored entries
    r = W[:, 0, 1:]  # ROOT weights [B, N]
    A = W[:, 1:, 1:]  # word -> word weights [B, N, N]
    pad = torch.arange(N, device=dev)[None, :] >= lengths[:, None]  # [B, N]
    indeg = A.sum(dim=1)
    diag = indeg + pad.to(indeg.dtype)
    if not single_root:
        diag = diag + r
    L = A.neg()
    L.diagonal(dim1=-2, dim2=-1).add_(diag)
    nonempty = lengths >= 1
    if single_root:  # Koo et al. (2007): the first word's row holds the ROOT weights
        L[:, 0, :] = torch.where(nonempty[:, None], r, L[:, 0, :])
    LU, piv, _ = torch.linalg.lu_factor_ex(L)
    eye = torch.eye(N, dtype=L.dtype, device=dev).expand(B, N, N)
    u = LU.diagonal(dim1=-2, dim2=-1)
    if not cplx:
        # Hopeless sentences are known before the solve: with P L = Lf U (|Lf| <= 1),
        # ||L^-1||_1 >= ||U^-1||_1 / N >= 1 / (N min|u_ii|), and ||L||_1 >= the largest
        # diagonal entry (or ROOT weight), so kappa_1(L) exceeds MAX_CONDITION if the test
        # below fails.  Solving them anyway is slow (denormals, infinities) and useless.
        padf = pad.to(indeg.dtype)
        if single_root:  # row 1 holds the ROOT weights, rows 2..N keep their diagonal
            lower_l = r.amax(dim=-1)
            if N > 1:
                lower_l = torch.maximum(lower_l, (indeg + padf)[:, 1:].amax(dim=-1))
        else:
            lower_l = (indeg + r + padf).amax(dim=-1)
        hopeless = ~(u.abs().amin(dim=-1) * (N * MAX_CONDITION) >= lower_l)  # NaN counts as hopeless
        skip = hopeless if skip is None else skip | hopeless
    if skip is not None and bool(skip.any()):
        LU = torch.where(skip[:, None, None], eye, LU)
        piv = torch.where(skip[:, None], torch.arange(1, N + 1, device=dev, dtype=piv.dtype), piv)
    X = torch.linalg.lu_solve(LU, piv, eye)
    u_sign = torch.sign(u.real) if cplx else torch.sign(u)
    swaps = (piv != torch.arange(1, N + 1, device=dev, dtype=piv.dtype)).sum(dim=-1)
    det_sign = u_sign.prod(dim=-1) * (1 - 2 * (swaps % 2)).to(u_sign.dtype)
    log_z = torch.log(u * u_sign).sum(dim=-1) + shift.sum(dim=-1)

    # d log det / d L[i, j] = X[j, i]:
    #   multi:  mu[h, d] = A[h, d] (X[d, d] - X[d, h]),            mu[ROOT, d] = r[d] X[d, d]
    #   single: mu[h, d] = A[h, d] ([d != 1] X[d, d] - [h != 1] X[d, h]), mu[ROOT, d] = r[d] X[d, 1]
    Xd = X.diagonal(dim1=-2, dim2=-1)
    if single_root:
        Xd = Xd.clone()
        Xd[:, 0] = 0
        mu_root = r * X[:, :, 0]
    else:
        mu_root = r * Xd
    D = Xd[:, None, :] - X.mT  # D[h, d] = X[d, d] - X[d, h]
    if single_root:
        D[:, 0, :] = Xd
    mu = torch.empty_like(W)
    mu[:, :, 0] = 0
    mu[:, 0, 1:] = mu_root
    torch.mul(A, D, out=mu[:, 1:, 1:])
    if cplx:
        return log_z, mu, torch.ones(B, dtype=torch.bool, device=dev)

    # Acceptance checks (see the module docstring).
    norm_l = (2 * indeg + r + pad.to(indeg.dtype)).amax(dim=-1)  # >= ||L||_1
    norm_x = X.abs().sum(dim=-2).amax(dim=-1)
    ok = (det_sign > 0) & torch.isfinite(log_z) & (norm_l * norm_x <= MAX_CONDITION) & ~skip
    ok &= mu.amin(dim=(1, 2)) >= -_NEG_TOL  # NaN fails every comparison
    col_err = (mu[:, :, 1:].sum(dim=1) - (~pad).to(mu.dtype)).abs()
    ok &= col_err.amax(dim=-1) <= _SUM_TOL
    if single_root:
        root_err = (mu_root.sum(dim=-1) - nonempty.to(mu.dtype)).abs()
        ok &= root_err <= _SUM_TOL
    return log_z, mu, ok


def _exact_matrix_tree(
    logw: torch.Tensor, lengths_cpu: torch.Tensor, single_root: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact path (numba, CPU) on a sub-batch; returns tensors on ``logw``'s device."""
    S = logw.detach().to("cpu").numpy()
    n = lengths_cpu.numpy().astype(np.int64)
    B = S.shape[0]
    log_z = np.zeros(B, dtype=S.dtype)
    mu = np.zeros_like(S)
    eliminate_batch(np.ascontiguousarray(S), n, bool(single_root), log_z, mu)
    return torch.from_numpy(log_z).to(logw.device), torch.from_numpy(mu).to(logw.device)


def _length_buckets(lengths_cpu: torch.Tensor) -> list[torch.Tensor]:
    """Split a batch into groups of similar lengths (sorted, equal counts).

    The cubic LU work and the elementwise work then scale with each group's own maximum
    length instead of the batch maximum; small batches are kept whole.
    """
    B = lengths_cpu.shape[0]
    k = min(_MAX_BUCKETS, B // _MIN_BUCKET_SIZE)
    if k <= 1:
        return [torch.arange(B)]
    order = torch.argsort(lengths_cpu, stable=True)
    return [chunk for chunk in torch.tensor_split(order, k) if chunk.numel() > 0]


def _fast_then_exact(
    logw: torch.Tensor, lengths_cpu: torch.Tensor, single_root: bool, exact: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lengths = lengths_cpu.to(logw.device)
    forced = None if exact is None else exact.to(logw.device)
    log_z, mu, ok = _lu_matrix_tree(logw, lengths, single_root, forced)
    redo = ~ok.cpu() if exact is None else exact
    if bool(redo.any()):
        idx = redo.nonzero().squeeze(1)
        idx_dev = idx.to(logw.device)
        lz_e, mu_e = _exact_matrix_tree(logw.index_select(0, idx_dev), lengths_cpu[idx], single_root)
        log_z = log_z.index_copy(0, idx_dev, lz_e)
        mu = mu.index_copy(0, idx_dev, mu_e)
    return log_z, mu, redo


def _matrix_tree(
    logw: torch.Tensor,
    lengths_cpu: torch.Tensor,
    single_root: bool,
    exact: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fast path + exact fallback.  Returns ``(log Z, marginals, used_exact [B] bool cpu)``.

    ``exact`` (bool, CPU) forces the exact path for exactly the given sentences (used to
    take the complex-step derivative through the same algorithm as the forward pass).
    """
    B, N1, _ = logw.shape
    if B == 0 or N1 == 1:  # nothing to do: empty batch or only empty sentences
        return logw.new_zeros(B), torch.zeros_like(logw), torch.zeros(B, dtype=torch.bool)
    buckets = _length_buckets(lengths_cpu)
    if len(buckets) == 1:
        return _fast_then_exact(logw, lengths_cpu, single_root, exact)
    log_z = logw.new_zeros(B)
    mu = torch.zeros_like(logw)
    used = torch.zeros(B, dtype=torch.bool)
    for idx in buckets:
        n1 = int(lengths_cpu[idx].max()) + 1
        idx_dev = idx.to(logw.device)
        sub = logw[idx_dev, :n1, :n1]
        forced = None if exact is None else exact[idx]
        lz_b, mu_b, used_b = _fast_then_exact(sub, lengths_cpu[idx], single_root, forced)
        log_z[idx_dev] = lz_b
        mu[idx_dev, :n1, :n1] = mu_b
        used[idx] = used_b
    return log_z, mu, used


class _ArcMarginals(torch.autograd.Function):
    """``(log Z, marginals)`` with exact first-order backward for both outputs."""

    @staticmethod
    def forward(ctx, scores, lengths_cpu, mask, single_root, out_dtype):  # type: ignore[override]
        logw = prepare_log_weights(scores.detach().to(torch.float64), mask)
        log_z, mu, used_exact = _matrix_tree(logw, lengths_cpu, single_root)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(logw, mu, mask)
        ctx.lengths_cpu = lengths_cpu
        ctx.used_exact = used_exact
        ctx.single_root = single_root
        ctx.in_dtype = scores.dtype
        return log_z.to(out_dtype), mu.to(out_dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_log_z, g_mu):  # type: ignore[override]
        logw, mu, mask = ctx.saved_tensors
        grad = None
        if g_log_z is not None:
            grad = g_log_z.to(torch.float64)[:, None, None] * mu
        if g_mu is not None:
            hvp = _hessian_vector_product(
                logw, ctx.lengths_cpu, mask, g_mu.to(torch.float64), ctx.single_root, ctx.used_exact
            )
            grad = hvp if grad is None else grad + hvp
        if grad is not None:
            grad = grad.to(ctx.in_dtype)
        return grad, None, None, None, None


def _hessian_vector_product(
    logw: torch.Tensor,
    lengths_cpu: torch.Tensor,
    mask: torch.Tensor,
    v: torch.Tensor,
    single_root: bool,
    used_exact: torch.Tensor,
) -> torch.Tensor:
    """``(d marginals / d scores)[v]`` (the Hessian of ``log Z`` is symmetric) by complex step."""
    v = torch.where(mask, v, torch.zeros_like(v))
    scale = v.abs().amax(dim=(1, 2), keepdim=True)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    step = _COMPLEX_STEP / scale
    z = torch.complex(logw, torch.where(mask, v * step, torch.zeros_like(v)))
    _, mu_c, _ = _matrix_tree(z, lengths_cpu, single_root, exact=used_exact)
    return mu_c.imag / step


def _validate(scores: torch.Tensor, lengths: torch.Tensor) -> tuple[int, int, torch.Tensor, torch.Tensor]:
    B, N, lengths_cpu = check_scores(scores, lengths)
    if scores.is_complex():
        raise TypeError("scores must be real")
    mask = arc_mask(lengths_cpu, N, scores.device)
    return B, N, lengths_cpu, mask


def arc_marginals(
    scores: torch.Tensor, lengths: torch.Tensor, single_root: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-partition function and arc marginals of the non-projective tree distribution.

    Args:
        scores: ``[B, N+1, N+1]`` float tensor; ``scores[b, h, d]`` is the score of the arc
            ``h -> d`` (index 0 = ROOT, words ``1..lengths[b]``).  Column 0, the diagonal
            and positions past ``lengths[b]`` are ignored; ``-inf`` forbids an arc (it is
            treated as 1000 nats below the sentence's lowest finite score); NaN or ``+inf``
            in a used entry raise ``ValueError``.
        lengths: ``[B]`` integer tensor, number of words of each sentence (excluding ROOT),
            ``0 <= lengths[b] <= N``.
        single_root: exactly one word attached to ROOT (UD); otherwise at least one.

    Returns:
        ``(log_partition [B], marginals [B, N+1, N+1])`` in the dtype of ``scores``, where
        ``marginals[b, h, d] = P(arc h -> d)`` under ``p(tree) ∝ exp(sum of arc scores)``
        and ignored entries are 0 (an empty sentence has ``log_partition = 0``).  Computed
        in float64 (see the module docstring).  The gradient of ``log_partition`` w.r.t.
        ``scores`` equals ``marginals``; the marginals are differentiable as well (exact
        Hessian-vector products); double backward is not supported.
    """
    _, _, lengths_cpu, mask = _validate(scores, lengths)
    log_z, mu = _ArcMarginals.apply(scores, lengths_cpu, mask, bool(single_root), scores.dtype)
    return log_z, mu


def _arc_marginals64(
    scores: torch.Tensor, lengths: torch.Tensor, single_root: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(log Z, marginals, float64 scores with forbidden/ignored arcs zeroed, mask)``."""
    B, N, lengths_cpu, mask = _validate(scores, lengths)
    log_z, mu = _ArcMarginals.apply(scores, lengths_cpu, mask, bool(single_root), torch.float64)
    s64 = scores.to(torch.float64)
    s64 = torch.where(mask & ~torch.isneginf(s64), s64, torch.zeros_like(s64))
    return log_z, mu, s64, mask


def log_partition(scores: torch.Tensor, lengths: torch.Tensor, single_root: bool = True) -> torch.Tensor:
    """``log Z [B]`` of the tree distribution (see :func:`arc_marginals` for the convention)."""
    return arc_marginals(scores, lengths, single_root)[0]


def tree_entropy(scores: torch.Tensor, lengths: torch.Tensor, single_root: bool = True) -> torch.Tensor:
    """Entropy ``[B]`` (nats) of the tree distribution: ``log Z - <scores, marginals>``.

    Same convention as :func:`arc_marginals`.  Computed in float64 (the difference cancels
    badly in float32 for sharp scores) and returned in the dtype of ``scores``;
    differentiable.  Round-off can make a near-zero entropy slightly negative (~1e-9 for
    scores around 1e4).
    """
    log_z, mu, s64, _ = _arc_marginals64(scores, lengths, single_root)
    return (log_z - (s64 * mu).sum(dim=(1, 2))).to(scores.dtype)


def _gold_score64(scores: torch.Tensor, heads: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Float64 score ``[B]`` of the trees ``heads`` (validated), differentiable."""
    B, N, _, mask = _validate(scores, lengths)
    check_heads(heads, B, N)
    heads = heads.to(device=scores.device, dtype=torch.int64)
    words = mask.any(dim=1)  # [B, N+1]: positions 1..n
    lengths_dev = lengths.to(device=scores.device, dtype=torch.int64)
    pos = torch.arange(N + 1, device=scores.device)
    wrong = (heads < 0) | (heads > lengths_dev[:, None]) | (heads == pos[None, :])
    if bool((wrong & words).any()):
        raise ValueError("heads[b, d] of every word d must lie in [0, lengths[b]] and differ from d")
    safe_heads = torch.where(words, heads, torch.zeros_like(heads))
    s64 = scores.to(torch.float64)
    gold = s64.gather(1, safe_heads[:, None, :]).squeeze(1)  # scores[b, heads[b, d], d]
    return torch.where(words, gold, torch.zeros_like(gold)).sum(dim=-1)


def tree_log_likelihood(
    scores: torch.Tensor, heads: torch.Tensor, lengths: torch.Tensor, single_root: bool = True
) -> torch.Tensor:
    """Log-probability ``[B]`` of the given trees: gold tree score minus ``log Z``.

    Args:
        scores: ``[B, N+1, N+1]``, as in :func:`arc_marginals`.
        heads: ``[B, N+1]`` integer tensor, ``heads[b, d]`` = head of word ``d`` for
            ``1 <= d <= lengths[b]``; position 0 and padding are ignored.
        lengths: ``[B]`` number of words.
        single_root: as in :func:`arc_marginals`.

    Computed in float64, returned in the dtype of ``scores``.  Heads outside the sentence or
    self-loops raise ``ValueError``; otherwise the heads are not checked to form a
    (single-root) tree (for a non-tree the result is its score minus ``log Z``).
    Differentiable (gradient = one-hot gold arcs minus marginals).
    """
    gold = _gold_score64(scores, heads, lengths)
    log_z = _arc_marginals64(scores, lengths, single_root)[0]
    return (gold - log_z).to(scores.dtype)
