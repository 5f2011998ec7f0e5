"""Backends: one small interface (base.py), a fake beside the real ones, and a registry by name.

The registry holds import paths, not classes, so that listing backends imports neither torch nor
onnxruntime; a backend's module is imported only when a case needs it.
"""

from __future__ import annotations

import importlib

from rerank_bench.backends.base import Backend
from rerank_bench.errors import UsageError

REGISTRY: dict[str, str] = {
    "torch": "rerank_bench.backends.torch_st:TorchBackend",
    "onnx": "rerank_bench.backends.onnx_ort:OnnxBackend",
    "openvino": "rerank_bench.backends.openvino_ov:OpenVinoBackend",
    # A simulated backend with scripted latencies and failures, for testing the tool itself.
    "fake": "rerank_bench.backends.fake:FakeBackend",
}
USER_BACKENDS = ("torch", "onnx", "openvino")


def get_backend(name: str) -> Backend:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown backend {name!r}", f"choose from {', '.join(USER_BACKENDS)}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
