"""Atomic file output: a reader never sees a half-written file.

Everything is written to a temporary file in the destination's directory (so the final
:func:`os.replace` stays on one file system and is atomic) and renamed over the
destination only once writing finished without error.  On error the temporary file is
removed and any previous version of the destination is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_output", "atomic_write_bytes", "atomic_write_text"]

_ALLOWED_MODES = ("w", "wt", "wb")


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], mode: str = "w", *, encoding: str = "utf-8", newline: str | None = "\n"
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing atomically.

    Yields a file object writing to a temporary file next to ``path``; when the ``with``
    block ends without an exception the data is flushed, fsynced and moved over ``path``
    with :func:`os.replace`.  If the block raises, the temporary file is deleted and the
    exception propagates (an OSError that names no file, such as a write to a full disk, is raised again naming
    ``path``).

    Args:
        path: destination file; its parent directory is created when missing.
        mode: ``"w"`` / ``"wt"`` (text) or ``"wb"`` (binary).
        encoding: text encoding (text mode only).
        newline: newline translation for text mode; the default writes ``"\\n"`` verbatim.
    """
    if mode not in _ALLOWED_MODES:
        raise ValueError(f"atomic_output mode must be one of {_ALLOWED_MODES}, not {mode!r}")
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        if "b" in mode:
            fh: IO[Any] = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates files with mode 0600; give the result the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.filename is None and err.errno is not None:  # a failed write (full disk) names no file: name ours
            raise OSError(err.errno, err.strerror or str(err), str(dest)) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (newlines are written verbatim)."""
    with atomic_output(path, "w", encoding=encoding) as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path, "wb") as fh:
        fh.write(data)
