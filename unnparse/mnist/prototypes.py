"""Digit prototypes as a picture (Figure 3): one row per digit, one column per generation sweep t = 1..k."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from unnparse.mnist.model import MnistUNN
from unnparse.png import draw_text, write_png

__all__ = ["GAP", "LABEL", "SCALE", "grid_size", "prototype_grid", "write_prototypes"]

SCALE = 2  # screen pixels per image pixel
GAP = 2  # pixels between cells
LABEL = 12  # height of the "t=N" header row
_BACKGROUND = 96
_TEXT = 255


def grid_size(sweeps: int, classes: int = 10, image_size: int = 28) -> tuple[int, int]:
    """(width, height) in pixels of the grid drawn by :func:`prototype_grid`."""
    cell = image_size * SCALE + GAP
    return GAP + sweeps * cell, LABEL + GAP + classes * cell


def prototype_grid(prototypes: Tensor) -> np.ndarray:
    """``uint8 [H, W]`` picture of ``prototypes`` [sweeps, classes, 28, 28] with values in [-1, 1]."""
    sweeps, classes, size, _ = prototypes.shape
    width, height = grid_size(sweeps, classes, size)
    canvas = np.full((height, width), _BACKGROUND, dtype=np.uint8)
    pixels = ((prototypes.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    pixels = pixels.numpy().repeat(SCALE, axis=2).repeat(SCALE, axis=3)
    cell = size * SCALE + GAP
    for t in range(sweeps):
        draw_text(canvas, f"t={t + 1}", GAP + t * cell, 3, scale=2, value=_TEXT)
        for c in range(classes):
            top, left = LABEL + GAP + c * cell, GAP + t * cell
            canvas[top : top + size * SCALE, left : left + size * SCALE] = pixels[t, c]
    return canvas


def write_prototypes(model: MnistUNN, path: str | os.PathLike[str]) -> Tensor:
    """Generate the prototypes of every digit for t = 1..k and write the grid to ``path`` (PNG).

    Returns the prototypes [k, classes, 28, 28].
    """
    prototypes = model.prototypes()
    write_png(path, prototype_grid(prototypes))
    return prototypes
