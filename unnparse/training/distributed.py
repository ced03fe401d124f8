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
from typing import NoReturn

import torch
from torch import Tensor

__all__ = [
    "DistContext",
    "broadcast_parameters",
    "exit_process",
    "init_from_env",
    "mean_gradients",
    "rank_share",
    "relaunch_with_torchrun",
    "shutdown",
]


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
    """Join the process group described by torchrun's environment; a no-op (world size 1) without it.

    Raises:
        ValueError: on CUDA, more processes on this machine than it has GPUs.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"process {local_rank} of this machine needs GPU {local_rank}, but it has "
                f"{torch.cuda.device_count()}: start at most one process per GPU (--nproc, --nproc-per-node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return DistContext(rank=rank, local_rank=local_rank, world_size=world, device=device)


def rank_share(index: Tensor, dist: DistContext) -> tuple[Tensor, float]:
    """This rank's part of a global batch ``index`` and its weight: items ``rank, rank + world, …`` at weight 1.

    The ranks' parts are disjoint and cover the batch. A rank left with nothing (a batch smaller than the world)
    re-reads the batch's first item at weight 0, so that it still runs the same forward pass (and draws the same
    random numbers) as the others and joins their gradient all-reduce without changing its result.
    """
    part = index[dist.rank :: dist.world_size]
    return (part, 1.0) if len(part) else (index[:1], 0.0)


def broadcast_parameters(module: torch.nn.Module, dist: DistContext) -> None:
    """Give every rank rank 0's parameters and buffers (a no-op in one process)."""
    if dist.distributed:
        for tensor in module.state_dict().values():
            torch.distributed.broadcast(tensor, src=0)


def mean_gradients(parameters: Sequence[torch.nn.Parameter], sums: Tensor, dist: DistContext) -> Tensor:
    """Turn each rank's gradients of a loss *summed* over its items into the gradient of the mean over all ranks'.

    ``sums`` is a float vector whose first entry is the number of items this rank's loss summed over; the rest may
    carry any other per-rank totals (loss, correct predictions, a stop flag). Gradients and ``sums`` travel in one
    flat buffer and one all-reduce (none in one process); every gradient is then divided by the total number of
    items, on the device, without a host synchronisation. Returns ``sums`` added over the ranks.
    """
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    if dist.distributed:
        flat = torch.cat([g.reshape(-1) for g in grads] + [sums.to(grads[0].dtype)])
        torch.distributed.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
        sums = flat[offset:]
    torch._foreach_div_(grads, sums[0].clamp_min(1).to(grads[0].dtype))
    for p, g in zip(parameters, grads, strict=True):
        p.grad = g
    return sums


def exit_process(code: int = 0) -> NoReturn:
    """End a finished distributed process now, its output flushed. After the process group is gone, torch's gloo
    backend can still abort the interpreter's normal exit ("terminate called without an active exception"), and
    torchrun would then report the whole run as failed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
