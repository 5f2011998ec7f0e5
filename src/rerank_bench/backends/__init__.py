"""Backends: one small interface (base.py), a fake beside the real ones, and what each can run, declared
once here: the sweep's skip rules, the command line's choices, tune's search and every backend's own
check read these specs.

A spec holds an import path, not a class, so that listing backends imports neither torch nor onnxruntime;
a backend's module is imported only when a case needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from rerank_bench.backends.base import Backend
from rerank_bench.errors import UsageError

DTYPES = ("fp32", "fp16", "bf16", "int8")
ORDERS = ("given", "length")


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str  # "module:Class"
    dtypes: tuple[str, ...]  # what it runs at all, before looking at the device
    devices: tuple[str, ...]  # device kinds: cpu, cuda, mps
    packages: tuple[tuple[str, str], ...]  # (module it imports, pip package that provides it)
    extra: str | None = None  # the rerank-bench extra that installs those packages
    user: bool = True  # offered on the command line (the fake is for tests)

    def check(self, dtype: str, device: str) -> None:
        """The backend's own guard at load time, for callers that bypass the sweep's skip rules (ab, tests)."""
        if dtype not in self.dtypes:
            raise UsageError(f"the {self.name} backend runs {', '.join(self.dtypes)}, not {dtype!r}")
        kind = device.split(":")[0]
        if kind not in self.devices:
            raise UsageError(f"the {self.name} backend runs on {', '.join(self.devices)}, not on {device}")


SPECS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "torch",
            "rerank_bench.backends.torch_st:TorchBackend",
            ("fp32", "fp16", "bf16"),
            ("cpu", "cuda", "mps"),
            (("torch", "torch"), ("sentence_transformers", "sentence-transformers")),
        ),
        # An fp16 ONNX export is not built here; torch fp16 covers GPUs.
        BackendSpec(
            "onnx",
            "rerank_bench.backends.onnx_ort:OnnxBackend",
            ("fp32", "int8"),
            ("cpu", "cuda"),
            (("onnxruntime", "onnxruntime"), ("onnx", "onnx")),
            "rerank-bench[onnx]",
        ),
        BackendSpec(
            "openvino",
            "rerank_bench.backends.openvino_ov:OpenVinoBackend",
            ("fp32", "fp16", "bf16"),
            ("cpu",),
            (("openvino", "openvino"),),
            "rerank-bench[openvino]",
        ),
        # A simulated backend with scripted latencies and failures, for testing the tool itself.
        BackendSpec("fake", "rerank_bench.backends.fake:FakeBackend", DTYPES, ("cpu",), (), user=False),
    )
}
USER_BACKENDS = tuple(name for name, spec in SPECS.items() if spec.user)


def get_spec(name: str) -> BackendSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise UsageError(f"unknown backend {name!r}", f"choose from {', '.join(USER_BACKENDS)}") from None


def get_backend(name: str) -> Backend:
    module_name, _, class_name = get_spec(name).target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
