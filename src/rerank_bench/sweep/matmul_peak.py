"""This machine's dense matrix-multiply peak per dtype, measured once and cached, for "fraction of peak".

A short probe (square matmuls of a few sizes, best sustained rate over about half a second each) at the
case's thread count, through every matmul library at hand (torch, and ONNX Runtime's MLAS where installed),
keeping the best: on AMD CPUs torch's fp32 GEMM reaches about half of what MLAS does, and a "peak" that a
runtime beats would say nothing. Vendor peaks assume clocks and instruction mixes a real model never sees;
a measured peak is what a very good kernel gets here, so fraction of peak says how much a runtime leaves on
the table. int8: torch._int_mm and ORT's MatMulInteger (the VNNI path its dynamic int8 kernels use).
Cached in the rerank-bench cache by hardware fingerprint, host, device, threads and dtype, and only when the
machine was not busy while it was measured.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rerank_bench.common.thresholds import BUSY_PCT
from rerank_bench.sweep import background

SIZES = (1024, 2048)
SECONDS_PER_SIZE = 0.5


def _cache_file() -> Path:
    from rerank_bench.paths import cache_root

    return cache_root() / "matmul_peak.json"


def measure_peak_gflops(
    torch: Any, dtype: str, device: str = "cpu", sizes: tuple[int, ...] = SIZES, seconds: float = SECONDS_PER_SIZE
) -> float | None:
    """Best sustained GFLOP/s (GOP/s for int8) over the sizes; None where the dtype has no matmul here."""
    best = 0.0
    for n in sizes:
        try:
            if dtype == "int8":
                a = torch.randint(-64, 64, (n, n), dtype=torch.int8, device=device)

                def op(a: Any = a) -> Any:
                    return torch._int_mm(a, a)
            else:
                tdtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
                a = torch.randn(n, n, dtype=tdtype, device=device)

                def op(a: Any = a) -> Any:
                    return a @ a

            op()
            sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
            sync()
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                op()
                count += 1
            sync()
            rate = 2.0 * n**3 * count / (time.perf_counter() - start) / 1e9
            best = max(best, rate)
        except (RuntimeError, NotImplementedError, KeyError):
            return None
    return best or None


def measure_ort_peak_gflops(
    dtype: str, threads: int, sizes: tuple[int, ...] = SIZES, seconds: float = SECONDS_PER_SIZE
) -> float | None:
    """The same probe through ONNX Runtime's CPU MatMul (fp32) or MatMulInteger (int8); None elsewhere."""
    if dtype not in ("fp32", "int8"):
        return None
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    best = 0.0
    for n in sizes:
        if dtype == "fp32":
            node = helper.make_node("MatMul", ["a", "b"], ["c"])
            types, out = (TensorProto.FLOAT, TensorProto.FLOAT), TensorProto.FLOAT
            a: Any = np.random.randn(n, n).astype(np.float32)
            b: Any = np.random.randn(n, n).astype(np.float32)
        else:
            node = helper.make_node("MatMulInteger", ["a", "b"], ["c"])
            types, out = (TensorProto.UINT8, TensorProto.INT8), TensorProto.INT32
            a = np.random.randint(0, 255, (n, n), dtype=np.uint8)
            b = np.random.randint(-64, 64, (n, n), dtype=np.int8)
        graph = helper.make_graph(
            [node],
            "peak",
            [
                helper.make_tensor_value_info("a", types[0], [n, n]),
                helper.make_tensor_value_info("b", types[1], [n, n]),
            ],
            [helper.make_tensor_value_info("c", out, [n, n])],
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(
                helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                options,
                providers=["CPUExecutionProvider"],
            )
            session.run(None, {"a": a, "b": b})
        except Exception:  # noqa: BLE001 - an ORT build without the op: no figure from it
            return best or None
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            session.run(None, {"a": a, "b": b})
            count += 1
        best = max(best, 2.0 * n**3 * count / (time.perf_counter() - start) / 1e9)
    return best or None


def host_identity() -> str:
    """This host, not just its kind: two VMs of one type share a hardware fingerprint but not their speed
    (one measured twice the other's matmul peak here), so a peak measured on one must not serve the other."""
    import socket

    machine_id = ""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            machine_id = Path(path).read_text().strip()
            break
        except OSError:
            continue
    return f"{socket.gethostname()}:{machine_id[:12]}"


def cached_peak_gflops(
    fingerprint: str,
    device: str,
    threads: int,
    dtype: str,
    torch: Any | None = None,
    refresh: bool = False,
    measure: Callable[[], float | None] | None = None,
    load: Callable[[Callable[[], float | None]], tuple[float | None, float | None]] | None = None,
) -> float | None:
    """The peak from the cache (per host, device, threads, dtype), else measured now. A figure measured while
    other processes took more than BUSY_PCT of the machine is returned but never cached: it would make every
    later fraction of peak too high. `refresh` measures again even when cached (a case beat the cached peak).
    `measure` and `load` are for tests: the probe itself, and a wrapper returning (value, background %)."""
    key = f"{fingerprint}/{host_identity()}/{device}/{threads}t/{dtype}/v3"  # v3: per host
    path = _cache_file()
    cache: dict[str, Any] = {}
    if path.exists():
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}
    if key in cache and not refresh:
        return cache[key]
    probe = measure or (lambda: _measure_best(torch, device, threads, dtype))
    value, busy = (load or _with_background)(probe)
    if busy is not None and busy > BUSY_PCT:
        return value
    cache[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # two measuring processes never write one file
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    tmp.replace(path)
    return value


def _with_background(probe: Callable[[], float | None]) -> tuple[float | None, float | None]:
    before = background.sample()
    value = probe()
    return value, background.background_pct(before, background.sample())


def _measure_best(torch: Any | None, device: str, threads: int, dtype: str) -> float | None:
    if torch is None:
        import torch as torch_module

        torch = torch_module
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        value = measure_peak_gflops(torch, dtype, device)
    finally:
        torch.set_num_threads(previous)
    if device == "cpu":
        other = measure_ort_peak_gflops(dtype, threads)
        value = max(v for v in (value, other, 0.0) if v is not None) or None
    return value
