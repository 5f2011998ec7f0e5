"""Which (backend, dtype, order, device) combinations can run here, decided before anything is measured.

A combination that cannot run is still a case: it becomes a `skipped` row whose reason says why and what
to do, so a sweep over backends never crashes on a missing package or a CPU without bf16. Pure functions
over plain data (the CPU flags, the packages found), so every rule is a table test.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from rerank_bench.backends import SPECS


@dataclass(frozen=True)
class DeviceTraits:
    """What the rules need to know about the device a sweep runs on."""

    kind: str  # "cpu", "cuda" or "mps"
    cpu_flags: frozenset[str] = frozenset()
    cuda_capability: tuple[int, int] | None = None
    ort_providers: tuple[str, ...] = ()


def cpu_has_bf16(flags: frozenset[str]) -> bool:
    return bool({"avx512_bf16", "amx_bf16"} & flags) or "bf16" in flags  # x86, or Arm's BF16 extension


def cpu_has_fp16(flags: frozenset[str]) -> bool:
    return bool({"avx512_fp16", "amx_fp16"} & flags) or "fphp" in flags


def missing_packages(backend: str, dtype: str | None = None, find_spec=importlib.util.find_spec) -> list[str]:  # noqa: ANN001
    missing = []
    for module, package in SPECS[backend].packages_for(dtype):
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


def skip_reason(  # noqa: PLR0911 - one return per reason a combination cannot run, in the order they are checked
    backend: str, dtype: str, device: DeviceTraits, missing: list[str] | None = None
) -> str | None:
    """Why this combination cannot run here, or None when it can. What a backend runs at all comes from its
    spec (backends/__init__.py); what this device adds is decided here."""
    spec = SPECS[backend]
    if missing:
        extra = spec.extra
        how = f"pip install '{extra}'" if extra else f"pip install {' '.join(missing)}"
        return f"the {backend} backend needs {', '.join(missing)}, which is not installed ({how})"
    if dtype not in spec.dtypes:
        runs = ", ".join(spec.dtypes)
        hints = {
            "int8": " (int8 runs on --backend onnx: dynamic quantization)",
            "int8-static": " (int8-static runs on --backend onnx or openvino)",
            "int8-sq": " (int8-sq, SmoothQuant through NNCF, runs on --backend openvino)",
            "int8-ac": " (int8-ac runs on --backend onnx or openvino)",
        }
        hint = hints.get(dtype, "")
        return f"the {backend} backend runs {runs}, not {dtype}{hint}"
    if backend == "fake":
        return None
    if device.kind not in spec.devices:
        names = {"cpu": "CPU", "cuda": "CUDA", "mps": "Apple's MPS"}
        where = ", ".join(names[d] for d in spec.devices)
        return f"the {backend} backend runs on {where} here, not on {names.get(device.kind, device.kind)}" + (
            "; use --backend torch" if device.kind == "mps" else ""
        )
    if device.kind == "cpu":
        if dtype == "bf16" and not cpu_has_bf16(device.cpu_flags):
            return "this CPU has no native bf16 arithmetic (AVX512_BF16 or AMX); it would be emulated and slow"
        if dtype == "fp16" and not cpu_has_fp16(device.cpu_flags):
            return "this CPU has no native fp16 arithmetic (AVX512_FP16 or AMX-FP16); use bf16 or fp32"
    if device.kind == "cuda":
        if dtype == "bf16" and device.cuda_capability is not None and device.cuda_capability < (8, 0):
            major, minor = device.cuda_capability
            return f"bf16 needs compute capability 8.0 or newer; this GPU has {major}.{minor} (use fp16)"
        if backend == "onnx" and "CUDAExecutionProvider" not in device.ort_providers:
            return "this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
        if backend == "onnx" and dtype in ("int8", "int8-static", "int8-ac"):
            return "int8 quantization runs on ONNX Runtime's CPU provider here (its CUDA provider needs TensorRT)"
    if device.kind == "mps" and dtype == "bf16":
        return "bf16 on MPS needs macOS 14 and is slower than fp16 there; use fp16"
    return None
