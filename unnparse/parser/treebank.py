"""Locating Universal Dependencies treebanks on disk, downloading them when missing.

A treebank lives in ``DATA_DIR/UD_Name-Treebank/`` as UD ships it: one or more
``*-ud-train*.conllu`` files (UD_Czech-PDT splits train into several), one
``*-ud-dev.conllu`` and one ``*-ud-test.conllu``.  :func:`resolve_treebank` downloads a
missing treebank from ``github.com/UniversalDependencies/NAME`` (default branch).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unnparse.downloads import DownloadError, fetch, host_of
from unnparse.io_utils import atomic_output
from unnparse.paths import data_root

if TYPE_CHECKING:
    from unnparse.conllu.sentence import Sentence

__all__ = [
    "FileSummary",
    "TreebankData",
    "TreebankError",
    "TreebankFiles",
    "TreebankNotFoundError",
    "default_data_dir",
    "download_treebank",
    "find_treebank",
    "read_treebank",
    "resolve_treebank",
    "similar_treebanks",
    "split_file",
    "treebank_files",
    "validate_treebank_name",
]

GITHUB_API = "https://api.github.com/repos/UniversalDependencies/{name}/contents"
RAW_HOST = "raw.githubusercontent.com"
TIMEOUT_S = 60.0
#: Seconds a whole treebank download (listing and files) may take.
DEADLINE_S = 1800.0
#: Largest file (the biggest UD .conllu files are a few hundred MB), whole treebank, and repository listing.
MAX_FILE_BYTES = 1 << 30
MAX_TREEBANK_BYTES = 4 << 30
MAX_LISTING_BYTES = 4 << 20
_NAME_RE = re.compile(r"UD_[A-Za-z0-9_-]+")


class TreebankError(Exception):
    """A treebank folder that cannot be used (e.g. two dev files)."""


class TreebankNotFoundError(TreebankError, FileNotFoundError):
    """A treebank is neither on disk nor downloadable; the message is one line."""


@dataclass
class TreebankFiles:
    """The CoNLL-U files of one treebank."""

    name: str
    train: list[Path] = field(default_factory=list)
    dev: Path | None = None
    test: Path | None = None

    @property
    def files(self) -> list[Path]:
        """All files: train (in order), then dev and test when present."""
        return [*self.train, *(p for p in (self.dev, self.test) if p is not None)]


def default_data_dir() -> Path:
    """``$UNNPARSE_DATA`` when set (and non-empty), else ``./data`` (see :func:`unnparse.paths.data_root`)."""
    return data_root()


def validate_treebank_name(name: str) -> str:
    """Return ``name`` if it looks like a UD repository name (``UD_`` + letters, digits, ``-``, ``_``).

    Raises:
        TreebankNotFoundError: otherwise (no path separators, dots, spaces, ...).
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise TreebankNotFoundError(
            f"invalid treebank name {name!r}: expected UD_ followed by letters, digits, '-' or '_' "
            "(e.g. UD_English-EWT)"
        )
    return name


def find_treebank(name: str, data_dir: str | os.PathLike[str] | None = None) -> TreebankFiles:
    """Find treebank ``name`` in ``data_dir`` (default :func:`default_data_dir`).

    Raises:
        TreebankNotFoundError: no folder ``data_dir/name`` or no train/dev/test file in it.
        TreebankError: more than one dev or test file.
    """
    validate_treebank_name(name)
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = root / name
    if not folder.is_dir():
        raise TreebankNotFoundError(f"treebank {name} not found: no folder {folder}")
    train = sorted(p for p in folder.glob("*-ud-train*.conllu") if p.is_file())
    dev = _single(folder, "*-ud-dev.conllu", name)
    test = _single(folder, "*-ud-test.conllu", name)
    if not train and dev is None and test is None:
        raise TreebankNotFoundError(
            f"treebank {name} not found: {folder} has no *-ud-train*.conllu, *-ud-dev.conllu or *-ud-test.conllu file"
        )
    return TreebankFiles(name=name, train=train, dev=dev, test=test)


def _single(folder: Path, pattern: str, name: str) -> Path | None:
    found = sorted(p for p in folder.glob(pattern) if p.is_file())
    if len(found) > 1:
        raise TreebankError(
            f"treebank {name}: several files match {pattern} in {folder}: {', '.join(p.name for p in found)}"
        )
    return found[0] if found else None


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _not_found(name: str, root: Path, why: str) -> TreebankNotFoundError:
    hint = ""
    if not root.is_dir():
        hint = f"; the data folder {root} does not exist (--data-dir, $UNNPARSE_DATA)"
    else:
        close = similar_treebanks(name, root)
        if close:
            hint = f"; did you mean {' or '.join(close)}?"
    return TreebankNotFoundError(
        f"treebank {name} not found in {root} and could not be downloaded ({_one_line(why)}){hint}; "
        f"put its .conllu files in {root / name} or name the files (train: --train/--dev; evaluate: --input)"
    )


def similar_treebanks(name: str, root: str | os.PathLike[str], *, limit: int = 3) -> list[str]:
    """The treebank folders under ``root`` whose names are close to ``name`` (a typo: ``UD_Czech-PTD`` for
    ``UD_Czech-PDT``; another case), closest first."""
    import difflib

    try:
        folders = [p.name for p in Path(root).iterdir() if p.is_dir() and p.name.startswith("UD_")]
    except OSError:
        return []
    by_lower = {f.lower(): f for f in folders}
    if name.lower() in by_lower and by_lower[name.lower()] != name:
        return [by_lower[name.lower()]]
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=limit, cutoff=0.75)]


def _hosts() -> set[str]:
    """The hosts a treebank download may talk to (redirects included): the GitHub API's and the raw files'."""
    return {host_of(GITHUB_API), RAW_HOST.lower()}


def _list_remote_files(name: str, deadline: float) -> list[tuple[str, str, int]]:
    """``(file name, download URL, size)`` of the .conllu files in the repository root."""
    body = fetch(
        GITHUB_API.format(name=name),
        allowed_hosts=_hosts(),
        max_bytes=MAX_LISTING_BYTES,
        deadline=deadline,
        timeout_s=TIMEOUT_S,
    )
    listing = json.loads(body.decode("utf-8"))
    if not isinstance(listing, list):
        raise ValueError("unexpected answer from the GitHub contents API")
    files = []
    for entry in listing:
        if not isinstance(entry, dict) or entry.get("type") != "file":
            continue
        file_name = str(entry.get("name", ""))
        if not file_name.endswith(".conllu") or "/" in file_name or file_name.startswith("."):
            continue
        url = entry.get("download_url")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).hostname != RAW_HOST:
            url = f"https://{RAW_HOST}/UniversalDependencies/{name}/HEAD/{urllib.parse.quote(file_name)}"
        files.append((file_name, url, int(entry.get("size") or 0)))
    files.sort()
    return files


def download_treebank(name: str, data_dir: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """Download the ``.conllu`` files of ``UniversalDependencies/NAME`` into ``data_dir/NAME``.

    Files are first downloaded to a temporary folder inside ``data_dir`` and moved into
    place only when all of them arrived, so an interrupted download leaves nothing behind.
    The whole download must end within :data:`DEADLINE_S` seconds, a file may not pass
    :data:`MAX_FILE_BYTES` nor the treebank :data:`MAX_TREEBANK_BYTES`, and redirects are
    followed only to GitHub's API and raw-file hosts (:func:`unnparse.downloads.fetch`).

    Raises:
        urllib.error.URLError / OSError / ValueError: on network or format problems, and
            :class:`~unnparse.downloads.DownloadError` (a ValueError) past a bound
            (:func:`resolve_treebank` turns them into :class:`TreebankNotFoundError`).
    """
    validate_treebank_name(name)
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    deadline = time.monotonic() + DEADLINE_S
    files = _list_remote_files(name, deadline)
    if not files:
        raise ValueError(f"the repository UniversalDependencies/{name} has no .conllu files")
    listed = sum(size for _, _, size in files)
    if listed > MAX_TREEBANK_BYTES:
        raise DownloadError(f"{name}: its files hold {listed:,} bytes, more than the {MAX_TREEBANK_BYTES:,} allowed")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.download-", dir=root))
    try:
        _fetch_all(files, staging, progress=progress, deadline=deadline)
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        for file_name, _, _ in files:
            os.replace(staging / file_name, target / file_name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root / name


def _fetch_all(files: list[tuple[str, str, int]], staging: Path, *, progress: bool, deadline: float) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    # progress goes to stderr: stdout may carry data (e.g. JSON scores)
    with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=False) as bar:
        received = 0
        for file_name, url, size in files:
            if size > MAX_FILE_BYTES:
                raise DownloadError(f"{url}: {size:,} bytes listed, more than the {MAX_FILE_BYTES:,} allowed")
            task = bar.add_task(file_name, total=size or None)
            with atomic_output(staging / file_name, "wb") as out:

                def write(piece: bytes, out: Any = out, task: Any = task) -> None:
                    out.write(piece)
                    bar.advance(task, len(piece))

                cap = min(MAX_FILE_BYTES, MAX_TREEBANK_BYTES - received)
                fetch(url, allowed_hosts=_hosts(), max_bytes=cap, deadline=deadline, timeout_s=TIMEOUT_S, sink=write)
            got = (staging / file_name).stat().st_size
            received += got
            bar.update(task, completed=got)


def resolve_treebank(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> TreebankFiles:
    """Find treebank ``name`` locally, downloading it from UD's GitHub when missing.

    Raises:
        TreebankNotFoundError: invalid name, or not on disk and not downloadable (download
            disabled, no network, HTTP error, unknown repository); the message is one line.
        TreebankError: the local folder is ambiguous (several dev or test files).
    """
    validate_treebank_name(name)
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        return find_treebank(name, root)
    except TreebankNotFoundError:
        if not download:
            raise _not_found(name, root, "downloading disabled") from None
    try:
        download_treebank(name, root, progress=progress)
    except DownloadError as exc:
        raise _not_found(name, root, str(exc)) from None
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            why = f"no repository UniversalDependencies/{name} on GitHub (HTTP 404)"
        elif exc.code in (403, 429):
            why = f"GitHub refused the request, probably rate-limited (HTTP {exc.code})"
        else:
            why = f"HTTP {exc.code} {exc.reason} for {exc.url}"
        raise _not_found(name, root, why) from None
    except urllib.error.URLError as exc:
        raise _not_found(name, root, f"no network: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, disk errors, bad JSON
        raise _not_found(name, root, f"{type(exc).__name__}: {exc}") from None
    return find_treebank(name, root)


def treebank_files(
    treebank: str | None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    train: Sequence[str | os.PathLike[str]] = (),
    dev: str | os.PathLike[str] | None = None,
    need_train: bool = True,
    download: bool = True,
    progress: bool = True,
) -> TreebankFiles:
    """The files of ``--treebank NAME`` / ``--train FILE...`` / ``--dev FILE``: the files given win over the
    treebank's (which :func:`resolve_treebank` finds or downloads); the test file is the treebank's.

    Raises:
        TreebankError: ``need_train`` and neither a treebank nor a training file, or a treebank without a training
            file and none given (one line that says which option to add); the errors of :func:`resolve_treebank`.
    """
    files_train = [Path(p) for p in train]
    file_dev = Path(dev) if dev is not None else None
    if treebank is None:
        if need_train and not files_train:
            raise TreebankError("give --treebank NAME or --train FILE (and --dev FILE)")
        name = files_train[0].stem.replace("-ud-train", "") if files_train else ""
        return TreebankFiles(name=name, train=files_train, dev=file_dev)
    found = resolve_treebank(treebank, data_dir, download=download, progress=progress)
    train_files = files_train or list(found.train)
    files = TreebankFiles(name=treebank, train=train_files, dev=file_dev or found.dev, test=found.test)
    if need_train and not files.train:
        raise TreebankError(f"treebank {treebank} has no *-ud-train*.conllu file; pass --train FILE")
    return files


def split_file(files: TreebankFiles, split: str) -> Path:
    """The ``dev`` or ``test`` file of ``files``.

    Raises:
        TreebankError: the treebank has no such file.
    """
    path = files.dev if split == "dev" else files.test if split == "test" else None
    if path is None:
        raise TreebankError(f"treebank {files.name} has no {split} file")
    return path


@dataclass(frozen=True)
class FileSummary:
    """One row of what a training reads: the split, the file, its sentences and words."""

    split: str
    file: str
    sentences: int
    words: int


@dataclass
class TreebankData:
    """The sentences of a treebank's training and dev files, and a summary of each file (``summary``)."""

    train: list[Sentence]
    dev: list[Sentence]
    summary: list[FileSummary]


def read_treebank(files: TreebankFiles, *, require_heads: bool = True) -> TreebankData:
    """Read the training files and the dev file (when there is one) of ``files``; ``require_heads=False`` accepts
    files without trees (enough for a tokenizer).

    Raises:
        CoNLLUError: a file that is not valid CoNLL-U, or holds no sentence (one line naming the file and line).
    """
    from unnparse.conllu.reader import read_conllu

    train = [s for f in files.train for s in read_conllu(f, allow_empty=False, require_heads=require_heads)]
    dev = read_conllu(files.dev, allow_empty=False, require_heads=require_heads) if files.dev else []
    per_file: dict[str, list[int]] = {}
    for s in train:
        counts = per_file.setdefault(s.source, [0, 0])
        counts[0] += 1
        counts[1] += len(s)
    summary = [FileSummary("train", str(f), *per_file.get(str(f), [0, 0])) for f in files.train]
    if files.dev:
        summary.append(FileSummary("dev", str(files.dev), len(dev), sum(len(s) for s in dev)))
    return TreebankData(train=train, dev=dev, summary=summary)
