"""One input file parsed on several devices at once (``unnparse parse --devices D1,D2,…``): one worker process per
device parses one shard of it.

Each worker is ``python -m unnparse parse … --shard I/N --device DI`` writing to a temporary file; when all have
finished, their outputs are merged back into input order (:func:`unnparse.parser.sharding.merge_shards`) and
written atomically (or to stdout). A failing worker stops the others and its one-line error is reported; no partial
output is written. CPU workers share the cores (``OMP_NUM_THREADS`` = cores / CPU workers).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from unnparse.runtime import resolve_device

__all__ = ["check_devices", "parse_devices", "run_on_devices"]


def parse_devices(spec: str) -> list[str]:
    """``"cuda:0,cuda:1"`` → the device names, each checked (see :func:`check_devices`)."""
    return check_devices([part.strip() for part in spec.split(",") if part.strip()])


def check_devices(names: Sequence[str]) -> list[str]:
    """The device names (``auto``, ``cpu``, ``cuda``, ``cuda:N``), each checked.

    Raises:
        ValueError: an empty list, an unknown name, CUDA missing, or a CUDA index this machine does not have.
    """
    import torch

    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise ValueError("--devices: name at least one device, e.g. cuda:0,cuda:1")
    for name in names:
        device = resolve_device(name)
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--devices: {name} does not exist (this machine has {torch.cuda.device_count()} GPUs)")
    return names


def _on_cpu(device: str) -> bool:
    import torch

    return device == "cpu" or (device == "auto" and not torch.cuda.is_available())


def _worker_env(device: str, cpu_workers: int) -> dict[str, str]:
    env = dict(os.environ)
    if _on_cpu(device):
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, cpu_workers)))
    return env


def _last_error_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[len("error:") :].strip()
    return lines[-1] if lines else "no message"


def run_on_devices(
    parse_args: Sequence[str],
    input_file: Path,
    devices: Sequence[str],
    *,
    output_format: str,
    block: int,
    output_file: Path | None,
    poll_seconds: float = 0.2,
) -> int:
    """Parse ``input_file`` with one worker per device and write the merged output; returns the sentence count.

    ``parse_args`` are the worker's ``unnparse parse`` options other than ``--input``, ``--output``, ``--shard``,
    ``--shard-block`` and ``--device`` (model, formats, batch size, precision, marginals).

    Raises:
        RuntimeError: a worker failed (the message names it and carries its error line).
    """
    from unnparse.io_utils import atomic_output
    from unnparse.parser.sharding import merge_shards

    n = len(devices)
    cpu_workers = sum(1 for d in devices if _on_cpu(d))
    with tempfile.TemporaryDirectory(prefix="unnparse-devices-") as tmp:
        parts = [Path(tmp) / f"shard-{i}.out" for i in range(n)]
        logs = [Path(tmp) / f"shard-{i}.err" for i in range(n)]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for i, device in enumerate(devices):
                cmd = [sys.executable, "-m", "unnparse", "parse", *parse_args, "--input", str(input_file)]
                cmd += ["--shard", f"{i}/{n}", "--shard-block", str(block), "--device", device]
                cmd += ["--output", str(parts[i])]
                with open(logs[i], "wb") as err:
                    procs.append(
                        subprocess.Popen(
                            cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=_worker_env(device, cpu_workers)
                        )
                    )
            while True:  # until all have finished, or one has failed
                codes = [p.poll() for p in procs]
                if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
                    break
                time.sleep(poll_seconds)
            for i, p in enumerate(procs):
                if p.poll() not in (None, 0):
                    raise RuntimeError(f"worker {i} ({devices[i]}): {_last_error_line(logs[i])}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    p.wait()
        _forward_warnings(logs)
        records = merge_shards(parts, output_format, block=block)
        count = 0
        target = atomic_output(output_file, "w") if output_file is not None else contextlib.nullcontext(sys.stdout)
        with target as fh:
            for record in records:
                fh.write(record)
                count += 1
            fh.flush()
        return count


def _forward_warnings(logs: Sequence[Path]) -> None:
    """The workers' warnings on stderr, each once."""
    seen: set[str] = set()
    for log in logs:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("warning:") and line not in seen:
                seen.add(line)
                print(line, file=sys.stderr)
