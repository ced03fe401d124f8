"""Moving tensors to a device and waiting for it: torch alone, so that the engine can use it without the trainers'
run-time helpers (consoles, progress bars)."""

from __future__ import annotations

import torch

__all__ = ["host_to_device", "synchronize"]


def host_to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` (on the CPU) on ``device``: to CUDA a pinned, asynchronous copy, so that the host goes on queueing
    work instead of waiting for the device to finish what it has (a plain copy from pageable memory waits)."""
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU), before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
