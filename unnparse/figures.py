"""Figures drawn with matplotlib and written as PNG files.

Only matplotlib's object-oriented API is used (a :class:`~matplotlib.figure.Figure` rendered by the Agg canvas, no
pyplot): no backend is chosen for the process and no figure is registered anywhere, so a figure is freed with its
last reference. matplotlib is imported inside the functions, so a command that draws nothing never loads it. Sizes
are given in pixels (at :data:`DPI` dots per inch), so that a caller can bound a picture before drawing it.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from unnparse.io_utils import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DPI", "figure_style", "new_figure", "png_bytes", "write_png"]

DPI = 100  # dots per inch: a figure of W x H pixels is W/DPI x H/DPI inches
_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "savefig.bbox": "standard",  # the figure's own size, whatever a user's matplotlibrc says
    "savefig.pad_inches": 0.0,
}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """The project's look (matplotlib's defaults, small fonts), whatever a user's matplotlibrc or style says: wrap
    both the drawing and the saving of a figure in it. The previous settings are restored on exit."""
    import matplotlib
    import matplotlib.style

    with matplotlib.style.context("default"), matplotlib.rc_context(_RC):
        yield


def new_figure(width: int, height: int) -> Figure:
    """An empty white figure of ``width`` x ``height`` pixels on an Agg canvas (call inside :func:`figure_style`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The PNG file of ``figure``, exactly its size in pixels (RGBA, 8 bits per channel)."""
    buffer = io.BytesIO()
    with figure_style():
        figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def write_png(figure: Figure, path: str | os.PathLike[str]) -> None:
    """Render ``figure`` and write it to ``path`` as PNG (whatever the suffix), atomically: a reader never sees a
    half-written file, and a failed drawing leaves any previous file as it was. The figure's drawing state is
    cleared afterwards."""
    data = png_bytes(figure)
    figure.clear()
    atomic_write_bytes(path, data)
