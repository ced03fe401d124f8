"""Figures of the attention variable S after each of its updates (Figures 4 and 8).

One heat map per update of S, titled ``t=T f``/``t=T b`` (forward and backward update of sweep T) or ``t=T``, up
to :data:`MAX_COLUMNS` side by side and further ones on the rows below; S[i, j] is the weight of key j for query i,
so a map's rows are the queries and its columns the keys, both labelled with the sequence's tokens (``_`` for a
masked item), and one colour bar gives the scale (0 to 1: the rows of S sum to 1).

A figure's size is bounded whatever the sequence: a heat map is at most :data:`MAX_SIDE` pixels on a side and the
figure at most :data:`MAX_PIXELS` pixels, the cells shrinking from :data:`CELL` pixels to fit (tick labels are
thinned to every few items where they would not fit their cell); a sequence or a number of sweeps that cannot be
drawn with at least one pixel per weight is refused before anything is computed (:func:`check_drawable`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from unnparse.figures import figure_style, new_figure, write_png
from unnparse.seqcomplete.data import Batch
from unnparse.seqcomplete.model import SeqCompletionUNN

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CELL",
    "MAX_COLUMNS",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MAX_SWEEPS",
    "attention_figure",
    "attention_maps",
    "cell_size",
    "check_drawable",
    "figure_size",
    "write_attention",
]

CELL = 20  # pixels per attention weight (fewer when that would pass the bounds below)
MAX_SIDE = 1280  # pixels on a side of one heat map at most: a sequence of up to 64 items keeps 20-pixel cells
MAX_PIXELS = 16_000_000  # pixels of the whole figure at most (its RGBA canvas: 64 MB)
MAX_SWEEPS = 32  # sweeps drawn at most (two maps each in the forward-backward order)
MAX_COLUMNS = 6  # heat maps side by side at most; further ones wrap to the next row
MAX_LABEL = 6  # characters of a token label at most (longer ones are cut with "…")
TITLE = "Attention S after each update (rows: queries, columns: keys)"
# layout, in pixels at the figures' 100 dots per inch (8-point tick labels, 9-point axis labels)
_CHAR = 7  # width of a tick-label character at most
_LINE = 12  # height of a tick label
_TOP = 30  # the figure's title
_PANEL_TITLE = 20  # a heat map's title
_BELOW = 40  # under a heat map: key tick labels and the axis label "key"
_GAP = 14  # between heat maps side by side
_BOTTOM = 6
_BAR = 100  # right of the heat maps: the colour bar, its tick labels and label
_MIN_WIDTH = 440  # room for the title


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


@dataclass(frozen=True)
class _Layout:
    """Where the heat maps go, in pixels from the figure's top left corner."""

    n: int  # items of the sequence
    cell: int  # pixels per weight
    columns: int
    rows: int
    left: int  # pixels left of the first column: query tick labels and the axis label "query"
    width: int
    height: int

    @property
    def side(self) -> int:
        return self.n * self.cell

    @property
    def row_height(self) -> int:
        return _PANEL_TITLE + self.side + _BELOW

    def panel(self, index: int) -> tuple[int, int]:
        """(left, top) of heat map ``index``."""
        row, column = divmod(index, self.columns)
        return self.left + column * (self.side + _GAP), _TOP + row * self.row_height + _PANEL_TITLE


def _layout(n_positions: int, n_maps: int, label_chars: int, cell: int) -> _Layout:
    n, maps = max(1, n_positions), max(1, n_maps)
    columns = min(maps, MAX_COLUMNS)
    rows = math.ceil(maps / columns)
    left = 8 + 16 + min(label_chars, MAX_LABEL) * _CHAR + 8
    side = n * cell
    width = max(_MIN_WIDTH, left + columns * side + (columns - 1) * _GAP + _BAR)
    height = _TOP + rows * (_PANEL_TITLE + side + _BELOW) + _BOTTOM
    return _Layout(n, cell, columns, rows, left, width, height)


def cell_size(n_positions: int, n_maps: int, label_chars: int = 2) -> int:
    """Pixels per weight of ``n_maps`` heat maps of ``n_positions`` squared, labelled with tokens of up to
    ``label_chars`` characters: :data:`CELL`, or less so that a map fits :data:`MAX_SIDE` and the figure
    :data:`MAX_PIXELS` (0: cannot fit)."""
    for cell in range(min(CELL, MAX_SIDE // max(1, n_positions)), 0, -1):
        layout = _layout(n_positions, n_maps, label_chars, cell)
        if layout.width * layout.height <= MAX_PIXELS:
            return cell
    return 0


def figure_size(n_positions: int, n_maps: int, label_chars: int = 2) -> tuple[int, int]:
    """(width, height) in pixels of the figure of ``n_maps`` heat maps of ``n_positions`` items (see
    :func:`cell_size`); (0, 0) when they cannot be drawn."""
    cell = cell_size(n_positions, n_maps, label_chars)
    if cell < 1:
        return 0, 0
    layout = _layout(n_positions, n_maps, label_chars, cell)
    return layout.width, layout.height


def check_drawable(n_positions: int, sweeps: int, maps_per_sweep: int = 2, label_chars: int = 2) -> None:
    """ValueError (one line) unless ``sweeps`` sweeps over a sequence of ``n_positions`` items (``maps_per_sweep``
    updates of S each) can be drawn within the bounds with at least one pixel per weight: call it before running
    the model."""
    if sweeps > MAX_SWEEPS:
        raise ValueError(f"{sweeps} sweeps are too many to draw: at most {MAX_SWEEPS}")
    n_maps = sweeps * maps_per_sweep
    if cell_size(n_positions, n_maps, label_chars) < 1:
        low, high = 0, MAX_SIDE  # the longest drawable sequence: cell_size falls with the length
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if cell_size(middle, n_maps, label_chars) >= 1 else (low, middle - 1)
        raise ValueError(
            f"a sequence of {n_positions:,} items over {sweeps} sweeps is too long to draw: at most {low:,} items"
        )


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _ticks(n: int, cell: int, label_px: int) -> list[int]:
    """Positions that get a tick label: all of them where a label fits its cell, else every few."""
    every = max(1, math.ceil(label_px / cell))
    return list(range(0, n, every))


def attention_figure(maps: list[tuple[str, Tensor]], labels: list[str]) -> Figure:
    """Figure of one heat map per entry of ``maps`` (title, S [n, n]; rows: queries, columns: keys), the tokens
    ``labels`` (n) on both axes, one shared colour bar; of :func:`figure_size` pixels.

    Raises:
        ValueError: too many positions or maps to draw within the bounds (see :func:`check_drawable`).
    """
    labels = [_short(label) for label in labels]
    n = len(labels)
    chars = max((len(label) for label in labels), default=1)
    cell = cell_size(n, len(maps), chars)
    if cell < 1 or not maps:
        raise ValueError(f"{len(maps)} attention maps of {n:,} items are too many to draw")
    layout = _layout(n, len(maps), chars, cell)
    width, height, side = layout.width, layout.height, layout.side
    rows_shown = _ticks(n, cell, _LINE + 2)
    columns_shown = _ticks(n, cell, chars * _CHAR + 6)
    with figure_style():
        figure = new_figure(width, height)
        image = None
        for index, (title, weights) in enumerate(maps):
            x, y = layout.panel(index)
            axes = figure.add_axes((x / width, 1 - (y + side) / height, side / width, side / height))
            image = axes.imshow(
                weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto"
            )
            axes.set_title(title, pad=4)
            axes.set_xticks(columns_shown, labels=[labels[j] for j in columns_shown])
            axes.set_xlabel("key", labelpad=2)
            axes.set_yticks(rows_shown, labels=[labels[i] for i in rows_shown])
            if index % layout.columns == 0:
                axes.set_ylabel("query", labelpad=2)
            else:
                axes.tick_params(labelleft=False)
        x = layout.left + layout.columns * side + (layout.columns - 1) * _GAP + 16
        y = layout.panel(0)[1]
        bar_height = max(side, min(120, height - y - _BELOW))  # readable even beside a short sequence's maps
        bar = figure.add_axes((x / width, 1 - (y + bar_height) / height, 12 / width, bar_height / height))
        figure.colorbar(image, cax=bar, ticks=[0.0, 0.5, 1.0] if bar_height >= 60 else [0.0, 1.0])
        bar.set_ylabel("weight", labelpad=2)
        figure.suptitle(TITLE, x=0.5, y=1 - 6 / height, va="top", fontsize=10)
    return figure


def write_attention(
    model: SeqCompletionUNN, batch: Batch, path: str | os.PathLike[str], sweeps: int | None = None
) -> list[tuple[str, Tensor]]:
    """Draw the attention maps of the one-instance ``batch`` (masked positions labelled ``_``) into ``path`` (PNG,
    written atomically).

    Raises:
        ValueError: a sequence or a number of sweeps too large to draw (checked before the model runs).
    """
    n = int(batch.lengths[0])
    labels = ["_" if bool(batch.masked[0, i]) else str(int(batch.tokens[0, i])) for i in range(n)]
    chars = max((len(_short(label)) for label in labels), default=1)
    per_sweep = 2 if model.config.order == "fb" else 1
    check_drawable(n, model.config.eval_iter if sweeps is None else sweeps, per_sweep, chars)
    maps = attention_maps(model, batch, sweeps)
    write_png(attention_figure(maps, labels), path)
    return maps
