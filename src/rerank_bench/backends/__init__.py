"""Backends: one small interface (base.py), a fake beside the real ones, and what each can run, declared
once here: the sweep's skip rules, the command line's choices, tune's search and every backend's own
check read these specs.

A spec holds an import path, not a class, so that listing backends imports neither torch nor onnxruntime;
a backend's module is imported only when a case needs it.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from rerank_bench.backends.base import Backend
from rerank_bench.errors import UsageError

# int8 variants: `int8` is dynamic quantization (ONNX Runtime: weights per channel, activations at run time);
# `int8-static` is post-training static quantization calibrated on workload requests (ONNX Runtime QDQ,
# OpenVINO through NNCF); `int8-sq` is NNCF's with SmoothQuant; `int8-ac` is int8 chosen by the ranking it keeps
# (ONNX Runtime: dynamic int8 with the most sensitive ops kept fp32; OpenVINO: NNCF's accuracy control).
# backends/quantize.py says what each sets.
DTYPES = ("fp32", "fp16", "bf16", "int8", "int8-static", "int8-sq", "int8-ac")
INT8_VARIANTS = ("int8", "int8-static", "int8-sq", "int8-ac")
CALIBRATED = ("int8-static", "int8-sq", "int8-ac")  # built from calibration requests
ORDERS = ("given", "length")  # and tokens:N (see parse_orders)


def parse_orders(text: str, option: str = "--order") -> tuple[str, ...]:
    """--order's comma list: given, length, or tokens:N (length order, each batch as many pairs as fit N padded
    tokens, at most the batch size: TEI's --max-batch-tokens applied in process). One option rather than a
    --batching beside it: forming a request's batches is what --order already decides, and a grid of given x
    tokens would only hold cases that cannot differ."""
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        budget = re.fullmatch(r"tokens:(\d+)", item)
        if item not in ORDERS and not (budget and int(budget.group(1)) >= 1):
            raise UsageError(
                f"{option} {item!r} is not given, length or tokens:N", "for example --order length,tokens:2048"
            )
        out.append(item)
    if not out:
        raise UsageError(f"{option} needs at least one of given, length, tokens:N")
    return tuple(dict.fromkeys(out))


def token_budget(order: str) -> int | None:
    """N of a tokens:N order, else None."""
    return int(order.split(":", 1)[1]) if order.startswith("tokens:") else None


def base_dtype(dtype: str) -> str:
    """The arithmetic a dtype runs on (an int8 variant's is int8): what peaks and memory are looked up by."""
    return "int8" if dtype in INT8_VARIANTS else dtype


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str  # "module:Class"
    dtypes: tuple[str, ...]  # what it runs at all, before looking at the device
    devices: tuple[str, ...]  # device kinds: cpu, cuda, mps
    packages: tuple[tuple[str, str], ...]  # (module it imports, pip package that provides it)
    extra: str | None = None  # the rerank-bench extra that installs those packages
    user: bool = True  # offered on the command line (the fake is for tests)
    dtype_packages: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # (dtype, packages it adds)

    def packages_for(self, dtype: str | None) -> tuple[tuple[str, str], ...]:
        extra = dict(self.dtype_packages).get(dtype, ()) if dtype else ()
        return self.packages + extra

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
            ("fp32", "int8", "int8-static", "int8-ac"),
            ("cpu", "cuda"),
            (("onnxruntime", "onnxruntime"), ("onnx", "onnx")),
            "rerank-bench[onnx]",
        ),
        BackendSpec(
            "openvino",
            "rerank_bench.backends.openvino_ov:OpenVinoBackend",
            ("fp32", "fp16", "bf16", "int8-static", "int8-sq", "int8-ac"),
            ("cpu",),
            (("openvino", "openvino"),),
            "rerank-bench[openvino]",
            dtype_packages=tuple((d, (("nncf", "nncf"),)) for d in CALIBRATED),  # NNCF quantizes for OpenVINO
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
