"""Versions of what a measurement depends on, read without importing the heavy packages where possible."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from rerank_bench import __version__

_DISTRIBUTIONS = {
    "torch": "torch",
    "transformers": "transformers",
    "sentence_transformers": "sentence-transformers",
    "onnxruntime": "onnxruntime",
    "huggingface_hub": "huggingface-hub",
    "nvidia_ml_py": "nvidia-ml-py",
}


def distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def software_versions() -> dict[str, str | None]:
    """Package versions from installed metadata: cheap, and safe to stamp on every result row."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "rerank_bench": __version__}
    for key, dist in _DISTRIBUTIONS.items():
        versions[key] = distribution_version(dist)
    if versions["onnxruntime"] is None:  # GPU and OpenVINO builds ship under other names
        versions["onnxruntime"] = distribution_version("onnxruntime-gpu") or distribution_version(
            "onnxruntime-openvino"
        )
    return versions


def torch_build() -> dict[str, Any]:
    """What torch was built for. Imports torch, so only the probe and the sweep call it."""
    try:
        import torch
    except ImportError as exc:
        return {"torch_cuda": None, "torch_hip": None, "torch_reason": f"torch not importable: {exc}"}
    return {"torch_cuda": torch.version.cuda, "torch_hip": getattr(torch.version, "hip", None), "torch_reason": None}


def onnxruntime_providers() -> tuple[list[str], str | None]:
    try:
        import onnxruntime
    except ImportError as exc:
        return [], f"onnxruntime not importable: {exc}"
    return list(onnxruntime.get_available_providers()), None
