"""Pictures of the attention variable S after each of its updates (Figures 4 and 8).

A picture's size is bounded whatever the sequence: a heat map is at most :data:`MAX_SIDE` pixels on a side and the
picture at most :data:`MAX_WIDTH` pixels wide, the cells shrinking from :data:`CELL` pixels to fit (axis labels are
left out where they would not fit their cell); a sequence or a number of sweeps that cannot be drawn with at least
one pixel per weight is refused before anything is computed (:func:`check_drawable`).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from unnparse.png import colormap, draw_text, text_width, write_png
from unnparse.seqcomplete.data import Batch
from unnparse.seqcomplete.model import SeqCompletionUNN

__all__ = [
    "MAX_SIDE",
    "MAX_SWEEPS",
    "MAX_WIDTH",
    "attention_maps",
    "attention_picture",
    "cell_size",
    "check_drawable",
    "write_attention",
]

CELL = 20  # pixels per attention weight (fewer when that would pass the bounds below)
MAX_SIDE = 1280  # pixels on a side of one heat map at most: a sequence of up to 64 items keeps 20-pixel cells
MAX_WIDTH = 16384  # pixels of the whole picture's width at most
MAX_SWEEPS = 32  # sweeps drawn at most (two maps each in the forward-backward order)
GAP = 16  # pixels between panels
FONT = 2  # font scale: glyphs of 6x10 pixels
_ROW = 5 * FONT + 6  # height of a text row


@torch.no_grad()
def attention_maps(model: SeqCompletionUNN, batch: Batch, sweeps: int | None = None) -> list[tuple[str, Tensor]]:
    """S [n, n] after each of its updates for the first instance of ``batch``, with a title: ``t=T f``/``t=T b``
    for the forward and backward update of sweep T in the forward-backward order, ``t=T`` otherwise."""
    model.eval()
    out = model.infer(batch, sweeps=sweeps, trace=True)
    n = int(batch.lengths[0])
    maps: list[tuple[str, Tensor]] = []
    per_sweep: dict[int, int] = {}
    for step in out.trace:
        if step.variable != "S" or step.state is None:
            continue
        per_sweep[step.sweep] = per_sweep.get(step.sweep, 0) + 1
        title = f"t={step.sweep + 1}"
        if model.config.order == "fb":
            title += " f" if per_sweep[step.sweep] == 1 else " b"
        maps.append((title, step.state[0, :n, :n].float().cpu()))
    return maps


def check_drawable(n_positions: int, sweeps: int, left: int = 0) -> None:
    """ValueError (one line) unless ``sweeps`` sweeps over a sequence of ``n_positions`` items can be drawn within
    the bounds with at least one pixel per weight, after a margin of ``left`` pixels: call it before running the
    model."""
    if sweeps > MAX_SWEEPS:
        raise ValueError(f"{sweeps} sweeps are too many to draw: at most {MAX_SWEEPS}")
    if cell_size(n_positions, 2 * sweeps, left) < 1:
        raise ValueError(
            f"a sequence of {n_positions:,} items over {sweeps} sweeps is too long to draw: at most "
            f"{min(MAX_SIDE, (MAX_WIDTH - left) // (2 * sweeps) - GAP):,} items"
        )


def cell_size(n_positions: int, n_maps: int, left: int) -> int:
    """Pixels per weight of ``n_maps`` heat maps of ``n_positions`` squared after a margin of ``left`` pixels:
    :data:`CELL`, or less so that a map fits :data:`MAX_SIDE` and the picture :data:`MAX_WIDTH` (0: cannot fit)."""
    n, maps = max(1, n_positions), max(1, n_maps)
    by_width = ((MAX_WIDTH - left) // maps - GAP) // n
    return max(0, min(CELL, MAX_SIDE // n, by_width))


def _left_margin(labels: list[str]) -> int:
    """Pixels left of the heat maps: room for the row labels."""
    return max(text_width(s, FONT) for s in labels) + 6


def attention_picture(maps: list[tuple[str, Tensor]], labels: list[str]) -> np.ndarray:
    """``uint8 [H, W, 3]``: one heat map per entry of ``maps`` (rows: queries, columns: keys), side by side,
    the tokens ``labels`` along the axes; cells of :func:`cell_size` pixels, labels only where they fit.

    Raises:
        ValueError: too many positions or maps to draw within the bounds (see :func:`check_drawable`).
    """
    n = len(labels)
    left = _left_margin(labels)
    top = 2 * _ROW
    cell = cell_size(n, len(maps), left)
    if cell < 1:
        raise ValueError(f"{len(maps)} attention maps of {n:,} items are too many to draw")
    side = n * cell
    row_labels = cell >= 5 * FONT
    width = left + len(maps) * (side + GAP)
    height = top + side + GAP // 2
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    black = (0, 0, 0)
    for i, label in enumerate(labels if row_labels else []):
        draw_text(
            canvas,
            label,
            left - 4 - text_width(label, FONT),
            top + i * cell + (cell - 5 * FONT) // 2,
            scale=FONT,
            value=black,
        )
    for p, (title, weights) in enumerate(maps):
        x0 = left + p * (side + GAP)
        draw_text(canvas, title, x0, 2, scale=FONT, value=black)
        for j, label in enumerate(labels):
            if text_width(label, FONT) <= cell:
                x = x0 + j * cell + (cell - text_width(label, FONT)) // 2
                draw_text(canvas, label, x, _ROW + 2, scale=FONT, value=black)
        rgb = colormap(weights.numpy()).repeat(cell, axis=0).repeat(cell, axis=1)
        canvas[top : top + side, x0 : x0 + side] = rgb
    return canvas


def write_attention(
    model: SeqCompletionUNN, batch: Batch, path: str | os.PathLike[str], sweeps: int | None = None
) -> list[tuple[str, Tensor]]:
    """Draw the attention maps of the one-instance ``batch`` (masked positions labelled ``_``) into ``path``.

    Raises:
        ValueError: a sequence or a number of sweeps too large to draw (checked before the model runs).
    """
    n = int(batch.lengths[0])
    labels = ["_" if bool(batch.masked[0, i]) else str(int(batch.tokens[0, i])) for i in range(n)]
    check_drawable(n, model.config.eval_iter if sweeps is None else sweeps, _left_margin(labels))
    maps = attention_maps(model, batch, sweeps)
    write_png(path, attention_picture(maps, labels))
    return maps
