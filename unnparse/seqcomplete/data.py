"""The toy sequence-completion data of §4: runs of consecutive integers with masked positions.

Every ascending and every descending run of consecutive integers in 1..V whose length is in
[min_length, max_length] is taken, and each with every combination of 1..⌈mask_ratio·length⌉ masked positions
(the paper's "up to 10%"; at least one, so that every instance has something to predict). The instances are
split at random (fixed seed) into train (90%) and test (10%). With V = 64, lengths 8..24 this gives 785,142
instances, the paper's "around 706K and 78K"; the default lengths 8..25 give 995,142.

File format (``.npz``, read with ``allow_pickle=False``): the base sequences are stored once and every instance
refers to one of them with a bit mask of its masked positions:

* ``meta``: a JSON string (vocab, min_length, max_length, mask_ratio, test_fraction, seed, format version);
* ``tokens``: ``int16 [S, max_length]`` the base sequences, 0-padded; ``lengths``: ``int16 [S]``;
* ``sequence``: ``int32 [N]`` the base sequence of each instance; ``mask``: ``int64 [N]`` bit i set = position i
  masked; ``test``: ``bool [N]`` the instance belongs to the test split.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from unnparse.devices import host_to_device
from unnparse.io_utils import atomic_write_bytes
from unnparse.seqcomplete.config import DataSpec

__all__ = [
    "FORMAT",
    "Batch",
    "DataSpec",
    "SeqDataError",
    "SeqDataset",
    "generate",
    "load_dataset",
    "make_batch",
    "max_masked",
    "parse_sequence",
    "save_dataset",
]

FORMAT = "unnparse-seqcomplete-1"


class SeqDataError(Exception):
    """A missing, corrupt or inconsistent data file, or an unusable sequence (the message is one line)."""


@dataclass
class SeqDataset:
    """A generated data set (see the module docstring for the fields)."""

    spec: DataSpec
    tokens: Tensor
    lengths: Tensor
    sequence: Tensor
    mask: Tensor
    test: Tensor

    def __len__(self) -> int:
        return len(self.sequence)

    def split(self, name: str) -> Tensor:
        """Instance indices of the ``train`` or ``test`` split."""
        if name not in ("train", "test"):
            raise ValueError(f"unknown split {name!r}")
        return torch.nonzero(self.test if name == "test" else ~self.test).flatten()


@dataclass
class Batch:
    """Padded instances: ``tokens`` [B, n] (0 = padding, masked positions keep their gold token),
    ``masked`` [B, n] bool and ``lengths`` [B]."""

    tokens: Tensor
    masked: Tensor
    lengths: Tensor

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device`` (to CUDA: pinned, asynchronous copies)."""
        return Batch(*(host_to_device(t, device) for t in (self.tokens, self.masked, self.lengths)))

    @property
    def valid(self) -> Tensor:
        """[B, n] bool: the position holds a token (not padding)."""
        return torch.arange(self.tokens.shape[1], device=self.tokens.device)[None, :] < self.lengths[:, None]


def max_masked(length: int, ratio: float) -> int:
    """Largest number of masked positions in a sequence of ``length``: ⌈ratio · length⌉ (float noise aside)."""
    return max(1, math.ceil(ratio * length - 1e-9))


def generate(spec: DataSpec) -> SeqDataset:
    """Build every instance of ``spec`` and split them."""
    rows, lengths, sequence, masks = [], [], [], []
    for length in range(spec.min_length, spec.max_length + 1):
        combos = [
            sum(1 << p for p in positions)
            for m in range(1, min(max_masked(length, spec.mask_ratio), length) + 1)
            for positions in itertools.combinations(range(length), m)
        ]
        combo_array = np.asarray(combos, dtype=np.int64)
        for start in range(1, spec.vocab - length + 2):
            run = list(range(start, start + length))
            for seq in (run, run[::-1]):
                sequence.append(np.full(len(combo_array), len(rows), dtype=np.int32))
                masks.append(combo_array)
                rows.append(seq + [0] * (spec.max_length - length))
                lengths.append(length)
    n = sum(len(m) for m in masks)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(spec.seed))
    test = torch.zeros(n, dtype=torch.bool)
    test[perm[: max(1, round(spec.test_fraction * n))]] = True
    return SeqDataset(
        spec,
        torch.tensor(rows, dtype=torch.int16),
        torch.tensor(lengths, dtype=torch.int16),
        torch.from_numpy(np.concatenate(sequence)),
        torch.from_numpy(np.concatenate(masks)),
        test,
    )


def save_dataset(path: str | os.PathLike[str], data: SeqDataset) -> None:
    """Write ``data`` as a compressed ``.npz`` (atomically)."""
    meta = {"format": FORMAT, **asdict(data.spec)}
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        meta=np.array(json.dumps(meta)),
        tokens=data.tokens.numpy(),
        lengths=data.lengths.numpy(),
        sequence=data.sequence.numpy(),
        mask=data.mask.numpy(),
        test=data.test.numpy(),
    )
    atomic_write_bytes(path, buffer.getvalue())


def load_dataset(path: str | os.PathLike[str]) -> SeqDataset:
    """Read a file written by :func:`save_dataset`.

    Raises:
        SeqDataError: missing file, not such an ``.npz``, or inconsistent arrays (one line naming the file).
    """
    path = Path(path)
    if path.is_dir():
        raise SeqDataError(f"{path}: is a directory, not a data file from `unn seqcomplete generate`")
    if not path.is_file():
        raise SeqDataError(f"{path}: missing (create it with `unn seqcomplete generate --output {path}`)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in ("meta", "tokens", "lengths", "sequence", "mask", "test")}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise SeqDataError(f"{path}: not a sequence-completion data file ({' '.join(str(err).split())})") from None
    if not isinstance(meta, dict) or meta.pop("format", None) != FORMAT:
        raise SeqDataError(f"{path}: not a sequence-completion data file (unknown format)")
    try:
        spec = DataSpec(**meta)
    except (TypeError, ValueError) as err:
        raise SeqDataError(f"{path}: invalid metadata ({err})") from None
    data = SeqDataset(spec, *(torch.from_numpy(arrays[k]) for k in ("tokens", "lengths", "sequence", "mask", "test")))
    _check(path, data)
    return data


def _check(path: Path, data: SeqDataset) -> None:
    n_seq = len(data.lengths)
    ok = (
        data.tokens.dim() == 2
        and data.tokens.shape == (n_seq, data.spec.max_length)
        and len(data.sequence) == len(data.mask) == len(data.test)
        and data.test.dtype == torch.bool
        and (len(data.sequence) == 0 or (0 <= int(data.sequence.min()) and int(data.sequence.max()) < n_seq))
        and (data.tokens.numel() == 0 or (0 <= int(data.tokens.min()) and int(data.tokens.max()) <= data.spec.vocab))
    )
    if not ok:
        raise SeqDataError(f"{path}: inconsistent arrays (corrupt data file?)")


def make_batch(data: SeqDataset, index: Tensor) -> Batch:
    """The padded batch of the instances ``index``."""
    seq = data.sequence[index].long()
    lengths = data.lengths[seq].long()
    n = int(lengths.max())
    tokens = data.tokens[seq, :n].long()
    bits = torch.arange(n, dtype=torch.int64)
    masked = ((data.mask[index, None] >> bits) & 1).bool()
    return Batch(tokens, masked, lengths)


def parse_sequence(text: str, vocab: int) -> Batch:
    """A one-instance batch from e.g. ``"3 4 _ _ 7 8"`` (``_`` marks a blank to fill).

    Raises:
        SeqDataError: a token that is neither ``_`` nor an integer in 1..vocab, or no blank at all.
    """
    items = text.replace(",", " ").split()
    if not items:
        raise SeqDataError("empty sequence")
    tokens, masked = [], []
    for item in items:
        if item == "_":
            tokens.append(0)
            masked.append(True)
            continue
        if not item.isdigit() or not 1 <= int(item) <= vocab:
            raise SeqDataError(f"bad token {item!r}: use integers 1..{vocab} and _ for blanks")
        tokens.append(int(item))
        masked.append(False)
    return Batch(torch.tensor([tokens]), torch.tensor([masked]), torch.tensor([len(tokens)]))
