"""CPU, cores and memory as this process can actually use them.

psutil reports the host inside a container; the cgroup (v2 `cpu.max`/`memory.max`, v1 `cfs_quota_us`/
`limit_in_bytes`) says what we may use. Every file is read below `root` so tests can point it at a temp dir.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MIB = 1024**2
# cgroup v1 writes "no limit" as a huge page-aligned number rather than "max".
_V1_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class CpuInfo:
    model: str
    architecture: str
    physical_cores: int | None
    logical_cores: int
    affinity_cores: int  # cores the scheduler lets this process run on
    cgroup_cpu_quota: float | None  # cores' worth of CPU time the cgroup grants, None if unlimited
    usable_cores: int  # what a benchmark should use: min(affinity, ceil(quota))
    isa: str  # vector ISA: torch's own answer when torch is importable, else from the CPU flags
    isa_source: str  # "torch" or "cpuinfo"
    isa_flags: list[str]  # the reranking-relevant flags present (avx2, avx512_bf16, amx_tile, ...)
    identity: CpuIdentity  # vendor, family/model/stepping, caches, topology: tells hosts apart under a masked name
    ram_total_mib: float
    ram_available_mib: float
    cgroup_memory_limit_mib: float | None
    address_space_limit_mib: float | None  # RLIMIT_AS (ulimit -v), None if unlimited
    memory_usable_mib: float  # min(host RAM, cgroup limit, address-space limit)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel.lstrip("/")).read_text()
    except OSError:
        return None


def cpuinfo_fields(root: Path) -> tuple[str, list[str]]:
    """(model name, flags) from /proc/cpuinfo; ARM lists 'Features' and may have no model name."""
    text = _read(root, "/proc/cpuinfo") or ""
    model, flags = "", []  # type: tuple[str, list[str]]
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if not model and key in ("model name", "hardware", "cpu model", "processor") and not value.strip().isdigit():
            model = value.strip()
        if not flags and key in ("flags", "features"):
            flags = value.split()
    return model or platform.processor() or platform.machine(), flags


_IDENTITY_KEYS = (
    "vendor_id",
    "cpu family",
    "model",
    "stepping",
    "siblings",
    "cpu cores",
    "cpu implementer",
    "cpu part",
    "cpu variant",
)


@dataclass(frozen=True)
class CacheLevel:
    level: int
    type: str  # Data, Instruction or Unified
    size: str  # as the kernel writes it, e.g. "32K"


@dataclass(frozen=True)
class CpuIdentity:
    """What tells CPUs apart when a VM masks the model name ("AMD EPYC"): vendor, family, model and stepping
    (x86) or implementer, part and variant (Arm), the cache sizes and the topology. Stable run to run (no
    frequencies, no microcode, nothing that moves). `text()` is the form the hardware fingerprint hashes."""

    vendor: str | None
    family: str | None
    model: str | None
    stepping: str | None
    implementer: str | None
    part: str | None
    variant: str | None
    siblings: int | None  # logical CPUs per socket
    cores: int | None  # physical cores per socket
    sockets: int
    caches: tuple[CacheLevel, ...]

    def text(self) -> str:
        """One line, unchanged since fingerprints first hashed it, so fingerprints stay as they were."""
        named = {
            "vendor_id": self.vendor,
            "cpu family": self.family,
            "model": self.model,
            "stepping": self.stepping,
            "siblings": self.siblings,
            "cpu cores": self.cores,
            "cpu implementer": self.implementer,
            "cpu part": self.part,
            "cpu variant": self.variant,
        }
        parts = [
            " ".join(f"{k}={named[k]}" for k in sorted(named) if named[k] is not None),
            ", ".join(f"L{c.level}{c.type[:1]} {c.size}" for c in self.caches),
            f"sockets={self.sockets}",
        ]
        return "; ".join(p for p in parts if p)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def read_cpu_identity(root: Path) -> CpuIdentity:
    info: dict[str, str] = {}
    sockets: set[str] = set()
    for line in (_read(root, "/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "physical id":
            sockets.add(value)
        elif key in _IDENTITY_KEYS and key not in info:
            info[key] = value
    caches = []
    for index in range(8):
        base = f"/sys/devices/system/cpu/cpu0/cache/index{index}"
        level, kind, size = (_read(root, f"{base}/{name}") for name in ("level", "type", "size"))
        if level and size and level.strip().isdigit():
            caches.append(CacheLevel(int(level.strip()), (kind or "").strip(), size.strip()))
    return CpuIdentity(
        vendor=info.get("vendor_id"),
        family=info.get("cpu family"),
        model=info.get("model"),
        stepping=info.get("stepping"),
        implementer=info.get("cpu implementer"),
        part=info.get("cpu part"),
        variant=info.get("cpu variant"),
        siblings=_int(info.get("siblings")),
        cores=_int(info.get("cpu cores")),
        sockets=len(sockets) or 1,
        caches=tuple(caches),
    )


def cpu_identity(root: Path) -> str:
    """The identity as the one line the fingerprint hashes."""
    return read_cpu_identity(root).text()


_RELEVANT_FLAGS = [
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimddp",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
]


def isa_from_flags(flags: list[str], machine: str) -> str:
    """Name the widest vector ISA, in the words torch's get_cpu_capability() uses where they overlap."""
    present = set(flags)
    if machine.lower() in ("aarch64", "arm64"):
        if "sve2" in present or "sve" in present:
            return "SVE"
        return "NEON"
    if {"amx_tile", "amx_bf16"} <= present:
        return "AVX512 + AMX"
    if "avx512f" in present and "avx512bw" in present:
        extras = [name for flag, name in (("avx512_bf16", "BF16"), ("avx512_vnni", "VNNI")) if flag in present]
        return "AVX512" + (f" ({', '.join(extras)})" if extras else "")
    if "avx2" in present:
        return "AVX2"
    return "DEFAULT"


def cgroup_cpu_quota(root: Path) -> float | None:
    """Cores' worth of CPU the cgroup allows, or None when unlimited or unknown."""
    v2 = _read(root, "/sys/fs/cgroup/cpu.max")
    if v2:
        parts = v2.split()
        quota, period = parts[0], parts[1] if len(parts) > 1 else "100000"
        return None if quota == "max" else int(quota) / int(period)
    quota_text = _read(root, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us") or _read(
        root, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"
    )
    period_text = _read(root, "/sys/fs/cgroup/cpu/cpu.cfs_period_us") or _read(
        root, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"
    )
    if quota_text and period_text:
        quota_us = int(quota_text.strip())
        if quota_us > 0:
            return quota_us / int(period_text.strip())
    return None


def cgroup_memory_limit_bytes(root: Path) -> int | None:
    """The cgroup's memory limit, or None when unlimited or unknown."""
    v2 = _read(root, "/sys/fs/cgroup/memory.max")
    if v2:
        value = v2.strip()
        return None if value == "max" else int(value)
    v1 = _read(root, "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    if v1:
        limit = int(v1.strip())
        return None if limit >= _V1_UNLIMITED else limit
    return None


def cgroup_oom_kills(root: Path = Path("/")) -> int | None:
    """How many processes the kernel's OOM killer has killed in this cgroup (memory.events, or v1's
    memory.oom_control), or None where the counter cannot be read. A worker killed by SIGKILL was the OOM
    killer's victim only if this count rose."""
    for rel in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        text = _read(root, rel)
        for line in (text or "").splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def _affinity_cores(logical: int) -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return logical


def torch_capability() -> str | None:
    """torch's own name for the kernels it will dispatch to, or None when torch is not importable."""
    try:
        import torch
    except ImportError:
        return None
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return None


def address_space_limit_bytes() -> int | None:
    """RLIMIT_AS (`ulimit -v`): past it every allocation fails, whatever RAM is free. None if unlimited."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def probe_cpu(
    root: Path = Path("/"), use_torch: bool = True, address_limit: Callable[[], int | None] = address_space_limit_bytes
) -> CpuInfo:
    import psutil

    model, flags = cpuinfo_fields(root)
    machine = platform.machine()
    logical = psutil.cpu_count(logical=True) or 1
    physical = psutil.cpu_count(logical=False)
    affinity = _affinity_cores(logical)
    quota = cgroup_cpu_quota(root)
    usable = affinity if quota is None else max(1, min(affinity, math.ceil(quota)))

    isa_name = torch_capability() if use_torch else None
    isa_source = "torch"
    flag_isa = isa_from_flags(flags, machine)
    if isa_name is None:
        isa_name, isa_source = flag_isa, "cpuinfo"
    elif isa_name.upper().startswith("AVX512") and "(" in flag_isa:
        # torch says AVX512 for every AVX-512 part; the BF16/VNNI detail from the flags matters for int8/bf16.
        isa_name = flag_isa
        isa_source = "torch+cpuinfo"

    vm = psutil.virtual_memory()
    limit = cgroup_memory_limit_bytes(root)
    address = address_limit()
    usable_mem = min(v for v in (vm.total, limit, address) if v is not None)
    return CpuInfo(
        model=model,
        architecture=machine,
        physical_cores=physical,
        logical_cores=logical,
        affinity_cores=affinity,
        cgroup_cpu_quota=quota,
        usable_cores=usable,
        isa=isa_name,
        isa_source=isa_source,
        isa_flags=[f for f in _RELEVANT_FLAGS if f in set(flags)],
        identity=read_cpu_identity(root),
        ram_total_mib=round(vm.total / MIB, 1),
        ram_available_mib=round(vm.available / MIB, 1),
        cgroup_memory_limit_mib=round(limit / MIB, 1) if limit is not None else None,
        address_space_limit_mib=round(address / MIB, 1) if address is not None else None,
        memory_usable_mib=round(usable_mem / MIB, 1),
    )
