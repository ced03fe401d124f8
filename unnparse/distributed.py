"""Multi-process training with PyTorch DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc-per-node N -m unnparse train …`` sets RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR; the training
commands call :func:`init_from_env` to join the process group (NCCL on CUDA, gloo on CPU). ``unnparse train
--nproc N`` re-launches itself under torchrun for the user (:func:`relaunch_with_torchrun`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["DistContext", "init_from_env", "relaunch_with_torchrun", "shutdown"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank, the world size and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group described by torchrun's environment; a no-op (world size 1) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return DistContext(rank=rank, local_rank=local_rank, world_size=world, device=device)


def shutdown() -> None:
    """Leave the process group, if any."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def relaunch_with_torchrun(nproc: int, argv: Sequence[str], module: str = "unnparse") -> int:
    """Run ``python -m torch.distributed.run --nproc-per-node nproc -m module argv…``; return its exit status."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        module,
        *argv,
    ]
    return subprocess.call(cmd)
