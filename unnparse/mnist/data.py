"""MNIST in its four standard IDX ``.gz`` files: reading, downloading, dev split and batching.

The whole data set is held as one ``uint8`` tensor per split (47 MB for train); a batch is an index into it,
converted to float only when used (:func:`to_float`), so loading costs next to nothing per step.
"""

from __future__ import annotations

import gzip
import os
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from unnparse.io_utils import atomic_write_bytes
from unnparse.parser.treebank import default_data_dir as _data_root

__all__ = [
    "FILES",
    "MIRRORS",
    "MnistData",
    "MnistDataError",
    "batches",
    "binarize",
    "default_data_dir",
    "download_mnist",
    "load_mnist",
    "read_idx",
    "split_dev",
    "to_float",
]

#: file of each split, as published by LeCun et al.
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
#: public mirrors holding the same four files, tried in order
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
TIMEOUT_S = 60.0
_UBYTE = 0x08


class MnistDataError(Exception):
    """MNIST files that are missing, corrupt or cannot be downloaded (the message is one line)."""


@dataclass
class MnistData:
    """The MNIST splits: images ``uint8 [N, 28, 28]`` and labels ``int64 [N]``."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor


def default_data_dir() -> Path:
    """``$UNNPARSE_DATA/mnist`` when that variable is set, else ``./data/mnist``."""
    return _data_root() / "mnist"


def read_idx(path: str | os.PathLike[str]) -> Tensor:
    """Read a gzipped IDX file of unsigned bytes into a ``uint8`` tensor of the shape its header gives.

    Raises:
        MnistDataError: missing file, bad gzip stream, bad header or truncated data.
    """
    path = Path(path)
    if not path.is_file():
        raise MnistDataError(f"{path}: missing")
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as err:
        raise MnistDataError(f"{path}: not a readable gzip file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise MnistDataError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != _UBYTE:
        raise MnistDataError(f"{path}: IDX data type {raw[2]:#04x} is not unsigned byte")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MnistDataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = 1
    for s in shape:
        count *= s
    if len(raw) - header != count:
        raise MnistDataError(f"{path}: IDX header announces {count} bytes of data, file holds {len(raw) - header}")
    data = torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8) if count else torch.empty(0, dtype=torch.uint8)
    return data.reshape(shape)


def download_mnist(
    data_dir: str | os.PathLike[str], *, mirrors: Sequence[str] = MIRRORS, names: Sequence[str] | None = None
) -> None:
    """Download the MNIST files missing from ``data_dir``, trying each mirror in turn.

    Raises:
        MnistDataError: a file could be fetched from no mirror (e.g. offline); one line with the last reason.
    """
    root = Path(data_dir)
    for name in names or FILES.values():
        target = root / name
        if target.is_file():
            continue
        reasons = []
        for mirror in mirrors:
            try:
                request = urllib.request.Request(mirror + name, headers={"User-Agent": "unnparse"})
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                    payload = response.read()
                if not payload.startswith(b"\x1f\x8b"):  # e.g. an HTML error page served with status 200
                    raise ValueError("not a gzip file")
            except (urllib.error.URLError, OSError, ValueError) as err:
                reasons.append(f"{mirror}: {getattr(err, 'reason', err)}")
                continue
            atomic_write_bytes(target, payload)
            break
        else:
            why = " ".join(reasons[-1].split()) if reasons else "no mirror given"
            raise MnistDataError(
                f"MNIST file {name} is not in {root} and could not be downloaded ({why}); "
                f"offline? put the four IDX .gz files in {root} or pass --data-dir"
            )


def load_mnist(data_dir: str | os.PathLike[str] | None = None, *, download: bool = True) -> MnistData:
    """Load the four MNIST files from ``data_dir`` (default :func:`default_data_dir`), downloading missing ones.

    Raises:
        MnistDataError: missing (and not downloadable) or corrupt files, or images and labels that disagree.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    missing = [n for n in FILES.values() if not (root / n).is_file()]
    if missing and not download:
        raise MnistDataError(f"{root}: missing MNIST file(s) {', '.join(missing)} (downloading is off)")
    if missing:
        download_mnist(root, names=missing)
    arrays = {key: read_idx(root / name) for key, name in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dim() != 3 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
            raise MnistDataError(
                f"{root / FILES[f'{split}_images']}: {split} images {tuple(images.shape)} do not match "
                f"labels {tuple(labels.shape)}"
            )
        if labels.numel() and int(labels.max()) > 9:
            raise MnistDataError(f"{root / FILES[f'{split}_labels']}: labels must be digits 0-9")
    return MnistData(
        arrays["train_images"],
        arrays["train_labels"].long(),
        arrays["test_images"],
        arrays["test_labels"].long(),
    )


def split_dev(n: int, dev_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded random split of ``range(n)`` into (train indices, dev indices) with ``dev_size`` dev items."""
    if not 0 < dev_size < n:
        raise ValueError(f"dev size must be between 1 and {n - 1} for {n} training images, got {dev_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[dev_size:].sort().values, perm[:dev_size].sort().values


def batches(
    indices: Tensor, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None
) -> Iterator[Tensor]:
    """Consecutive slices of ``indices`` (shuffled first when asked), the last one possibly shorter."""
    if shuffle:
        indices = indices[torch.randperm(len(indices), generator=generator)]
    for start in range(0, len(indices), batch_size):
        yield indices[start : start + batch_size]


def to_float(images: Tensor) -> Tensor:
    """``uint8 [B, 28, 28]`` → ``float [B, 1, 28, 28]`` in [-1, 1] (the domain of the tanh-regularized X)."""
    return images.unsqueeze(1).float().mul_(2.0 / 255.0).sub_(1.0)


def binarize(images: Tensor) -> Tensor:
    """``uint8 [B, 28, 28]`` → ``float [B, 1, 28, 28]`` of 0/1 (pixel ≥ 128), the target of the prototype loss."""
    return (images.unsqueeze(1) >= 128).float()
