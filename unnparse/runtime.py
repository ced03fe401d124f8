"""Run-time helpers shared by the trainers: device choice, CPU threads, optimizers and progress bars."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast

import torch

from unnparse.cpu_threads import default_threads
from unnparse.precisions import PARSE_PRECISIONS, PRECISIONS

__all__ = [
    "PARSE_PRECISIONS",
    "PRECISIONS",
    "adam",
    "denormals_flushed",
    "autocast",
    "check_precision",
    "cpu_has_native_bf16",
    "lstm_bfloat16_supported",
    "precision_name",
    "precision_warning",
    "quantize_int8",
    "resolve_device",
    "resolve_precision",
    "set_threads",
]

F = TypeVar("F", bound=Callable[..., Any])


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``/``cuda``/``cuda:N`` as given.

    Raises:
        ValueError: an unknown name, or CUDA asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but CUDA is not available on this machine")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX tiles or AVX512-BF16)."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(cpu, probe, None)
        if check is not None and check():
            return True
    return False


@functools.cache
def lstm_bfloat16_supported(device_type: str) -> bool:
    """Whether the fused LSTM kernels of ``device_type`` run forward and backward under bfloat16 autocast.

    oneDNN's CPU LSTM has no bfloat16 kernel on x86 CPUs without AVX-512 and fails there; callers then run their
    LSTMs in float32 (see :class:`unnparse.parser.encoders.PaddedBiLSTM`). Probed once per device type."""
    if device_type != "cpu":
        return True
    lstm = torch.nn.LSTM(4, 4, batch_first=True)
    x = torch.zeros(1, 2, 4, requires_grad=True)
    try:
        with torch.enable_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = lstm(x)
        out.float().sum().backward()
    except RuntimeError:
        return False
    return True


def check_precision(name: str, *, parsing: bool = False) -> str:
    """``name`` if it is one of :data:`PRECISIONS` (with ``parsing``, of :data:`PARSE_PRECISIONS`).

    Raises:
        ValueError: an unknown precision name.
    """
    names = PARSE_PRECISIONS if parsing else PRECISIONS
    if name not in names:
        raise ValueError(f"unknown precision {name!r}; use {', '.join(names)}")
    return name


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` (on the CPU) whose LSTMs and linear layers have int8 weights (linear layers with a scale
    per output row) and quantize their inputs per batch (torch's dynamic quantization); everything else stays
    float32. For parsing only: the copy has no
    gradients.

    Raises:
        ValueError: ``model`` is not on the CPU (int8 kernels are the CPU's).
    """
    import warnings

    device = next(model.parameters()).device
    if device.type != "cpu":
        raise ValueError(f"--precision int8 parses on the CPU only, not on {device}")
    # torch's eager dynamic quantization, the one with int8 LSTM kernels (torchao, its announced successor, has
    # none); its deprecation notices are torch's concern, not the user's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        # a scale per output row of a linear layer: with one per matrix, a MiniLM encoder lost 2.5 LAS, with one per
        # row 1.0 (BENCHMARKS.md, "Parsing in int8")
        layers = {torch.nn.Linear: per_channel_dynamic_qconfig, torch.nn.LSTM: default_dynamic_qconfig}
        quantized = quantize_dynamic(model, layers, dtype=torch.qint8, inplace=False)
    return quantized.eval()


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the encoder on ``device``, or ``None`` for plain float32.

    ``auto`` is bfloat16 on CUDA and float32 on the CPU, where how sentences are batched changes results only by
    float32 rounding (the last digit of a rounded probability, rarely); ``float32`` and ``bfloat16`` are taken as
    given; ``int8`` is float32 around the quantized layers (:func:`quantize_int8`), which autocast leaves alone.
    bfloat16 on a CPU is fast where the CPU multiplies bfloat16 matrices in hardware (:func:`cpu_has_native_bf16`)
    and slow elsewhere. The UNN iterations and the tree structures always run in float32/float64 whatever the
    precision.

    Raises:
        ValueError: an unknown precision name.
    """
    if check_precision(name, parsing=True) in ("float32", "int8"):  # int8: the quantized layers, float32 elsewhere
        return None
    if name == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cuda" else None


def precision_warning(name: str, device: torch.device) -> str | None:
    """A line to show when ``name`` asks for bfloat16 on a CPU that has no native bfloat16 (it runs, slowly)."""
    if name == "bfloat16" and device.type == "cpu" and not cpu_has_native_bf16():
        return "this CPU has no native bfloat16 (AMX or AVX512-BF16): --precision bfloat16 will be slower than float32"
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    """``float32`` for ``None`` (no autocast), else the dtype's name (``bfloat16``)."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[object]:
    """Mixed precision on ``device`` with ``dtype``, or nothing for ``None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def adam(params: Any, *, decoupled: bool = False, **options: Any) -> torch.optim.Optimizer:
    """Adam (``decoupled``: AdamW) with torch's fused kernel where this torch build and the parameters' device
    support it, else the default implementation; ``options`` go to the optimizer (``lr``, ``betas``, ...).

    The fused kernel updates each tensor in one pass instead of one pass per arithmetic operation: on the CPU a
    parser's AdamW step takes about a fifth of the time (3.5 M parameters: 4 ms instead of 20 ms), the same update
    up to floating-point rounding.
    """
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    params = list(params)
    try:
        return cls(params, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device, dtype or torch version
        return cls(params, **options)


def denormals_flushed(func: F) -> F:
    """Run ``func`` with denormal floats treated as zero on the CPU (flush-to-zero), then switch that back off.

    Late in training, values below float32's smallest normal number (about 1.2e-38) appear in the gradients and
    the optimizer's moments; the CPU computes with them tens of times slower than with normal numbers, and a
    parser's training words per second fall by a third to a half over a run. Flushing them to zero changes no
    result that matters (they are far below float32's resolution of any weight) and keeps the speed.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flushing = torch.set_flush_denormal(True)  # False where the CPU cannot (then nothing changed)
        try:
            return func(*args, **kwargs)
        finally:
            if flushing:
                torch.set_flush_denormal(False)

    return cast(F, wrapper)


def set_threads(threads: int | None = None) -> int:
    """Make torch use ``threads`` CPU threads (``None`` or 0: :func:`unnparse.cpu_threads.default_threads`, never
    torch's own default of every core) for its operations and as many for its inter-op pool (where that is still
    allowed: torch fixes the pool on its first parallel work). Returns the number used."""
    n = threads if threads else default_threads()
    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):  # the inter-op pool has already started
        torch.set_num_interop_threads(n)
    return n
