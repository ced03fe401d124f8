"""A minimal PNG writer (zlib + struct, no imaging library), a tiny bitmap font and a colour map for figures."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from unnparse.io_utils import atomic_write_bytes

__all__ = ["colormap", "draw_text", "encode_png", "text_width", "write_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# 3x5 glyphs, one string of 15 bits per character (rows top to bottom)
_GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    "_": "000000000000111",
    "t": "010111010010011",
    "=": "000111000111000",
    "-": "000000111000000",
    "f": "011010111010010",
    "b": "100100111101111",
    " ": "000000000000000",
}
# anchor colours of a perceptually ordered dark-blue → yellow map (viridis-like)
_ANCHORS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an 8-bit image: ``uint8 [H, W]`` (grey) or ``uint8 [H, W, 3]`` (RGB)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim == 2:
        colour_type = 0
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        colour_type = 2
    else:
        raise ValueError(f"expected an [H, W] or [H, W, 3] image, got shape {pixels.shape}")
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise ValueError("an image needs at least one pixel")
    rows = pixels.reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rows], axis=1)  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + _chunk(b"IEND", b"")
    )


def write_png(path: str | os.PathLike[str], pixels: np.ndarray) -> None:
    """Write ``pixels`` (see :func:`encode_png`) to ``path`` atomically."""
    atomic_write_bytes(path, encode_png(pixels))


def text_width(text: str, scale: int = 1) -> int:
    """Width in pixels of ``text`` drawn by :func:`draw_text`."""
    return max(0, 4 * len(text) - 1) * scale


def draw_text(canvas: np.ndarray, text: str, x: int, y: int, *, scale: int = 1, value: int | tuple = 255) -> None:
    """Draw ``text`` (digits, ``_ t = - f b`` and spaces; other characters are skipped) into ``canvas`` with its
    top-left corner at (x, y); each glyph is 3x5 cells of ``scale`` pixels. Pixels outside are clipped."""
    height, width = canvas.shape[:2]
    for i, char in enumerate(text):
        glyph = _GLYPHS.get(char)
        if glyph is None:
            continue
        for bit, on in enumerate(glyph):
            if on != "1":
                continue
            top, left = y + (bit // 3) * scale, x + (4 * i + bit % 3) * scale
            t0, l0 = max(top, 0), max(left, 0)
            t1, l1 = min(top + scale, height), min(left + scale, width)
            if t0 < t1 and l0 < l1:
                canvas[t0:t1, l0:l1] = value


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to ``uint8`` RGB colours (dark blue → yellow); shape [..., 3]."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.minimum(np.floor(v).astype(int), len(_ANCHORS) - 2)
    frac = (v - low)[..., None]
    rgb = _ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac
    return np.rint(rgb).astype(np.uint8)
