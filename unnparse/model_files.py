"""Model directories: ``config.json`` (hyperparameters, vocabularies) + ``model.safetensors`` (weights only).

No pickled modules: a model directory is loaded by rebuilding the module from its JSON config and copying the
tensors in, so it can be read without the training code's exact version or the training data. Both files are
written atomically; a reader never sees half a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from unnparse.io_utils import atomic_write_bytes, atomic_write_text

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "ModelFileError",
    "load_config",
    "load_weights",
    "save_config",
    "save_model",
    "save_weights",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class ModelFileError(Exception):
    """A model directory is missing, incomplete or corrupt (the message is one line naming the file)."""


def save_model(directory: str | os.PathLike[str], config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> Path:
    """Write ``config`` and the tensors of ``state_dict`` into ``directory`` (created if needed)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(out, state_dict, WEIGHTS_FILE)
    save_config(out, config)
    return out


def save_config(directory: str | os.PathLike[str], config: dict[str, Any]) -> None:
    """Write ``config`` as ``directory/config.json`` (sorted keys, UTF-8), atomically."""
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
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{cfg_path}: corrupt model config ({err})") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{cfg_path}: corrupt model config (not a JSON object)")
    if kind is not None and config.get("kind") != kind:
        raise ModelFileError(f"{cfg_path}: this is a {config.get('kind', 'unknown')!s} model, not a {kind} model")
    return config


def save_weights(directory: str | os.PathLike[str], state_dict: dict[str, torch.Tensor], filename: str) -> None:
    """Write the tensors of ``state_dict`` as ``directory/filename`` (safetensors), atomically."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write_bytes(Path(directory) / filename, save_safetensors(tensors))


def load_weights(directory: str | os.PathLike[str], module: torch.nn.Module, filename: str = WEIGHTS_FILE) -> None:
    """Copy the tensors of ``filename`` (``model.safetensors``) into ``module`` (strict: names and shapes must
    match)."""
    path = Path(directory) / filename
    if not path.is_file():
        raise ModelFileError(f"{path}: missing")
    try:
        tensors = load_safetensors(path.read_bytes())
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path}: corrupt weights file ({err})") from None
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) if len(first) > 1 else first[0]
        raise ModelFileError(f"{path}: weights do not fit the configured model ({detail})") from None
