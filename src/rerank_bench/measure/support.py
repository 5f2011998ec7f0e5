"""Which (backend, dtype, order, device) combinations can run here, decided before anything is measured.

A combination that cannot run is still a case: it becomes a `skipped` row whose reason says why and what
to do, so a sweep over backends never crashes on a missing package or a CPU without bf16. Pure functions
over plain data (the CPU flags, the packages found), so every rule is a table test.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

BACKENDS = ("torch", "onnx", "openvino")
DTYPES = ("fp32", "fp16", "bf16", "int8")
ORDERS = ("given", "length")

# What each backend can run at all (before looking at the device).
BACKEND_DTYPES = {
    "torch": ("fp32", "fp16", "bf16"),
    "onnx": ("fp32", "int8"),  # an fp16 ONNX export is not built here; torch fp16 covers GPUs
    "openvino": ("fp32", "fp16", "bf16"),
    "fake": DTYPES,
}
# Python packages each backend imports, and the extra that installs them.
BACKEND_PACKAGES = {
    "torch": (("torch", "torch"), ("sentence_transformers", "sentence-transformers")),
    "onnx": (("onnxruntime", "onnxruntime"), ("onnx", "onnx")),
    "openvino": (("openvino", "openvino"),),
    "fake": (),
}
EXTRAS = {"onnx": "rerank-bench[onnx]", "openvino": "rerank-bench[openvino]"}


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


def missing_packages(backend: str, find_spec=importlib.util.find_spec) -> list[str]:  # noqa: ANN001
    missing = []
    for module, package in BACKEND_PACKAGES.get(backend, ()):
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


def skip_reason(backend: str, dtype: str, device: DeviceTraits, missing: list[str] | None = None) -> str | None:
    """Why this combination cannot run here, or None when it can."""
    if missing:
        extra = EXTRAS.get(backend)
        how = f"pip install '{extra}'" if extra else f"pip install {' '.join(missing)}"
        return f"the {backend} backend needs {', '.join(missing)}, which is not installed ({how})"
    if dtype not in BACKEND_DTYPES.get(backend, ()):
        runs = ", ".join(BACKEND_DTYPES.get(backend, ()))
        hint = " (int8 runs on --backend onnx: dynamic quantization)" if dtype == "int8" else ""
        return f"the {backend} backend runs {runs}, not {dtype}{hint}"
    if backend == "fake":
        return None
    if backend == "openvino" and device.kind != "cpu":
        return f"the openvino backend runs on Intel/x86 CPUs here, not on {device.kind}"
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
        if backend == "onnx" and dtype == "int8":
            return "dynamic int8 quantization runs on ONNX Runtime's CPU provider only"
    if device.kind == "mps" and backend != "torch":
        return f"the {backend} backend does not run on Apple's MPS; use --backend torch"
    if device.kind == "mps" and dtype == "bf16":
        return "bf16 on MPS needs macOS 14 and is slower than fp16 there; use fp16"
    return None
