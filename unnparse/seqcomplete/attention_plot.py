"""Pictures of the attention variable S after each of its updates (Figures 4 and 8)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from unnparse.png import colormap, draw_text, text_width, write_png
from unnparse.seqcomplete.data import Batch
from unnparse.seqcomplete.model import SeqCompletionUNN

__all__ = ["attention_maps", "attention_picture", "write_attention"]

CELL = 20  # pixels per attention weight
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


def attention_picture(maps: list[tuple[str, Tensor]], labels: list[str]) -> np.ndarray:
    """``uint8 [H, W, 3]``: one heat map per entry of ``maps`` (rows: queries, columns: keys), side by side,
    the tokens ``labels`` along the axes."""
    n = len(labels)
    left = max(text_width(s, FONT) for s in labels) + 6
    top = 2 * _ROW
    side = n * CELL
    width = left + len(maps) * (side + GAP)
    height = top + side + GAP // 2
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    black = (0, 0, 0)
    for i, label in enumerate(labels):
        draw_text(
            canvas,
            label,
            left - 4 - text_width(label, FONT),
            top + i * CELL + (CELL - 5 * FONT) // 2,
            scale=FONT,
            value=black,
        )
    for p, (title, weights) in enumerate(maps):
        x0 = left + p * (side + GAP)
        draw_text(canvas, title, x0, 2, scale=FONT, value=black)
        for j, label in enumerate(labels):
            draw_text(
                canvas, label, x0 + j * CELL + (CELL - text_width(label, FONT)) // 2, _ROW + 2, scale=FONT, value=black
            )
        rgb = colormap(weights.numpy()).repeat(CELL, axis=0).repeat(CELL, axis=1)
        canvas[top : top + side, x0 : x0 + side] = rgb
    return canvas


def write_attention(
    model: SeqCompletionUNN, batch: Batch, path: str | os.PathLike[str], sweeps: int | None = None
) -> list[tuple[str, Tensor]]:
    """Draw the attention maps of the one-instance ``batch`` (masked positions labelled ``_``) into ``path``."""
    n = int(batch.lengths[0])
    labels = ["_" if bool(batch.masked[0, i]) else str(int(batch.tokens[0, i])) for i in range(n)]
    maps = attention_maps(model, batch, sweeps)
    write_png(path, attention_picture(maps, labels))
    return maps
