"""CPU threads on a shared machine: OpenMP settings applied before torch is first imported, and the number of
threads a command uses when ``--threads`` is not given. Nothing here imports torch.

By default the OpenMP runtime that torch uses keeps its idle worker threads spinning for a long while after each
parallel region (GNU OpenMP: 300,000 spins), so that the next region starts a few microseconds sooner. On a machine
where other jobs also compute, the spinning threads take CPU time from those jobs (and from each other): a parser's
many small parallel regions then cost several times the CPU seconds they cost alone. Putting idle threads to sleep at
once (``OMP_WAIT_POLICY=PASSIVE``) cures that but makes every parallel region wake its threads through the kernel:
parsing a small input (a request of a few sentences) with 2 threads then takes 2.5 times as long as with 1.
:func:`yield_idle_threads` asks for the middle way: idle threads spin briefly, then sleep (``GOMP_SPINCOUNT=2000``
for GNU OpenMP, ``KMP_BLOCKTIME=1`` ms for Intel OpenMP). The runtime reads these variables once, when torch's
libraries are loaded, so ``unnparse/__init__.py`` calls it before any of the package's modules imports torch. What
the user has set in the environment is kept: ``OMP_WAIT_POLICY=ACTIVE`` or ``PASSIVE`` decides alone.

Left alone, torch also starts one thread per core, however busy the machine; :func:`default_threads` takes a share.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["OPENMP_ENV", "THREADS_CAP", "default_threads", "yield_idle_threads"]

#: The variables set when the environment does not set them (nor ``OMP_WAIT_POLICY``) already.
OPENMP_ENV = {"GOMP_SPINCOUNT": "2000", "KMP_BLOCKTIME": "1"}
#: The most CPU threads a command uses by default: the parser's LSTMs and small matrices gain little from more.
THREADS_CAP = 4


def yield_idle_threads() -> dict[str, str]:
    """Set :data:`OPENMP_ENV` in ``os.environ`` where not set (a user's value is kept); return the values in force.

    It has an effect only before torch is first imported in this process (and in the processes it starts). A user's
    ``OMP_WAIT_POLICY`` decides alone: nothing is set then."""
    if os.environ.get("OMP_WAIT_POLICY"):
        return {name: os.environ[name] for name in OPENMP_ENV if name in os.environ}
    return {name: os.environ.setdefault(name, value) for name, value in OPENMP_ENV.items()}


def _cgroup_cpus(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """The CPUs a cgroup (v2) quota allows this process (``quota period``), or None without a quota."""
    try:
        quota, period = Path(path).read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def default_threads(
    *,
    cpus: int | None = None,
    machine_cpus: int | None = None,
    load: float | None = None,
    cap: int = THREADS_CAP,
) -> int:
    """How many CPU threads torch should use when ``--threads`` is not given: a share of the machine, never all of it
    by accident.

    ``$OMP_NUM_THREADS``, when set to a positive number, decides (as it would for torch). Otherwise: the CPUs this
    process may run on (``cpus``: its affinity mask and any cgroup quota), at most ``cap``, and at most the CPUs of
    the machine that the others do not already keep busy (``machine_cpus`` less the 1-minute ``load`` average,
    rounded), and at least 1. On an idle 2-core machine that is 2; beside two busy jobs, 1. The arguments default to
    what the operating system says (tests pass their own).
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        quota = _cgroup_cpus()
        if quota is not None:
            cpus = min(cpus, max(1, math.ceil(quota)))
    if machine_cpus is None:
        machine_cpus = os.cpu_count() or cpus
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # not available on this system
            load = 0.0
    idle = math.floor(machine_cpus - load + 0.5)
    return max(1, min(cpus, cap, idle))
