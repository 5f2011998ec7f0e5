"""Hardware profiles: one TOML file per device, each figure with its source (hardware_profiles/ in the
repository, shipped inside the package), plus `local`, built from `probe`.

Format (README "Hardware profiles"):
    name = "NVIDIA L4"            kind = "nvidia" | "apple" | "cpu" | "amd"
    memory_gib = 24               memory_bandwidth_gbs = 300        tdp_w = 72
    compute_capability = "8.9"    (nvidia)      cores = 4, isa = "AVX2" (cpu)
    notes = "..."                 source = "where each figure comes from"
    price_per_hour = 0.80         (optional: what one device costs you an hour; will-it-run --rate ranks by it)
    [peak_tflops]                 dense peaks: fp32, tf32, fp16, bf16 (TFLOPS), int8 (TOPS)
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_bench.errors import UsageError
from rerank_bench.probe import MachineReport

KINDS = ("nvidia", "apple", "cpu", "amd")
# The arithmetic rates a profile lists: every base dtype the backends run, and tf32 (NVIDIA's matmul mode).
PEAK_KEYS = ("fp32", "tf32", "fp16", "bf16", "int8")
SHOWN_PEAKS = tuple(k for k in PEAK_KEYS if k != "tf32")  # the ones a dtype of ours runs on


@dataclass(frozen=True)
class HardwareProfile:
    key: str  # file name without .toml, or "local"
    name: str
    kind: str
    memory_gib: float
    memory_bandwidth_gbs: float
    peak_tflops: dict[str, float]
    tdp_w: float | None = None
    compute_capability: str | None = None
    cores: int | None = None
    isa: str | None = None
    notes: str = ""
    source: str = ""
    path: str = ""
    free_memory_gib: float | None = None  # local only: what is free now
    measured: tuple[str, ...] = field(default_factory=tuple)  # figures measured here rather than looked up
    price_per_hour: float | None = None  # the user's own price for one device an hour (no shipped file has one)

    def peak(self, dtype: str) -> float | None:
        """Dense peak for the dtype in TFLOPS; fp32 on a GPU with tensor cores uses TF32 only if the model
        enables it, which PyTorch does not by default, so fp32 means the FP32 rate."""
        return self.peak_tflops.get(dtype)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def builtin_dir() -> Path:
    """hardware_profiles/ inside the installed package (a link to the repository's folder in a checkout)."""
    return Path(__file__).parent / "hardware_profiles"


def parse_profile(path: Path) -> HardwareProfile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"hardware profile {path}: {exc}".splitlines()[0], "see README, Hardware profiles, for the format"
        ) from None
    missing = [
        k for k in ("name", "kind", "memory_gib", "memory_bandwidth_gbs", "peak_tflops", "source") if k not in data
    ]
    if missing:
        raise UsageError(
            f"hardware profile {path}: missing {', '.join(missing)}", "see README, Hardware profiles, for the format"
        )
    if data["kind"] not in KINDS:
        raise UsageError(f"hardware profile {path}: kind {data['kind']!r} is not one of {', '.join(KINDS)}")
    peaks = data["peak_tflops"]
    unknown = set(peaks) - set(PEAK_KEYS) if isinstance(peaks, dict) else set()
    if not isinstance(peaks, dict) or unknown or "fp32" not in peaks:
        raise UsageError(f"hardware profile {path}: [peak_tflops] needs fp32 and takes only {', '.join(PEAK_KEYS)}")
    figures = {"memory_gib": data["memory_gib"], "memory_bandwidth_gbs": data["memory_bandwidth_gbs"]}
    figures.update({f"peak_tflops.{k}": v for k, v in peaks.items()})
    for optional in ("tdp_w", "price_per_hour"):
        if data.get(optional) is not None:
            figures[optional] = data[optional]
    for name, value in figures.items():
        # nan and inf are valid TOML; a zero would divide. Either would turn into a verdict that means nothing.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise UsageError(
                f"hardware profile {path}: {name} is {value!r}; it must be a positive number",
                "see README, Hardware profiles, for the format",
            )
    return HardwareProfile(
        key=path.stem,
        name=data["name"],
        kind=data["kind"],
        memory_gib=float(data["memory_gib"]),
        memory_bandwidth_gbs=float(data["memory_bandwidth_gbs"]),
        peak_tflops={k: float(v) for k, v in peaks.items()},
        tdp_w=data.get("tdp_w"),
        compute_capability=data.get("compute_capability"),
        cores=data.get("cores"),
        isa=data.get("isa"),
        notes=data.get("notes", ""),
        source=data["source"],
        path=str(path),
        price_per_hour=float(data["price_per_hour"]) if data.get("price_per_hour") is not None else None,
    )


def load_profiles(extra_dirs: list[Path] | None = None) -> dict[str, HardwareProfile]:
    """Built-in profiles, then the user's (`--profiles DIR`), which replace built-ins of the same name."""
    profiles: dict[str, HardwareProfile] = {}
    for folder in [builtin_dir(), *(extra_dirs or [])]:
        if not folder.is_dir():
            if folder != builtin_dir():
                raise UsageError(f"--profiles {folder}: no such folder")
            continue
        for path in sorted(folder.glob("*.toml")):
            profiles[path.stem] = parse_profile(path)
    return profiles


def find_profile(name: str, profiles: dict[str, HardwareProfile]) -> HardwareProfile:
    key = name.strip().lower()
    if key in profiles:
        return profiles[key]
    for profile in profiles.values():
        if profile.name.lower() == key:
            return profile
    import difflib

    close = difflib.get_close_matches(key, list(profiles), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "run `rerank-bench profiles` to list them"
    raise UsageError(f"--hardware {name!r} is not a known profile", hint)


def _name_tokens(text: str) -> list[str]:
    return text.lower().replace("-", " ").replace("(", " ").replace(")", " ").split()


def _is_size(token: str) -> bool:
    return token.endswith("gb") and token[:-2].isdigit()


def match_gpu_profile(gpu_name: str, profiles: dict[str, HardwareProfile]) -> HardwareProfile | None:
    """The shipped profile for a GPU that NVML names, e.g. "NVIDIA L4", "NVIDIA A100-SXM4-80GB" or "Tesla
    V100-SXM2-32GB": every word of the profile's name (without "NVIDIA", "GeForce" and the bracket) is a word
    of NVML's, compared word by word because NVML joins them with hyphens. A memory size in the profile's name
    must be NVML's where NVML gives one (an A100 40GB is not the 80GB profile); where NVML gives none ("NVIDIA
    GeForce RTX 4060 Ti") the chip decides, its memory coming from NVML anyway. The most words matched wins."""
    text = set(_name_tokens(gpu_name))
    text_sizes = {t for t in text if _is_size(t)}
    best, best_len = None, 0
    for profile in profiles.values():
        if profile.kind != "nvidia":
            continue
        core = _name_tokens(profile.name.split(" (")[0])
        core = [t for t in core if t not in ("nvidia", "geforce")]
        chip = [t for t in core if not _is_size(t)]
        sizes = [t for t in core if _is_size(t)]
        if not chip or not set(chip) <= text:
            continue
        if text_sizes and not set(sizes) <= text_sizes:
            continue
        if len(core) > best_len:
            best, best_len = profile, len(core)
    return best


def local_profile(
    machine: MachineReport, profiles: dict[str, HardwareProfile], measured_peaks: dict[str, float] | None = None
) -> HardwareProfile:
    """This machine: its first GPU (memory from NVML; peaks from the matching shipped profile), else its CPU
    (usable cores, RAM, and the matmul peaks measured here)."""
    gpu = machine.gpus[0] if machine.gpus else None
    if gpu is not None and gpu.memory_total_mib:
        known = match_gpu_profile(gpu.name or "", profiles)
        if known is None:
            raise UsageError(
                f"--hardware local: no profile matches this GPU ({gpu.name}), so its peak rates are unknown",
                "add a profile for it with --profiles DIR (see README), or name a similar --hardware",
            )
        return HardwareProfile(
            key="local",
            name=f"{gpu.name} (local)",
            kind="nvidia",
            memory_gib=gpu.memory_total_mib / 1024,  # checked above
            memory_bandwidth_gbs=known.memory_bandwidth_gbs,
            peak_tflops=dict(known.peak_tflops),
            tdp_w=known.tdp_w,
            compute_capability=gpu.compute_capability,
            notes=f"peaks from the {known.key} profile",
            source=known.source,
            free_memory_gib=(gpu.memory_free_mib or 0) / 1024 or None,
            measured=("memory_gib",),
        )
    if (getattr(machine, "mps", None) or {}).get("available"):
        raise UsageError(
            "--hardware local on Apple silicon: the GPU's rates are not probed here",
            "name your chip's profile, e.g. --hardware apple-m2-pro (see `rerank-bench profiles`)",
        )
    cpu = machine.cpu
    peaks = {k: v / 1000.0 for k, v in (measured_peaks or {}).items() if v}
    if "fp32" not in peaks:
        raise UsageError("--hardware local: no measured fp32 matmul peak for this CPU")
    return HardwareProfile(
        key="local",
        name=f"{cpu.model} ({cpu.usable_cores} cores, local)",
        kind="cpu",
        memory_gib=cpu.memory_usable_mib / 1024,
        memory_bandwidth_gbs=CPU_DEFAULT_BANDWIDTH_GBS,
        peak_tflops=peaks,
        cores=cpu.usable_cores,
        isa=cpu.isa,
        notes="peaks measured here (matmul probe); memory bandwidth assumed",
        source="rerank-bench probe and matmul probe on this machine",
        free_memory_gib=cpu.ram_available_mib / 1024,
        measured=("memory_gib", "peak_tflops"),
    )


# A CPU's memory bandwidth is not probed; dual-channel DDR4-3200 is 51.2 GB/s (2 x 8 bytes x 3200 MT/s).
# Rerankers are compute-bound on a CPU at any batch size, so this only matters for the bound's other side.
CPU_DEFAULT_BANDWIDTH_GBS = 51.2
