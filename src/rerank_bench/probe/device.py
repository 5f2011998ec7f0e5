"""Which torch device a sweep runs on. Thin: torch answers, we only check and name."""

from __future__ import annotations

import re
from typing import Any

from rerank_bench.errors import EnvironmentProblem, UsageError

DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(requested: str, torch_module: Any | None = None) -> str:
    """'auto' -> cuda:0, else mps, else cpu. An explicit device that is not there is an environment error."""
    text = requested.strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        raise UsageError(f"--device {requested!r} is not one of {DEVICE_HELP}")
    if text == "cpu":
        return "cpu"
    if torch_module is None:
        import torch as torch_module
    torch: Any = torch_module
    cuda_ok = bool(torch.cuda.is_available())
    mps_backend = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps_backend is not None and mps_backend.is_available())
    if text == "auto":
        return "cuda:0" if cuda_ok else "mps" if mps_ok else "cpu"
    if text.startswith("cuda"):
        if not cuda_ok:
            build = f"CUDA {torch.version.cuda}" if getattr(torch.version, "cuda", None) else "a CPU-only build"
            raise EnvironmentProblem(
                f"--device {requested}: torch sees no CUDA device (torch {torch.__version__}, {build})",
                "check nvidia-smi, or install a CUDA build of torch",
            )
        index = int(text.split(":")[1]) if ":" in text else 0
        count = int(torch.cuda.device_count())
        if index >= count:
            raise EnvironmentProblem(
                f"--device {requested}: only {count} CUDA device(s) are visible", "check CUDA_VISIBLE_DEVICES"
            )
        return f"cuda:{index}"
    if not mps_ok:
        raise EnvironmentProblem("--device mps: MPS is not available here (Apple silicon with macOS 12.3+ only)")
    return "mps"
