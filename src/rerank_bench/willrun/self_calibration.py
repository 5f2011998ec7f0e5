"""will-it-run on `--hardware local` with nothing measured yet: a few seconds of the model's own queries
instead of class defaults.

The class defaults bracket many machines loosely, and this project's own 2-core host beat their central
efficiency by 2x (benchmarks/willrun_accuracy.py: uncalibrated p50s 78-116% too slow, outside their stated
range). So on the CPU we time, in process, two small queries through the sweep's own torch backend on the
model's architecture twin (random weights: the same speed as the trained model; built once on first use, as
the sweep builds it) or its local folder: one bound by fixed per-batch costs, one by compute. The latency
model is fitted to them exactly as to sweep rows (`latency_model.calibrate`), tokenization and CrossEncoder's
own work included.

Two short queries are not a sweep (one shape of padding, no length mix, seconds of timing), so the estimate
carries a wider range than one calibrated on sweep rows: SELF_CALIBRATED_RANGE, set from
`benchmarks/willrun_accuracy.py` on this project's host.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from rerank_bench.models.flops import pair_flops
from rerank_bench.willrun.latency_model import Calibration, calibrate, padded_gflop
from rerank_bench.willrun.model_info import ModelInfo

# (low, high) multipliers of the self-calibrated p50/p95. benchmarks/willrun_accuracy.py on the project's
# 2-core host (2026-11-25): over 10 sweep cases of MiniLM-L6 and TinyBERT-L2 the self-calibrated p50 was -19%
# to +13% off the measured one; the range adds a margin for machines and models not seen.
SELF_CALIBRATED_RANGE = (0.70, 1.45)
SMALL = (4, 16)  # (pairs in one batch, document tokens): fixed costs dominate
LARGE_DOC_TOKENS = 120
LARGE_BUDGET_GFLOP = 40.0  # the compute-bound query's work: about a second or less at CPU rates
MIN_TIMED_S = 0.5  # each query is timed this long (at least 3 runs, at most MAX_RUNS)
MAX_RUNS = 200
Shape = tuple[int, int]
Timer = Callable[[ModelInfo, str, int, list[Shape]], list[tuple[list[int], float]]]


def shapes(info: ModelInfo) -> list[Shape]:
    """The two queries: small, and as many pairs of LARGE_DOC_TOKENS as fit in LARGE_BUDGET_GFLOP (1 to 8)."""
    per_pair = pair_flops(info.shape, min(LARGE_DOC_TOKENS + 16, info.max_length)) / 1e9
    return [SMALL, (max(1, min(8, int(LARGE_BUDGET_GFLOP / per_pair))), LARGE_DOC_TOKENS)]


def model_spec(info: ModelInfo) -> str | None:
    """What the sweep would load without the Hub: a catalog model's twin, or a local folder; else None."""
    from rerank_bench.catalog import find_model

    if find_model(info.name) is not None:
        return info.name
    return info.model_id if Path(info.model_id).is_dir() else None


def time_queries(info: ModelInfo, dtype: str, threads: int, chosen: list[Shape]) -> list[tuple[list[int], float]]:
    """For each (pairs, document tokens): one synthetic request of that many pairs scored as one batch through
    the sweep's torch backend here; its pair token lengths and the median milliseconds of a few timed runs."""
    from rerank_bench.backends.torch_st import TorchBackend
    from rerank_bench.models.resolve import resolve_model
    from rerank_bench.workload.requests import parse_doc_tokens, synthetic_requests

    spec = model_spec(info)
    if spec is None:
        raise LookupError(f"{info.name} is neither a catalog model nor a local folder")
    weights = "random" if spec == info.name else "auto"
    resolved = resolve_model(spec, weights, allow_random_head=True)
    scorer = TorchBackend().load(resolved, "cpu", dtype, threads, info.max_length)
    out = []
    try:
        words = scorer.words()
        for pairs, doc_tokens in chosen:
            spec_tokens = parse_doc_tokens(str(doc_tokens))
            (request,) = synthetic_requests(words, pairs, spec_tokens, info.max_length, seed=0, count=1)
            scorer.score(request, pairs)  # warm-up: first-call costs, untimed
            times: list[float] = []
            started = time.perf_counter()
            # at least MIN_TIMED_S of runs, not a count: a small query takes milliseconds, so nine of them fit in
            # one burst of another process's work and their median is that burst (seen: 17 ms for a 2 ms query)
            while len(times) < 3 or (len(times) < MAX_RUNS and time.perf_counter() - started < MIN_TIMED_S):
                t0 = time.perf_counter()
                scorer.score(request, pairs)
                times.append((time.perf_counter() - t0) * 1000.0)
            out.append((scorer.pair_token_counts(request), statistics.median(times)))
    finally:
        scorer.close()
    return out


def self_calibrate(
    info: ModelInfo, dtype: str, threads: int, peak_tflops: float, timer: Timer = time_queries
) -> Calibration | None:
    """The latency model fitted to two short queries of the model here; None where they cannot run (a dtype
    the torch backend has no CPU kernels for, a model neither in the catalog nor in a folder, no fit)."""
    if dtype not in ("fp32", "bf16"):
        return None
    chosen = shapes(info)
    try:
        timed = timer(info, dtype, threads, chosen)
    except Exception:  # noqa: BLE001 - no self-calibration only means the class defaults, which say so
        return None
    points = [
        (padded_gflop(info.shape, lengths, pairs), float(math.ceil(len(lengths) / pairs)), ms)
        for (pairs, _), (lengths, ms) in zip(chosen, timed, strict=True)
    ]
    fit = calibrate(points, peak_tflops)
    if fit is None:
        return None
    described = " and ".join(f"{len(lengths)} pairs of ~{max(lengths)} tokens {ms:.0f} ms" for lengths, ms in timed)
    fit.note = f"self-calibrated: two queries of {info.name} timed here ({described})"
    return fit


SelfCalibrate = Callable[[ModelInfo, str, float], Calibration | None]


def forward_probe(threads: int) -> SelfCalibrate:
    """`self_calibrate` bound to this machine's thread count: what LocalFacts carries."""

    def probe(info: ModelInfo, dtype: str, peak_tflops: float) -> Calibration | None:
        return self_calibrate(info, dtype, threads, peak_tflops)

    return probe
