"""Output directories of training runs: one writer at a time, and no model replaced by accident.

A training command claims its output directory before it does any work (:func:`claim_output_dir`):

* the directory is created and a lock file in it (``.unnparse.lock``) is locked with ``flock``; a second run into the
  same directory fails at once, naming the run that holds it (process, host, command, start). The operating system
  releases the lock when its holder ends in any way (``kill -9`` included), so a lock is never left stale;
* a directory that already holds a model or a checkpoint is refused unless the run continues it (``--resume``) or
  replaces it (``--overwrite``);
* creating the directory and the lock file is the writability check: an output that cannot be written (``/proc/x``,
  a read-only disk) is a one-line error before any data is read.

A run launched in several processes (``--nproc``) claims the directory in the launching process, which holds the lock
while its workers run; the workers learn it from the environment (:func:`lock_environment`) and do not lock it again.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

__all__ = [
    "CHECKPOINT",
    "LOCK_ENV",
    "LOCK_FILE",
    "OutputDirError",
    "OutputLock",
    "claim_output_dir",
    "describe_contents",
    "lock_environment",
]

LOCK_FILE = ".unnparse.lock"
#: set by a process that holds the lock of a directory for the worker processes it launches (the directory's path)
LOCK_ENV = "UNNPARSE_OUTPUT_LOCK"
#: the file in a training output directory from which ``--resume`` continues
CHECKPOINT = "checkpoint.pt"
_CONFIG = "config.json"


class OutputDirError(Exception):
    """An output directory is in use by another run, or holds work that this run would replace (one line)."""


class OutputLock:
    """An exclusive, non-blocking lock on a directory (``flock`` on ``DIRECTORY/.unnparse.lock``).

    Use as a context manager or call :meth:`acquire` and :meth:`release`. The lock file records its holder
    (process id, host, command, start time) so that a refused run can say who holds the directory.
    """

    def __init__(self, directory: str | os.PathLike[str], command: str | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.command = command if command is not None else " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])
        self._fd: int | None = None
        self._created: list[Path] = []  # the folders that acquire() made, deepest first

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> OutputLock:
        """Create the directory (and its parents) and lock it.

        Raises:
            OutputDirError: another process holds the lock.
            OSError: the directory or the lock file cannot be created (not writable, not a directory, ...).
        """
        import fcntl

        missing = []
        folder = self.directory.absolute()
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except BaseException:
            _remove_empty(missing)
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            _remove_empty(missing)
            raise OutputDirError(
                f"{self.directory}: another run is writing this directory ({holder}); wait for it to end or choose "
                "another --output"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": self.command,
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        except BaseException:
            os.close(fd)  # closing releases the lock
            raise
        self._fd, self._created = fd, missing
        return self

    def release(self) -> None:
        """Release the lock. The lock file stays, unless :meth:`acquire` made the directory and nothing else was
        written there (a run that failed before any output leaves no empty folder behind)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                abandoned = bool(self._created) and [p.name for p in self.directory.iterdir()] == [LOCK_FILE]
            except OSError:
                abandoned = False
            if abandoned:
                self.path.unlink(missing_ok=True)
                os.close(fd)
                _remove_empty(self._created)
            else:
                os.close(fd)
            self._created = []

    def __enter__(self) -> OutputLock:
        return self if self.held else self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _read_holder(fd: int) -> str:
    """``pid 123 on HOST, `COMMAND`, since TIME`` from a lock file (what is readable of it)."""
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8", errors="replace") or "{}")
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict) or "pid" not in record:
        return "a process that has not yet said which"
    text = f"pid {record.get('pid')} on {record.get('host', '?')}"
    if record.get("command"):
        text += f", `{' '.join(str(record['command']).split())[:200]}`"
    if record.get("started"):
        text += f", since {record['started']}"
    return text


def describe_contents(directory: str | os.PathLike[str]) -> str | None:
    """What a directory holds that a new training run would replace (a model, a checkpoint), or None.

    Never raises: an unreadable ``config.json`` still counts as a model ("a model (unreadable config.json)").
    """
    path = Path(directory)
    config_path = path / _CONFIG
    parts = []
    if config_path.is_file():
        what = "a model"
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            if isinstance(config, dict):
                kind = config.get("kind")
                what = f"a {kind} model" if isinstance(kind, str) else what
                treebank = config.get("treebank")
                if isinstance(treebank, str):
                    what += f" of {treebank}"
        except (OSError, UnicodeDecodeError, ValueError):
            what += " (unreadable config.json)"
        parts.append(what)
    if (path / CHECKPOINT).is_file():
        parts.append(f"a training checkpoint ({CHECKPOINT})")
    return " and ".join(parts) or None


def claim_output_dir(
    directory: str | os.PathLike[str], *, resume: bool = False, overwrite: bool = False, command: str | None = None
) -> OutputLock | None:
    """Claim ``directory`` for a training run: lock it, and check that the run may write there.

    Returns the held lock (release it when the run ends, or let the process end), or None where the launching process
    holds it already (this process runs under ``--nproc``/torchrun, see :data:`LOCK_ENV`) or this process is a
    worker of rank > 0 of a distributed run, which writes nothing.

    Raises:
        OutputDirError: another run holds the directory; ``resume`` without a checkpoint to continue; a directory
            holding a model or checkpoint without ``resume`` or ``overwrite``; ``resume`` and ``overwrite`` together.
        OSError: the directory cannot be created or written.
    """
    out = Path(directory)
    if resume and overwrite:
        raise OutputDirError("--resume continues the run in the output directory and --overwrite replaces it: give one")
    if os.environ.get("RANK", "0") != "0":
        return None
    inherited = os.environ.get(LOCK_ENV)
    lock = None if inherited and Path(inherited) == out.absolute() else OutputLock(out, command).acquire()
    try:
        present = describe_contents(out)
        if resume and not (out / CHECKPOINT).is_file():
            raise OutputDirError(f"{out / CHECKPOINT}: no checkpoint to resume from (start a new run without --resume)")
        if present and not resume and not overwrite:
            raise OutputDirError(
                f"{out}: holds {present}; pass --overwrite to replace it, --resume to continue its training, or "
                "choose another --output"
            )
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


def lock_environment(lock: OutputLock | None) -> dict[str, str]:
    """The environment entries that tell worker processes launched by the holder of ``lock`` that their output
    directory is claimed already (empty without a lock)."""
    return {} if lock is None else {LOCK_ENV: str(lock.directory.absolute())}
