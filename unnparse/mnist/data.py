"""MNIST in its four standard IDX ``.gz`` files: reading, downloading, dev split and batching.

The whole data set is held as one ``uint8`` tensor per split (47 MB for train); a batch is an index into it,
converted to float only when used (:func:`to_float`), so loading costs next to nothing per step.
"""

from __future__ import annotations

import gzip
import os
import struct
import time
import urllib.error
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from torch import Tensor

from unnparse.downloads import fetch, host_of
from unnparse.io_utils import atomic_write_bytes
from unnparse.paths import data_root

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
#: Seconds one file's download may take in all, and its largest size (the biggest MNIST file is 9.9 MB).
DEADLINE_S = 600.0
MAX_DOWNLOAD_BYTES = 64 << 20
#: Largest IDX data read (bytes; the MNIST training images are 47 MB).
MAX_IDX_BYTES = 1 << 28
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
    return data_root() / "mnist"


def read_idx(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Tensor:
    """Read a gzipped IDX file of unsigned bytes into a ``uint8`` tensor of the shape its header gives.

    The header is read and checked from the gzip stream before anything else is inflated; a shape of more than
    ``max_bytes`` bytes (default :data:`MAX_IDX_BYTES`) is refused, and then exactly the announced bytes are read,
    so a small file that inflates to gigabytes costs no more memory than the cap.

    Raises:
        MnistDataError: missing file, bad gzip stream, bad header, a shape over the cap, or data that is
            truncated or longer than the header says.
    """
    path = Path(path)
    cap = MAX_IDX_BYTES if max_bytes is None else max_bytes
    if not path.is_file():
        raise MnistDataError(f"{path}: missing")
    try:
        with gzip.open(path, "rb") as fh:
            magic = fh.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
                raise MnistDataError(f"{path}: not an IDX file (bad magic number)")
            if magic[2] != _UBYTE:
                raise MnistDataError(f"{path}: IDX data type {magic[2]:#04x} is not unsigned byte")
            ndim = magic[3]
            dims = fh.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise MnistDataError(f"{path}: truncated IDX header")
            shape = struct.unpack(f">{ndim}I", dims)
            count = 1
            for s in shape:
                count *= s
            if count > cap:
                raise MnistDataError(
                    f"{path}: IDX header announces {count:,} bytes of data, more than the {cap:,} allowed"
                )
            data = bytearray(count)
            got = _read_into(fh, data)
            if got != count:
                raise MnistDataError(f"{path}: IDX header announces {count} bytes of data, file holds {got}")
            if fh.read(1):
                raise MnistDataError(f"{path}: the file holds more data than its IDX header announces ({count} bytes)")
    except (OSError, EOFError, zlib.error) as err:
        raise MnistDataError(f"{path}: not a readable gzip file ({' '.join(str(err).split())})") from None
    tensor = torch.frombuffer(data, dtype=torch.uint8) if count else torch.empty(0, dtype=torch.uint8)
    return tensor.reshape(shape)


def _read_into(fh: BinaryIO, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``fh``; the number of bytes read (fewer than its length only at the end of ``fh``)."""
    view = memoryview(buffer)
    done = 0
    while done < len(buffer):
        got = fh.readinto(view[done:])
        if not got:
            break
        done += got
    return done


def download_mnist(
    data_dir: str | os.PathLike[str], *, mirrors: Sequence[str] = MIRRORS, names: Sequence[str] | None = None
) -> None:
    """Download the MNIST files missing from ``data_dir``, trying each mirror in turn.

    Each file must arrive within :data:`DEADLINE_S` seconds and :data:`MAX_DOWNLOAD_BYTES` bytes, and redirects are
    followed only to the mirrors' hosts (:func:`unnparse.downloads.fetch`).

    Raises:
        MnistDataError: a file could be fetched from no mirror (e.g. offline); one line with the last reason.
    """
    root = Path(data_dir)
    for name in names or FILES.values():
        target = root / name
        if target.is_file():
            continue
        reasons = []
        hosts = {host_of(m) for m in mirrors}
        for mirror in mirrors:
            try:
                deadline = time.monotonic() + DEADLINE_S
                payload = fetch(
                    mirror + name,
                    allowed_hosts=hosts,
                    max_bytes=MAX_DOWNLOAD_BYTES,
                    deadline=deadline,
                    timeout_s=TIMEOUT_S,
                )
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


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    splits: tuple[str, ...] = ("train", "test"),
) -> MnistData:
    """Load the MNIST files of ``splits`` (``train``, ``test``) from ``data_dir`` (default
    :func:`default_data_dir`), downloading missing ones; a split not asked for is left empty.

    Raises:
        MnistDataError: missing (and not downloadable) or corrupt files, or images and labels that disagree.
    """
    unknown = set(splits) - {"train", "test"}
    if unknown or not splits:
        raise ValueError(f"splits must be train and/or test, not {splits!r}")
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    wanted = {key: name for key, name in FILES.items() if key.split("_")[0] in splits}
    missing = [n for n in wanted.values() if not (root / n).is_file()]
    if missing and not download:
        raise MnistDataError(f"{root}: missing MNIST file(s) {', '.join(missing)} (downloading is off)")
    if missing:
        download_mnist(root, names=missing)
    arrays = {key: read_idx(root / name) for key, name in wanted.items()}
    for split in splits:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dim() != 3 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
            raise MnistDataError(
                f"{root / FILES[f'{split}_images']}: {split} images {tuple(images.shape)} do not match "
                f"labels {tuple(labels.shape)}"
            )
        if labels.numel() and int(labels.max()) > 9:
            raise MnistDataError(f"{root / FILES[f'{split}_labels']}: labels must be digits 0-9")
    empty_images, empty_labels = torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    return MnistData(
        arrays.get("train_images", empty_images),
        arrays.get("train_labels", empty_labels).long(),
        arrays.get("test_images", empty_images),
        arrays.get("test_labels", empty_labels).long(),
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
