"""Resumable training checkpoints of ``unnparse train``, ``unn mnist train`` and ``unn seqcomplete train``.

A checkpoint is one file, ``OUTPUT/checkpoint.pt``, written atomically by rank 0: a flat dict of tensors and
state dicts (read back with ``torch.load(..., weights_only=True)``: no pickled code) plus ``meta``, a JSON string
with the run's *signature* (the settings a continuation must share: model options, data, batch size, seed,
number of processes) and whatever position the trainer needs. Random states that differ between processes
(dropout masks, random initialisations) are gathered from every rank, so that a resumed multi-process run draws
what the uninterrupted one would have.
"""

from __future__ import annotations

import errno
import json
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from unnparse.io_utils import atomic_output
from unnparse.output_dir import CHECKPOINT
from unnparse.training.distributed import DistContext

__all__ = [
    "CHECKPOINT",
    "CheckpointError",
    "check_signature",
    "gather_rank_states",
    "random_states",
    "read_checkpoint",
    "restore_random_states",
    "write_checkpoint",
]

#: the command that trains each kind of model (named in messages)
_COMMANDS = {"parser": "unnparse train", "mnist": "unn mnist train", "seqcomplete": "unn seqcomplete train"}


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or from a run that cannot be continued with these settings (one line
    naming the file)."""


def write_checkpoint(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``state`` (tensors, state dicts, lists of them) and the JSON-able ``meta`` to ``path`` atomically.

    Raises:
        OSError: the file cannot be written (a full disk: ``ENOSPC``); a previous checkpoint at ``path`` is kept.
    """
    try:
        with atomic_output(path, "wb") as fh:
            torch.save({**state, "meta": json.dumps(meta)}, fh)
    except RuntimeError as err:  # torch's writer reports a failed write (a full disk, a size limit) this way
        raise _write_error(path, err) from None


def _write_error(path: Path, err: RuntimeError) -> OSError:
    """The OSError to report for a checkpoint that torch could not write (the old checkpoint is left as it was)."""
    reason = " ".join(str(err).split())[:160]
    try:
        full = shutil.disk_usage(path.parent).free < 64 * 2**20
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, "no space left on device; the previous checkpoint is kept", str(path))
    return OSError(errno.EIO, f"cannot write the checkpoint ({reason}); the previous one is kept", str(path))


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state, meta) of a checkpoint written by :func:`write_checkpoint`, tensors on the CPU (``load_state_dict``
    of modules and optimizers moves them where the parameters are).

    Raises:
        CheckpointError: no such file, or not a readable checkpoint.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(state.pop("meta"))
    except Exception as err:  # torch raises many kinds on a damaged file
        raise CheckpointError(f"{path}: corrupt checkpoint ({' '.join(str(err).split())[:200]})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("signature"), dict):
        raise CheckpointError(
            f"{path}: a checkpoint without the settings of its run (written by an older unnparse?); "
            "start a new run with --overwrite"
        )
    return state, meta


def check_signature(path: Path, saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` naming the first setting in which ``saved`` and ``wanted`` differ
    (``"kind"``, the model kind, first); nested dicts are compared key by key (``model.hidden``)."""
    if saved.get("kind") != wanted.get("kind"):
        theirs = _COMMANDS.get(str(saved.get("kind")), f"a {saved.get('kind')} training")
        ours = _COMMANDS.get(str(wanted.get("kind")), f"a {wanted.get('kind')} training")
        raise CheckpointError(f"{path}: a checkpoint of `{theirs}`, not `{ours}`")
    flat_saved, flat_wanted = _flatten(saved), _flatten(wanted)
    for key, value in flat_wanted.items():
        if key not in flat_saved or flat_saved[key] != value:
            had = flat_saved.get(key, "no value")
            raise CheckpointError(
                f"{path}: the interrupted run had {key} {_short(had)}, not {_short(value)} "
                "(resume with the options and data of that run, or start a new run with --overwrite)"
            )


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"hidden": 8}}`` → ``{"model.hidden": 8}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _short(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def random_states(dist: DistContext, generators: Sequence[torch.Generator | random.Random]) -> dict[str, Any]:
    """This process's random states: torch's global CPU state (and CUDA where it trains), Python's global one and
    those of ``generators`` (torch or Python generators)."""
    mine: dict[str, Any] = {
        "cpu": torch.get_rng_state(),
        "python": random.getstate(),
        "generators": [g.get_state() if isinstance(g, torch.Generator) else g.getstate() for g in generators],
    }
    if dist.device.type == "cuda":
        mine["cuda"] = torch.cuda.get_rng_state(dist.device)
    return mine


def gather_rank_states(dist: DistContext, mine: Any) -> list[Any] | None:
    """Every rank's ``mine`` (such as :func:`random_states`), one per rank, on rank 0 (None elsewhere). Every rank
    must call it (a collective when distributed)."""
    if not dist.distributed:
        return [mine]
    everyone: list[Any] = [None] * dist.world_size
    torch.distributed.all_gather_object(everyone, mine)
    return everyone if dist.is_main else None


def restore_random_states(
    mine: dict[str, Any], dist: DistContext, generators: Sequence[torch.Generator | random.Random]
) -> None:
    """Set this process's random states and ``generators`` from :func:`random_states` (the CUDA state only where
    both runs use CUDA)."""
    torch.set_rng_state(mine["cpu"])
    if "python" in mine:
        random.setstate(_as_python_state(mine["python"]))
    if dist.device.type == "cuda" and "cuda" in mine:
        torch.cuda.set_rng_state(mine["cuda"], dist.device)
    for generator, state in zip(generators, mine["generators"], strict=True):
        if isinstance(generator, torch.Generator):
            generator.set_state(state)
        else:
            generator.setstate(_as_python_state(state))


def _as_python_state(state: Any) -> tuple[Any, ...]:
    """A Python generator state as ``random.setstate`` takes it (a checkpoint may hand back lists for tuples)."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
