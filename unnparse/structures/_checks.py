"""Input validation and masks shared by the structure functions (private)."""

from __future__ import annotations

import torch

__all__ = ["check_scores", "check_heads", "arc_mask", "prepare_log_weights"]

#: Arcs scored ``-inf`` (forbidden) are given this many nats less than the lowest finite
#: score of their sentence, so that every computation stays finite.  Their probability is
#: below ``exp(-FORBIDDEN_MARGIN)`` relative to the lowest allowed arc.
FORBIDDEN_MARGIN = 1000.0


def check_scores(scores: torch.Tensor, lengths: torch.Tensor) -> tuple[int, int, torch.Tensor]:
    """Validate ``scores [B, N+1, N+1]`` and ``lengths [B]``; return ``(B, N, lengths_cpu)``."""
    if not isinstance(scores, torch.Tensor) or not isinstance(lengths, torch.Tensor):
        raise TypeError("scores and lengths must be torch tensors")
    if scores.dim() != 3 or scores.shape[1] != scores.shape[2] or scores.shape[1] < 1:
        raise ValueError(
            f"scores must have shape [B, N+1, N+1] (scores[b, h, d] = score of arc h -> d, "
            f"index 0 = ROOT), got {tuple(scores.shape)}"
        )
    if not (scores.is_floating_point() or scores.is_complex()):
        raise TypeError(f"scores must be a floating-point tensor, got {scores.dtype}")
    B, N = scores.shape[0], scores.shape[1] - 1
    if lengths.dim() != 1 or lengths.shape[0] != B:
        raise ValueError(f"lengths must have shape [B] = [{B}], got {tuple(lengths.shape)}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be an integer tensor, got {lengths.dtype}")
    lengths_cpu = lengths.detach().to("cpu", torch.int64)
    if B > 0 and (int(lengths_cpu.min()) < 0 or int(lengths_cpu.max()) > N):
        raise ValueError(
            f"lengths must lie in [0, N] = [0, {N}] (number of words, excluding ROOT), "
            f"got min {int(lengths_cpu.min())}, max {int(lengths_cpu.max())}"
        )
    return B, N, lengths_cpu


def check_heads(heads: torch.Tensor, B: int, N: int) -> None:
    """Validate ``heads [B, N+1]`` (``heads[b, d]`` = head of word ``d``)."""
    if not isinstance(heads, torch.Tensor):
        raise TypeError("heads must be a torch tensor")
    if heads.shape != (B, N + 1):
        expected = f"[B, N+1] = [{B}, {N + 1}] (heads[b, d] = head of word d)"
        raise ValueError(f"heads must have shape {expected}, got {tuple(heads.shape)}")
    if heads.is_floating_point() or heads.is_complex():
        raise TypeError(f"heads must be an integer tensor, got {heads.dtype}")


def arc_mask(lengths: torch.Tensor, N: int, device: torch.device) -> torch.Tensor:
    """Boolean ``[B, N+1, N+1]`` mask of the arcs that exist: ``h <= n``, ``1 <= d <= n``, ``h != d``."""
    lengths = lengths.to(device)
    idx = torch.arange(N + 1, device=device)
    in_sent = idx[None, :] <= lengths[:, None]  # [B, N+1]
    dep_ok = in_sent & (idx[None, :] >= 1)
    mask = in_sent[:, :, None] & dep_ok[:, None, :]
    return mask & (idx[:, None] != idx[None, :])[None]


def prepare_log_weights(scores64: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Float64 (or complex) log-weights with ignored entries set to ``-inf``.

    Raises ``ValueError`` on NaN or ``+inf`` in a used entry; ``-inf`` entries (forbidden
    arcs) are replaced by the sentence's lowest finite score minus :data:`FORBIDDEN_MARGIN`.
    """
    s = scores64.masked_fill(~mask, 0)
    real = s.real if s.is_complex() else s
    if not bool(torch.isfinite(real.sum())):  # rare: inspect the non-finite entries
        if bool((torch.isnan(real) | torch.isposinf(real)).any()):
            raise ValueError("scores contain NaN or +inf in a used entry")
        neg = torch.isneginf(real)
        if bool(neg.any()):
            fin = mask & ~neg
            inf = torch.full_like(real, float("inf"))
            lo = torch.where(fin, real, inf).amin(dim=(1, 2))
            lo = torch.where(torch.isfinite(lo), lo, torch.zeros_like(lo)) - FORBIDDEN_MARGIN
            s = torch.where(neg, lo[:, None, None].to(s.dtype), s)
    return s.masked_fill_(~mask, float("-inf"))
