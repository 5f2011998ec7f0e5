"""The one boundary between rerank-bench and NVML.

Everything NVIDIA-specific that the probe and the sweep need goes through `NvmlSession`, so tests fake
this module's single input (the `pynvml` module object) and nothing else. Nothing here creates a CUDA
context: NVML reads the driver's view of the devices.

Modelled on gpustat's `safenvml` and nvitop's `nvmlQuery`: an unsupported field becomes None with a note,
a missing library or driver becomes an empty list with a reason, never an exception.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as NVML sees it. Fields NVML could not read are None, with the reason in `notes`."""

    index: int  # NVML index (PCI bus order)
    cuda_index: int | None  # index torch/CUDA will use, from CUDA_VISIBLE_DEVICES; None if hidden from CUDA
    name: str | None
    uuid: str | None
    memory_total_mib: float | None
    memory_free_mib: float | None
    memory_used_mib: float | None
    compute_capability: str | None
    power_limit_w: float | None
    mig_mode: str | None  # "enabled", "disabled", or None where the GPU has no MIG
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NvmlReport:
    gpus: list[GpuInfo]
    reason: str | None  # why `gpus` is empty (or partial); None when all went well
    driver_version: str | None = None
    cuda_driver_version: str | None = None


def _load_pynvml() -> Any | None:
    try:
        import pynvml  # from the nvidia-ml-py distribution
    except ImportError:
        return None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlSession:
    """An initialised NVML, or the reason it could not be. Use as a context manager."""

    def __init__(self, lib: Any | None = None) -> None:
        self.lib: Any = lib if lib is not None else _load_pynvml()
        self.ok = False
        self.reason: str | None = None

    def __enter__(self) -> NvmlSession:
        if self.lib is None:
            self.reason = "nvidia-ml-py is not installed: cannot query NVIDIA GPUs (pip install nvidia-ml-py)"
            return self
        try:
            self.lib.nvmlInit()
            self.ok = True
        except self.lib.NVMLError as exc:
            self.reason = self._init_reason(exc)
        except OSError as exc:  # a broken libnvidia-ml can fail in ctypes before NVML answers
            self.reason = f"NVML could not be loaded: {exc}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.ok:
            with contextlib.suppress(self.lib.NVMLError):
                self.lib.nvmlShutdown()

    def _init_reason(self, exc: Exception) -> str:
        code = getattr(exc, "value", None)
        if code == getattr(self.lib, "NVML_ERROR_LIBRARY_NOT_FOUND", 12):
            return "NVML library not found: no NVIDIA driver"
        if code == getattr(self.lib, "NVML_ERROR_DRIVER_NOT_LOADED", 9):
            return "NVIDIA driver not loaded (NVML: Driver Not Loaded)"
        if code == getattr(self.lib, "NVML_ERROR_NO_PERMISSION", 4):
            return "no permission to query NVML"
        return f"NVML failed to initialise: {_text(exc)}"

    def query(self, func_name: str, *args: Any, notes: dict[str, str] | None = None, key: str = "") -> Any:
        """Call one NVML function; on NVMLError return None and record why under notes[key]."""
        func: Callable[..., Any] | None = getattr(self.lib, func_name, None)
        if func is None:
            if notes is not None:
                notes[key or func_name] = f"{func_name} missing from this nvidia-ml-py"
            return None
        try:
            return func(*args)
        except self.lib.NVMLError as exc:
            if notes is not None:
                code = getattr(exc, "value", None)
                if code == getattr(self.lib, "NVML_ERROR_NOT_SUPPORTED", 3):
                    notes[key or func_name] = "not supported"
                elif code == getattr(self.lib, "NVML_ERROR_GPU_IS_LOST", 15):
                    notes[key or func_name] = "GPU is lost"
                else:
                    notes[key or func_name] = _text(exc)
            return None


def parse_visible_devices(value: str | None, uuids: list[str | None]) -> list[int | None]:
    """Map each NVML index to the CUDA index that CUDA_VISIBLE_DEVICES gives it (None: hidden).

    Entries may be indices ("1,0") or UUID prefixes ("GPU-8a1f"). As CUDA does, parsing stops at the
    first invalid entry. Unset means all devices in PCI order, which is CUDA's order only with
    CUDA_DEVICE_ORDER=PCI_BUS_ID; the probe says so when more than one GPU is present.
    """
    n = len(uuids)
    if value is None:
        return list(range(n))
    mapping: list[int | None] = [None] * n
    for cuda_index, raw in enumerate(value.split(",")):
        entry = raw.strip()
        nvml_index: int | None = None
        if entry.lstrip("-").isdigit():
            i = int(entry)
            if 0 <= i < n:
                nvml_index = i
        elif entry.startswith(("GPU-", "MIG-")):
            matches = [i for i, u in enumerate(uuids) if u and u.startswith(entry)]
            nvml_index = matches[0] if len(matches) == 1 else None
        if nvml_index is None or mapping[nvml_index] is not None:
            break
        mapping[nvml_index] = cuda_index  # CUDA numbers the listed devices in order, up to the first bad entry
    return mapping


def _cuda_version_text(version: Any) -> str | None:
    if version is None:
        return None
    v = int(version)
    return f"{v // 1000}.{(v % 1000) // 10}"


def query_gpus(lib: Any | None = None, environ: dict[str, str] | None = None) -> NvmlReport:
    """Every NVIDIA GPU NVML can see, without creating a CUDA context."""
    env = os.environ if environ is None else environ
    with NvmlSession(lib) as nvml:
        if not nvml.ok:
            return NvmlReport(gpus=[], reason=nvml.reason)
        count = nvml.query("nvmlDeviceGetCount")
        if count is None:
            return NvmlReport(gpus=[], reason="NVML could not count the GPUs")
        driver = nvml.query("nvmlSystemGetDriverVersion")
        cuda_driver = nvml.query("nvmlSystemGetCudaDriverVersion_v2") or nvml.query("nvmlSystemGetCudaDriverVersion")
        raw: list[tuple[dict[str, Any], dict[str, str]]] = []
        for index in range(count):
            notes: dict[str, str] = {}
            handle = nvml.query("nvmlDeviceGetHandleByIndex", index, notes=notes, key="handle")
            if handle is None:
                raw.append(({"index": index}, notes))
                continue
            fields: dict[str, Any] = {"index": index}
            name = nvml.query("nvmlDeviceGetName", handle, notes=notes, key="name")
            fields["name"] = _text(name) if name is not None else None
            uuid = nvml.query("nvmlDeviceGetUUID", handle, notes=notes, key="uuid")
            fields["uuid"] = _text(uuid) if uuid is not None else None
            mem = nvml.query("nvmlDeviceGetMemoryInfo", handle, notes=notes, key="memory")
            if mem is not None:
                fields["memory_total_mib"] = round(mem.total / MIB, 1)
                fields["memory_free_mib"] = round(mem.free / MIB, 1)
                fields["memory_used_mib"] = round(mem.used / MIB, 1)
            cc = nvml.query("nvmlDeviceGetCudaComputeCapability", handle, notes=notes, key="compute_capability")
            fields["compute_capability"] = f"{cc[0]}.{cc[1]}" if cc is not None else None
            power = nvml.query("nvmlDeviceGetPowerManagementLimit", handle, notes=notes, key="power_limit_w")
            fields["power_limit_w"] = round(power / 1000.0, 1) if power is not None else None
            mig = nvml.query("nvmlDeviceGetMigMode", handle, notes=notes, key="mig_mode")
            if mig is not None:
                enabled = getattr(nvml.lib, "NVML_DEVICE_MIG_ENABLE", 1)
                fields["mig_mode"] = "enabled" if mig[0] == enabled else "disabled"
                if mig[0] == enabled:
                    notes["mig_mode"] = "MIG on: memory is the whole GPU's; each MIG instance sees a slice"
            raw.append((fields, notes))

    uuids = [fields.get("uuid") for fields, _ in raw]
    cuda_map = parse_visible_devices(env.get("CUDA_VISIBLE_DEVICES"), uuids)
    gpus = [
        GpuInfo(
            index=fields["index"],
            cuda_index=cuda_map[i],
            name=fields.get("name"),
            uuid=fields.get("uuid"),
            memory_total_mib=fields.get("memory_total_mib"),
            memory_free_mib=fields.get("memory_free_mib"),
            memory_used_mib=fields.get("memory_used_mib"),
            compute_capability=fields.get("compute_capability"),
            power_limit_w=fields.get("power_limit_w"),
            mig_mode=fields.get("mig_mode"),
            notes=notes,
        )
        for i, (fields, notes) in enumerate(raw)
    ]
    reason = None
    if not gpus:
        reason = "NVML found no NVIDIA GPU"
    elif len(gpus) > 1 and env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        reason = "cuda_index assumes PCI bus order; set CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA numbers GPUs the same way"
    return NvmlReport(
        gpus=gpus,
        reason=reason,
        driver_version=_text(driver) if driver is not None else None,
        cuda_driver_version=_cuda_version_text(cuda_driver),
    )


def process_memory_mib(pid: int, device_index: int, lib: Any | None = None) -> float | None:
    """GPU memory NVML attributes to `pid` on one device (NVML index), or None where it cannot tell.

    The whole-process truth that torch's allocator counters miss (CUDA context, cuBLAS workspaces).
    """
    with NvmlSession(lib) as nvml:
        if not nvml.ok:
            return None
        handle = nvml.query("nvmlDeviceGetHandleByIndex", device_index)
        if handle is None:
            return None
        procs = nvml.query("nvmlDeviceGetComputeRunningProcesses", handle) or []
        for proc in procs:
            used = getattr(proc, "usedGpuMemory", None)
            if getattr(proc, "pid", None) == pid and used is not None:
                return round(used / MIB, 1)
    return None
