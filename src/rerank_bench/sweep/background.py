"""How much of the machine other processes took while a case ran, so a busy machine never passes silently.

System-wide busy CPU time (psutil.cpu_times: everything but idle and I/O wait) minus this process's own CPU
time, over the wall time and the machine's logical CPUs. Another job holding both cores of a 2-core runner
halves a sweep's figures; this says so in every row (`background_cpu_pct`). /proc/stat is host-wide, so in a
container the neighbours' load counts too, which is what decides the figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CpuSample:
    busy_s: float  # CPU seconds the whole machine spent busy, since boot
    own_s: float  # CPU seconds this process spent, since it started
    wall_s: float  # a monotonic clock
    cpus: int


def sample(psutil_module: Any | None = None, clock: Any = time.monotonic) -> CpuSample:
    psutil: Any = psutil_module
    if psutil is None:
        import psutil as installed

        psutil = installed
    times = psutil.cpu_times()
    # guest time is already inside user time on Linux; idle and iowait are not work
    idle = times.idle + getattr(times, "iowait", 0.0)
    counted = sum(getattr(times, f) for f in times._fields if f not in ("guest", "guest_nice"))
    own = psutil.Process().cpu_times()
    return CpuSample(busy_s=counted - idle, own_s=own.user + own.system, wall_s=clock(), cpus=psutil.cpu_count() or 1)


def background_pct(before: CpuSample, after: CpuSample) -> float | None:
    """Percent of the machine's CPU capacity that other processes used between two samples; None if no time
    passed. 100 means every CPU was busy with something else the whole time."""
    wall = after.wall_s - before.wall_s
    if wall <= 0:
        return None
    other = (after.busy_s - before.busy_s) - (after.own_s - before.own_s)
    return max(0.0, min(100.0, 100.0 * other / (wall * after.cpus)))


def machine_busy_pct(seconds: float = 0.3) -> float | None:
    """Other processes' share of the CPU over a short look, before anything is measured."""
    try:
        before = sample()
        time.sleep(seconds)
        return background_pct(before, sample())
    except Exception:  # noqa: BLE001 - a probe never fails the run: no figure is an answer
        return None
