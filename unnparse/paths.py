"""Where the tasks find their data by default: one place, shared by the parser, MNIST and sequence completion."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "data_root"]

#: the environment variable that names the data folder
DATA_ENV = "UNNPARSE_DATA"


def data_root() -> Path:
    """``$UNNPARSE_DATA`` when set (and non-empty), else ``./data``: UD treebanks in folders of their names, MNIST in
    ``mnist/``."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else Path("data")
