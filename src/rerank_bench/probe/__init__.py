"""`rerank-bench probe`: what this machine brings to reranking.

The JSON shape (`PROBE_SCHEMA_VERSION`) is documented in README.md under "probe --json". Probes never raise
because hardware is missing: each part returns what is there and a `*_reason` for what is not.
"""

from __future__ import annotations

import hashlib
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerank_bench.probe.cpu import CpuInfo, probe_cpu
from rerank_bench.probe.mps import probe_mps
from rerank_bench.probe.nvml import GpuInfo, NvmlReport, query_gpus
from rerank_bench.probe.software import onnxruntime_providers, software_versions, torch_build

PROBE_SCHEMA_VERSION = 2  # 2: cpu.identity is an object (it was one line of text)


def hardware_fingerprint(
    cpu_model: str,
    usable_cores: int,
    memory_mib: float,
    gpus: list[tuple[str, float]],
    cpu_identity: str = "",
    isa_flags: tuple[str, ...] = (),
) -> str:
    """A short stable hash of what decides speed: CPU model, identity (vendor, family/model/stepping, caches,
    topology: a VM's masked model name says "AMD EPYC" for several generations), its speed-relevant ISA
    flags, usable cores, memory (GiB), GPU names and memory.

    Free memory, driver versions and the host name are left out on purpose: they change between runs of
    the same machine, and results from the same machine must match. Two hosts that still match (the same
    VM type on different silicon) are told apart by each run's speed check, not by this hash.
    """
    gpu_part = ";".join(f"{name}:{round(mem / 1024)}" for name, mem in sorted(gpus))
    flags = ",".join(sorted(isa_flags))
    text = f"{cpu_model}|{cpu_identity}|{flags}|{usable_cores}|{round(memory_mib / 1024)}|{gpu_part}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class MachineReport:
    host: str
    os: str
    cpu: CpuInfo
    nvml: NvmlReport
    mps: dict[str, Any]
    software: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        gpus = [(g.name or "unknown", g.memory_total_mib or 0.0) for g in self.nvml.gpus]
        cpu = self.cpu
        return hardware_fingerprint(
            cpu.model, cpu.usable_cores, cpu.memory_usable_mib, gpus, cpu.identity.text(), tuple(cpu.isa_flags)
        )

    @property
    def gpus(self) -> list[GpuInfo]:
        return self.nvml.gpus

    def hardware_name(self) -> str:
        """A human name for the hardware a result ran on: the first GPU, else the CPU."""
        if self.nvml.gpus and self.nvml.gpus[0].name:
            return self.nvml.gpus[0].name
        return f"{self.cpu.model} ({self.cpu.usable_cores} cores)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "rerank-bench/probe",
            "schema_version": PROBE_SCHEMA_VERSION,
            "fingerprint": self.fingerprint,
            "host": self.host,
            "os": self.os,
            "cpu": self.cpu.to_dict(),
            "gpus": [g.to_dict() for g in self.nvml.gpus],
            "gpu_reason": self.nvml.reason,
            "nvidia_driver_version": self.nvml.driver_version,
            "cuda_driver_version": self.nvml.cuda_driver_version,
            "mps": self.mps,
            "software": self.software,
        }


def probe_machine(
    root: Path = Path("/"), nvml_lib: Any | None = None, use_torch: bool = True, environ: dict[str, str] | None = None
) -> MachineReport:
    software: dict[str, Any] = dict(software_versions())
    if use_torch:
        software.update(torch_build())
        mps = probe_mps()
    else:
        mps = {"available": False, "reason": "not probed (torch not used)", "recommended_max_memory_mib": None}
    providers, providers_reason = onnxruntime_providers()
    software["onnxruntime_providers"] = providers
    software["onnxruntime_reason"] = providers_reason
    return MachineReport(
        host=socket.gethostname(),
        os=platform.platform(),
        cpu=probe_cpu(root, use_torch=use_torch),
        nvml=query_gpus(nvml_lib, environ=environ),
        mps=mps,
        software=software,
    )
