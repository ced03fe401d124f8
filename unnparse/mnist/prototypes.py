"""Digit prototypes as a figure (Figure 3): one row per digit, one column per generation sweep t = 1..k.

The figure is one grey-scale image of all prototypes (white: 1, black: -1), the rows labelled with their digit and
the columns with their sweep; its size is bounded (:data:`MAX_PIXELS`), the cells shrinking from :data:`SCALE` screen
pixels per image pixel to one, and a number of sweeps that cannot be drawn with one is refused
(:func:`check_drawable`).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

from unnparse.figures import figure_style, new_figure, write_png
from unnparse.mnist.model import MnistUNN

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MAX_PIXELS", "SCALE", "check_drawable", "figure_size", "prototype_figure", "write_prototypes"]

SCALE = 2  # screen pixels per image pixel (fewer when that would pass MAX_PIXELS)
GAP = 2  # image pixels between cells
MAX_PIXELS = 16_000_000  # pixels of the whole figure at most
TITLE = "Digit prototypes generated from each label"
_LEFT, _RIGHT = 56, 12  # pixels: digit axis label and tick labels; right edge
_TOP, _BOTTOM = 70, 10  # pixels: title, sweep axis label and tick labels; bottom edge
_CHAR = 7  # pixels of a tick-label character at most
_MIN_WIDTH = 340  # pixels: room for the title


def _grid(sweeps: int, classes: int, size: int) -> tuple[int, int]:
    """(width, height) in image pixels of the grid of prototypes, gaps included."""
    return sweeps * size + (sweeps - 1) * GAP, classes * size + (classes - 1) * GAP


def _scale(sweeps: int, classes: int, size: int) -> int:
    """Screen pixels per image pixel: :data:`SCALE`, or less to fit :data:`MAX_PIXELS` (0: cannot fit)."""
    for scale in range(SCALE, 0, -1):
        width, height = _size(sweeps, classes, size, scale)
        if width * height <= MAX_PIXELS:
            return scale
    return 0


def _size(sweeps: int, classes: int, size: int, scale: int) -> tuple[int, int]:
    grid_width, grid_height = _grid(sweeps, classes, size)
    return max(_MIN_WIDTH, _LEFT + grid_width * scale + _RIGHT), _TOP + grid_height * scale + _BOTTOM


def figure_size(sweeps: int, classes: int = 10, image_size: int = 28) -> tuple[int, int]:
    """(width, height) in pixels of the figure drawn by :func:`prototype_figure`.

    Raises:
        ValueError: too many sweeps to draw (see :func:`check_drawable`).
    """
    check_drawable(sweeps, classes, image_size)
    return _size(sweeps, classes, image_size, _scale(sweeps, classes, image_size))


def check_drawable(sweeps: int, classes: int = 10, image_size: int = 28) -> None:
    """ValueError (one line) unless the prototypes of ``sweeps`` sweeps fit :data:`MAX_PIXELS` with one screen pixel
    per image pixel: call it before generating them."""
    if _scale(sweeps, classes, image_size) < 1:
        most = 1
        while _scale(most + 1, classes, image_size) >= 1:
            most += 1
        raise ValueError(f"{sweeps:,} sweeps are too many to draw: at most {most:,}")


def prototype_figure(prototypes: Tensor) -> Figure:
    """Figure of ``prototypes`` [sweeps, classes, size, size] (values in [-1, 1]): a row per digit (labelled 0..9),
    a column per sweep (labelled 1..k), of :func:`figure_size` pixels.

    Raises:
        ValueError: too many sweeps to draw (see :func:`check_drawable`).
    """
    sweeps, classes, size, _ = prototypes.shape
    width, height = figure_size(sweeps, classes, size)
    scale = _scale(sweeps, classes, size)
    grid_width, grid_height = _grid(sweeps, classes, size)
    grid = np.full((grid_height, grid_width), np.nan, dtype=np.float32)  # NaN: the gaps, drawn white
    values = prototypes.detach().float().cpu().clamp(-1, 1).numpy()
    step = size + GAP
    for t in range(sweeps):
        for c in range(classes):
            grid[c * step : c * step + size, t * step : t * step + size] = values[t, c]
    centres = [i * step + (size - 1) / 2 for i in range(max(sweeps, classes))]
    # a sweep number is written over every column it fits, else over every few columns
    every = max(1, math.ceil((len(str(sweeps)) * _CHAR + 6) / (size * scale)))
    with figure_style():
        figure = new_figure(width, height)
        left = _LEFT + (width - _LEFT - _RIGHT - grid_width * scale) // 2  # centred under the title
        axes = figure.add_axes(
            (left / width, _BOTTOM / height, grid_width * scale / width, grid_height * scale / height)
        )
        axes.imshow(grid, cmap=_grey(), vmin=-1, vmax=1, interpolation="nearest", aspect="auto")
        axes.set_yticks(centres[:classes], labels=[str(c) for c in range(classes)])
        shown = range(0, sweeps, every)
        axes.set_xticks([centres[t] for t in shown], labels=[str(t + 1) for t in shown])
        axes.xaxis.tick_top()
        axes.xaxis.set_label_position("top")
        axes.tick_params(length=0, pad=4)
        axes.set_xlabel("sweep t")
        axes.set_ylabel("digit")
        for spine in axes.spines.values():
            spine.set_visible(False)
        figure.suptitle(TITLE, x=0.5, y=1 - 6 / height, va="top", fontsize=10)
    return figure


def _grey():  # -> matplotlib Colormap (imported lazily)
    """Grey scale, -1 black to 1 white; NaN (the gaps) white."""
    from matplotlib import colormaps

    return colormaps["gray"].with_extremes(bad="white")


def write_prototypes(model: MnistUNN, path: str | os.PathLike[str]) -> Tensor:
    """Generate the prototypes of every digit for t = 1..k and write their figure to ``path`` (PNG, atomically).

    Returns the prototypes [k, classes, 28, 28].

    Raises:
        ValueError: too many sweeps to draw (checked before the prototypes are generated).
    """
    check_drawable(model.config.unn_iter, model.config.classes, model.config.image_size)
    prototypes = model.prototypes()
    write_png(prototype_figure(prototypes), path)
    return prototypes
