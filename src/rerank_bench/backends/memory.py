"""Peak memory during one case.

CPU: Linux lets a process reset its own peak-RSS counter (write "5" to /proc/self/clear_refs, then read
VmHWM from /proc/self/status), which gives an exact per-case peak. Where that is not possible, a thread
samples RSS every few milliseconds (a lower bound).
CUDA: reset torch's peak counters, synchronise, run, read max allocated/reserved; NVML adds the whole
process (CUDA context and library workspaces that the allocator does not see).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def _status_kib(field: str, proc: Path) -> int | None:
    try:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class RssTracker:
    """Peak resident set size of this process between begin() and end()."""

    def __init__(self, proc: Path = Path("/proc/self"), sample_interval_s: float = 0.002) -> None:
        self.proc = proc
        self.interval = sample_interval_s
        self._start_rss_kib: int | None = None
        self._use_hwm = False
        self._peak_sampled = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss_kib(self) -> int:
        value = _status_kib("VmRSS", self.proc)
        if value is not None:
            return value
        import psutil

        return psutil.Process().memory_info().rss // 1024

    def begin(self) -> None:
        self._start_rss_kib = self._rss_kib()
        try:
            (self.proc / "clear_refs").write_text("5")
            self._use_hwm = _status_kib("VmHWM", self.proc) is not None
        except OSError:
            self._use_hwm = False
        if not self._use_hwm:
            self._peak_sampled = self._start_rss_kib
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak_sampled = max(self._peak_sampled, self._rss_kib())

    def end(self) -> dict[str, float | None]:
        if self._use_hwm:
            peak = _status_kib("VmHWM", self.proc) or self._rss_kib()
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            peak = max(self._peak_sampled, self._rss_kib())
        start = self._start_rss_kib or 0
        return {"peak_rss_mib": round(peak / 1024, 1), "rss_growth_mib": round(max(0, peak - start) / 1024, 1)}


class CudaTracker:
    """torch.cuda peak counters plus NVML's view of this process. `cuda` is torch.cuda (a fake in tests)."""

    def __init__(self, cuda: Any, device_index: int, nvml_lib: Any | None = None) -> None:
        self.cuda = cuda
        self.device_index = device_index
        self.nvml_lib = nvml_lib
        self.rss = RssTracker()

    def begin(self) -> None:
        self.cuda.synchronize(self.device_index)
        self.cuda.reset_peak_memory_stats(self.device_index)
        self.rss.begin()

    def _nvml_index(self) -> int | None:
        from rerank_bench.probe.nvml import query_gpus

        try:
            uuid = str(self.cuda.get_device_properties(self.device_index).uuid)
        except (AttributeError, RuntimeError):
            return None
        for gpu in query_gpus(self.nvml_lib, environ={}).gpus:
            if gpu.uuid and gpu.uuid.removeprefix("GPU-") == uuid.removeprefix("GPU-"):
                return gpu.index
        return None

    def end(self) -> dict[str, float | None]:
        from rerank_bench.probe.nvml import process_memory_mib

        self.cuda.synchronize(self.device_index)
        out: dict[str, float | None] = dict(self.rss.end())
        out["peak_vram_allocated_mib"] = round(self.cuda.max_memory_allocated(self.device_index) / MIB, 1)
        out["peak_vram_reserved_mib"] = round(self.cuda.max_memory_reserved(self.device_index) / MIB, 1)
        index = self._nvml_index()
        out["nvml_process_mib"] = process_memory_mib(os.getpid(), index, self.nvml_lib) if index is not None else None
        return out


class MpsTracker:
    """Apple MPS has no peak counters: report what the driver holds at the end, beside the process RSS."""

    def __init__(self, mps: Any) -> None:
        self.mps = mps
        self.rss = RssTracker()

    def begin(self) -> None:
        self.mps.synchronize()
        self.rss.begin()

    def end(self) -> dict[str, float | None]:
        self.mps.synchronize()
        out: dict[str, float | None] = dict(self.rss.end())
        out["peak_vram_allocated_mib"] = round(self.mps.current_allocated_memory() / MIB, 1)
        out["peak_vram_reserved_mib"] = round(self.mps.driver_allocated_memory() / MIB, 1)
        return out


def tracker_for(torch: Any, device: str) -> Any:
    """The peak-memory tracker of a torch device: CUDA's allocator, Metal's, or the process's RSS on the CPU."""
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
        return CudaTracker(torch.cuda, index)
    if device == "mps":
        return MpsTracker(torch.mps)
    return RssTracker()
