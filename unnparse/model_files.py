"""Model directories: ``config.json`` (the manifest: hyperparameters, vocabularies, the data files) + data files.

No pickled modules: a model directory is loaded by rebuilding the module from its JSON config and copying the
tensors in, so it can be read without the training code's exact version or the training data.

A model directory is one checked thing. ``config.json`` names every data file the model consists of under ``files``
(a role such as ``weights``, ``tokenizer`` or ``encoder`` → its name, size and sha256; a directory of files such as
a transformer's config and tokenizer lists each file's size and sha256), and the weights file's safetensors metadata
holds hashes of the config parts the weights fit (the vocabularies), so that weights and vocabularies are bound.
Loading checks the sizes (cheap) first, then each tensor's name and shape against the module built from the config
(from the safetensors header, before the data is read), then the sha256 of the bytes; every failure is one line
naming the file. Config values are checked against ranges (:class:`Limit`, :func:`check_config`) before anything
is built from them.

Writing is atomic as a whole ("manifest written last"): data files get content-addressed names
(``model-<hex>.safetensors``, ``tokenizer-<hex>.safetensors``, ``encoder-<hex>/``), each written to a temporary
name and renamed; ``config.json`` is then replaced atomically, and only after that are the data files it no longer
names removed. A kill at any point leaves the old model or the new one, never a mix. Training state kept in the
same directory (checkpoints, metrics, lock files) is never touched.

Directories written before manifests existed (``model.safetensors``, ``tokenizer.safetensors`` and ``encoder/`` by
fixed names, no ``files`` entry) still load, without hash checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from unnparse.config_ranges import (
    ConfigValueError,
    Limit,
    ModelFileError,
    check_config,
    check_fields,
    config_field,
    field_limits,
    short_value,
)
from unnparse.io_utils import atomic_write_bytes, atomic_write_text

__all__ = [
    "CONFIG_FILE",
    "FILES_KEY",
    "MAX_CONFIG_BYTES",
    "WEIGHTS_FILE",
    "ConfigValueError",
    "Limit",
    "ModelFileError",
    "canonical_sha256",
    "check_config",
    "check_fields",
    "check_kind",
    "commit_config",
    "config_field",
    "field_limits",
    "is_model_dir",
    "load_config",
    "load_weights",
    "model_kind",
    "read_json_file",
    "record_legacy_files",
    "save_config",
    "save_model",
    "verified_dir",
    "weights_path",
    "write_data_dir",
    "write_weights",
]

CONFIG_FILE = "config.json"
#: The key of ``config.json`` that lists the model's data files by role.
FILES_KEY = "files"
#: The weights file of a model directory written before manifests existed.
WEIGHTS_FILE = "model.safetensors"
#: The data files of the roles that directories written before manifests existed name by fixed names.
LEGACY_NAMES = {"weights": WEIGHTS_FILE, "tokenizer": "tokenizer.safetensors", "encoder": "encoder"}
#: The content-addressed name prefix of each role's data file (``model-<hex>.safetensors``, ``encoder-<hex>``).
PREFIXES = {"weights": "model", "tokenizer": "tokenizer", "encoder": "encoder"}
_SUFFIXES = {"weights": ".safetensors", "tokenizer": ".safetensors", "encoder": ""}

_HEX = 16  # hex digits of the sha256 in a content-addressed name
MAX_CONFIG_BYTES = 1 << 30  # a config.json (vocabularies included) larger than this is refused before reading
_MAX_HEADER_BYTES = 100 << 20  # a safetensors header larger than this is refused
_DATA_FILE = re.compile(
    r"(?:model|tokenizer)-[0-9a-f]{16}\.safetensors|encoder-[0-9a-f]{16}|member-\d+-[0-9a-f]{16}"
    r"|model\.safetensors|tokenizer\.safetensors|encoder|member-\d+"
)
_TEMP_FILE = re.compile(
    r"\.(?:(?:model|tokenizer)(?:-[0-9a-f]{16})?\.safetensors|config\.json)\..+\.tmp|\.(?:encoder|member)-tmp-.+"
)
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")  # a file inside a recorded data directory
_SHA256 = re.compile(r"[0-9a-f]{64}")


def canonical_sha256(value: Any) -> str:
    """The sha256 (hex) of ``value`` as canonical JSON (sorted keys, no spaces, UTF-8): the same for equal values,
    different when a list is reordered."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------- config.json
def save_config(directory: str | os.PathLike[str], config: dict[str, Any]) -> None:
    """Write ``config`` as ``directory/config.json`` (sorted keys, UTF-8), atomically; nothing else is touched
    (see :func:`commit_config` for the manifest of a model)."""
    atomic_write_text(
        Path(directory) / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    )


def load_config(directory: str | os.PathLike[str], *, kind: str | None = None) -> dict[str, Any]:
    """Read ``config.json``; with ``kind``, check that the model is of that kind (e.g. ``"parser"``)."""
    path = Path(directory)
    if not path.is_dir():
        raise ModelFileError(f"{path}: no such model directory")
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelFileError(f"{cfg_path}: missing (not a model directory?)")
    config = read_json_file(cfg_path, max_bytes=MAX_CONFIG_BYTES, what="model config")
    if not isinstance(config, dict):
        raise ModelFileError(f"{cfg_path}: corrupt model config (not a JSON object)")
    if kind is not None:
        check_kind(config, cfg_path, kind)
    return config


def check_kind(config: Mapping[str, Any], cfg_path: str | os.PathLike[str], kind: str) -> None:
    """Check that a model's config (read from ``cfg_path``) is of ``kind`` (e.g. ``"parser"``).

    Raises:
        ModelFileError: one line naming the file and both kinds.
    """
    if config.get("kind") != kind:
        raise ModelFileError(f"{cfg_path}: this is a {config.get('kind', 'unknown')!s} model, not a {kind} model")


def read_json_file(path: str | os.PathLike[str], *, max_bytes: int, what: str) -> Any:
    """The JSON value of the file ``path``, refused unread when it is larger than ``max_bytes``.

    Raises:
        ModelFileError: ``PATH: too large for a WHAT (N bytes)`` or ``PATH: corrupt WHAT (reason)``.
    """
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise ModelFileError(f"{path}: too large for a {what} ({size:,} bytes)")
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ModelFileError(f"{path}: corrupt {what} ({err})") from None


def model_kind(directory: str | os.PathLike[str]) -> str | None:
    """The kind of model (``parser``, ``parser-ensemble``, ``mnist``...) that ``directory`` holds: its config names
    one and the data files it lists exist (their contents are checked when loading). None for anything else."""
    try:
        config = load_config(directory)
    except (ModelFileError, OSError):
        return None
    kind = config.get("kind")
    if not isinstance(kind, str):
        return None
    files = config.get(FILES_KEY)
    if files is None:  # the layout before manifests: a fixed weights name (ensembles have none)
        return kind if kind.endswith("ensemble") or (Path(directory) / WEIGHTS_FILE).is_file() else None
    if not isinstance(files, dict):
        return None
    for entry in files.values():
        name = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(name, str) or "/" in name or name in ("", ".", "..") or not (Path(directory) / name).exists():
            return None
    return kind


def is_model_dir(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a model of any kind (see :func:`model_kind`)."""
    return model_kind(directory) is not None


# ---------------------------------------------------------------------------------------------- writing
def write_weights(
    directory: str | os.PathLike[str],
    role: str,
    state_dict: Mapping[str, torch.Tensor],
    *,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write the tensors of ``state_dict`` (safetensors, with ``metadata`` in its header) under a content-addressed
    name (``model-<hex>.safetensors`` for the role ``weights``), atomically; returns its ``files`` record.

    The file is not part of the model until :func:`commit_config` writes a config naming it."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    data = save_safetensors(tensors, metadata=dict(metadata) if metadata else None)
    digest = hashlib.sha256(data).hexdigest()
    name = f"{PREFIXES[role]}-{digest[:_HEX]}.safetensors"
    path = Path(directory) / name
    if not (path.is_file() and not path.is_symlink() and _file_sha256(path, len(data)) == digest):
        atomic_write_bytes(path, data)
    record: dict[str, Any] = {"path": name, "size": len(data), "sha256": digest}
    if metadata:
        record["metadata"] = dict(metadata)
    return record


def write_data_dir(directory: str | os.PathLike[str], role: str, fill: Callable[[Path], None]) -> dict[str, Any]:
    """A content-addressed data directory (``encoder-<hex>/`` for the role ``encoder``): ``fill`` writes the files
    (flat, no subdirectories) into a temporary directory, which is renamed once complete; returns its ``files``
    record (each file's size and sha256).

    Raises:
        ValueError: ``fill`` wrote something other than plain files.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{PREFIXES[role]}-tmp-", dir=root))
    try:
        fill(tmp)
        files: dict[str, dict[str, Any]] = {}
        for entry in sorted(tmp.iterdir()):
            if entry.is_symlink() or not entry.is_file() or not _FILE_NAME.fullmatch(entry.name):
                raise ValueError(f"{entry}: a model's data directory holds plain files only")
            with entry.open("rb") as fh:
                os.fsync(fh.fileno())
            files[entry.name] = {"size": entry.stat().st_size, "sha256": _file_sha256(entry)}
        digest = canonical_sha256(files)
        name = f"{PREFIXES[role]}-{digest[:_HEX]}"
        final = root / name
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if final.is_dir() and not final.is_symlink() and _dir_matches(final, files):
            shutil.rmtree(tmp)
        else:
            if final.is_symlink() or final.is_file():
                final.unlink()
            elif final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"path": name, "sha256": digest, "files": files}


def commit_config(directory: str | os.PathLike[str], config: dict[str, Any]) -> Path:
    """Make ``config`` the model of ``directory``: write ``config.json`` atomically (the data files it names must be
    written already), then remove the data files of earlier models that it no longer names (only the project's own
    names: ``model-<hex>.safetensors``, ``encoder/``..., and temporary files of interrupted writes)."""
    out = Path(directory)
    _fsync_dir(out)  # the data files' names are durable before the manifest that names them
    save_config(out, config)
    _fsync_dir(out)
    remove_unreferenced(out, config)
    return out


def save_model(
    directory: str | os.PathLike[str],
    config: dict[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    *,
    bound: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model with one weights file into ``directory`` (created if needed), atomically as a whole.

    ``bound`` maps names to config parts that the weights fit (``{"vocab": config["vocab"]}``): their hashes go into
    the weights file's metadata, and :func:`load_weights` checks them. ``config`` gets the ``files`` entry."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    metadata = {f"{key}_sha256": canonical_sha256(value) for key, value in (bound or {}).items()}
    config[FILES_KEY] = {"weights": write_weights(out, "weights", state_dict, metadata=metadata)}
    return commit_config(out, config)


def record_legacy_files(directory: str | os.PathLike[str], config: dict[str, Any]) -> dict[str, Any]:
    """The ``files`` entry of ``config``; for a directory written before manifests existed, a new one recording the
    fixed-name data files present (hashed now), so that data can be added to it by the manifest protocol."""
    files = config.get(FILES_KEY)
    if isinstance(files, dict):
        return files
    root = Path(directory)
    files = {}
    for role, name in LEGACY_NAMES.items():
        path = root / name
        if path.is_file() and not path.is_symlink():
            files[role] = {"path": name, "size": path.stat().st_size, "sha256": _file_sha256(path)}
        elif path.is_dir() and not path.is_symlink():
            listed = {
                p.name: {"size": p.stat().st_size, "sha256": _file_sha256(p)}
                for p in sorted(path.iterdir())
                if p.is_file() and not p.is_symlink()
            }
            files[role] = {"path": name, "sha256": canonical_sha256(listed), "files": listed}
    return files


def remove_unreferenced(directory: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
    """Remove the data files of ``directory`` that ``config`` does not name, and leftovers of interrupted writes
    (best effort: what cannot be removed stays)."""
    root = Path(directory)
    files = config.get(FILES_KEY)
    keep = {e.get("path") for e in files.values() if isinstance(e, dict)} if isinstance(files, dict) else set()
    if not isinstance(files, dict):
        keep |= set(LEGACY_NAMES.values())  # a config without a manifest uses the fixed names
    members = config.get("members")
    if isinstance(members, list):
        keep |= {m for m in members if isinstance(m, str)}
    for entry in root.iterdir():
        stale = _DATA_FILE.fullmatch(entry.name) is not None and entry.name not in keep
        if not (stale or _TEMP_FILE.fullmatch(entry.name)):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue


# ---------------------------------------------------------------------------------------------- reading
def _record(directory: Path, config: Mapping[str, Any], role: str) -> dict[str, Any] | None:
    """The checked ``files`` record of ``role``; None for a directory written before manifests existed."""
    files = config.get(FILES_KEY)
    cfg_path = directory / CONFIG_FILE
    if files is None:
        return None
    if not isinstance(files, dict):
        raise ModelFileError(f"{cfg_path}: '{FILES_KEY}' must be an object")
    record = files.get(role)
    if not isinstance(record, dict):
        raise ModelFileError(f"{cfg_path}: '{FILES_KEY}' names no {role} file")
    name = record.get("path")
    allowed = re.compile(rf"{PREFIXES[role]}-[0-9a-f]{{{_HEX}}}{re.escape(_SUFFIXES[role])}")
    if not isinstance(name, str) or not (allowed.fullmatch(name) or name == LEGACY_NAMES.get(role)):
        raise ModelFileError(f"{cfg_path}: the {role} file {short_value(name)} is not a name unnparse writes")
    return record


def weights_path(directory: str | os.PathLike[str], role: str = "weights") -> Path:
    """The path of a model directory's weights file (``role="tokenizer"``: the trained tokenizer's weights), from
    its ``config.json`` (unchecked: see :func:`load_weights`)."""
    root = Path(directory)
    record = _record(root, load_config(root), role)
    return root / (record["path"] if record is not None else LEGACY_NAMES[role])


def verified_dir(directory: str | os.PathLike[str], config: Mapping[str, Any], role: str) -> Path:
    """The data directory of ``role`` (``encoder``) after checking that it holds exactly the files the manifest
    lists, with their sizes and sha256 (a directory written before manifests: only that it exists).

    Raises:
        ModelFileError: one line naming the missing, unexpected, truncated or corrupted file.
    """
    root = Path(directory)
    record = _record(root, config, role)
    path = root / (record["path"] if record is not None else LEGACY_NAMES[role])
    if path.is_symlink() or not path.is_dir():
        raise ModelFileError(f"{path}: missing (the model directory is incomplete)")
    if record is None:
        return path
    listed = record.get("files")
    if not isinstance(listed, dict) or not all(isinstance(n, str) and _FILE_NAME.fullmatch(n) for n in listed):
        raise ModelFileError(f"{root / CONFIG_FILE}: the {role} entry of '{FILES_KEY}' lists no valid files")
    extra = sorted({p.name for p in path.iterdir()} - set(listed))
    if extra:
        raise ModelFileError(f"{path / extra[0]}: not part of the model (config.json does not list it)")
    for name, entry in sorted(listed.items()):
        _verify_file(path / name, entry)
    return path


def load_weights(
    directory: str | os.PathLike[str],
    module: torch.nn.Module,
    config: Mapping[str, Any],
    *,
    role: str = "weights",
    bound: Mapping[str, Any] | None = None,
) -> None:
    """Copy the tensors of the ``role`` weights file that ``config`` names into ``module`` (strict: names and shapes
    must match), after checking its size, each tensor's name and shape (from the header, before the data is read),
    its sha256 and the hashes of the ``bound`` config parts (see :func:`save_model`).

    Raises:
        ModelFileError: one line naming the file.
    """
    root = Path(directory)
    record = _record(root, config, role)
    path = root / (record["path"] if record is not None else LEGACY_NAMES[role])
    if path.is_symlink() or not path.is_file():
        raise ModelFileError(f"{path}: missing")
    size = path.stat().st_size
    if record is not None:
        _check_size(path, record, size)
    with path.open("rb") as fh:
        header = _read_header(path, fh, size)
        _check_tensors(path, header, module, names=record is not None)
        fh.seek(0)
        data = fh.read()
    if record is not None and hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise ModelFileError(f"{path}: corrupted (its sha256 is not the one config.json records)")
    stored = header.get("__metadata__") or {}
    for key, value in (bound or {}).items():
        want = stored.get(f"{key}_sha256") if isinstance(stored, dict) else None
        if want is not None and want != canonical_sha256(value):
            raise ModelFileError(
                f"{root / CONFIG_FILE}: its {key} entry does not match the weights of {path.name} (reordered or edited)"
            )
    try:
        tensors = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path}: corrupt weights file ({err})") from None
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) if len(first) > 1 else first[0]
        raise ModelFileError(f"{path}: weights do not fit the configured model ({detail})") from None


def _check_size(path: Path, record: Mapping[str, Any], size: int) -> None:
    want = record.get("size")
    if not isinstance(want, int) or isinstance(want, bool) or not _SHA256.fullmatch(str(record.get("sha256"))):
        raise ModelFileError(f"{path.parent / CONFIG_FILE}: the record of {path.name} has no valid size and sha256")
    if size != want:
        what = "truncated" if size < want else "longer than recorded"
        raise ModelFileError(f"{path}: {what} ({size:,} bytes, config.json records {want:,})")


def _verify_file(path: Path, record: Any) -> None:
    if path.is_symlink():
        raise ModelFileError(f"{path}: a symbolic link (a model's data files are plain files)")
    if not path.is_file():
        raise ModelFileError(f"{path}: missing (the model directory is incomplete)")
    if not isinstance(record, dict):
        raise ModelFileError(f"{path.parent.parent / CONFIG_FILE}: the record of {path.name} is not an object")
    size = path.stat().st_size
    _check_size(path, record, size)
    if _file_sha256(path) != record["sha256"]:
        raise ModelFileError(f"{path}: corrupted (its sha256 is not the one config.json records)")


def _read_header(path: Path, fh: Any, size: int) -> dict[str, Any]:
    """The JSON header of a safetensors file (8 bytes of length, then the header), checked for sanity."""
    head = fh.read(8)
    if len(head) < 8:
        raise ModelFileError(f"{path}: corrupt weights file (too short for a safetensors header)")
    (length,) = struct.unpack("<Q", head)
    if length > min(_MAX_HEADER_BYTES, size - 8):
        raise ModelFileError(f"{path}: corrupt weights file (header length {length:,} in a {size:,}-byte file)")
    try:
        header = json.loads(fh.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{path}: corrupt weights file (unreadable header)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: corrupt weights file (header is not an object)")
    return header


def _check_tensors(path: Path, header: Mapping[str, Any], module: torch.nn.Module, *, names: bool) -> None:
    """Each tensor that both the header and ``module`` name has the module's shape; with ``names``, the header names
    exactly the module's tensors (files written before manifests are left to ``load_state_dict``, which knows the
    parameters renamed since)."""
    expected = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    if names:
        stored = set(header) - {"__metadata__"}
        for name in sorted(stored ^ set(expected))[:1]:
            what = "has no tensor" if name in expected else "has a tensor the model built from config.json lacks:"
            raise ModelFileError(f"{path}: {what} {name}")
    for name, info in header.items():
        if name == "__metadata__" or name not in expected:
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        if not isinstance(shape, list) or tuple(shape) != expected[name]:
            raise ModelFileError(
                f"{path}: tensor {name} has shape {short_value(str(shape))}, the model built from config.json needs "
                f"{list(expected[name])}"
            )


def _file_sha256(path: Path, expected_size: int | None = None) -> str | None:
    """The sha256 (hex) of a file's bytes; None when ``expected_size`` is given and the size differs."""
    if expected_size is not None and path.stat().st_size != expected_size:
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _dir_matches(path: Path, files: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether ``path`` holds exactly ``files`` (names, sizes, sha256)."""
    try:
        if {p.name for p in path.iterdir()} != set(files):
            return False
        return all(_file_sha256(path / n, int(e["size"])) == e["sha256"] for n, e in files.items())
    except OSError:
        return False


def _fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` durable (where the platform allows)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
