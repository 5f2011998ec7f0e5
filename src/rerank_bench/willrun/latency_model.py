"""Predicted per-query latency of a reranker on a device, from work and rates, calibrated where we can.

Per query at depth D: the workload's requests (token lengths only, the sweep's own generator), pairs batched
as CrossEncoder.predict batches them (sorted longest first); per batch of B pairs padded to L tokens:
    time = max(FLOPs(B, L) / (peak x efficiency), bytes(B, L) / bandwidth) + overhead
FLOPs are the sweep's count (flops.py); bytes are the weights read once per batch plus the activations
written and read. A query's latency is the sum over its batches plus the host's own work: tokenization and
input preparation, per pair on a CPU (where it is small beside the model's time), per token on a GPU (where
it is not: below). p50 and p95 are taken over the requests, whose lengths vary.

Efficiency and overhead come from this machine's sweep rows when they exist (`calibrate`: a least-squares
fit of measured p50s against padded work and batch count), else from per-class defaults with a range;
every figure says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rerank_bench.common.stats import percentile
from rerank_bench.models.flops import EncoderShape, pair_flops
from rerank_bench.willrun.memory_model import BYTES, ArchShape, weights_bytes

# Defaults where nothing was measured: (low, central, high) efficiency of the dense peak a reranker's
# matmuls reach, and fixed time per batch per layer (kernel launches, framework overhead) in ms.
# cpu (torch, which will-it-run's estimate is for): re-derived from every measurement the project holds
# (`python benchmarks/efficiency_sources.py results/ <default sweeps of this host>`): torch fp32 and bf16 fits
# on two hosts of the project's kind reach 33-39% of the measured matmul peak on the host of results/ and 62%
# on the host measured 2026-11-25 (whose peak is half as high), with 0-0.94 ms per batch per layer. A host's
# measured peak itself varies by 10-20% between probes (159-196 GFLOP/s here), so the fast end is the whole
# peak and the slow end leaves a margin below 33%. (Other backends span 26% (ONNX Runtime int8) to 88%
# (OpenVINO fp32) on the first host.)
# GPUs: the rule of thumb that PyTorch eager BERT-size matmuls reach 30-60% of tensor peak on NVIDIA parts
# (Apple MPS less), checked on the one GPU lent to the project, an H200 (benchmarks/gpu_willrun.py,
# 2026-12-04, seven models of five families at 512-1,024 tokens): the models' time fitted 43-47% of the
# spec sheet's dense bf16/fp16 peak (its own matmul probe reached 65-67%), within this range.
# On a GPU the host's time is no longer small: tokenizing, collating and copying a pair of 512-1,024 tokens
# took 1.7-2.3 us a token on that machine's Xeon host (MiniLM-L6, whose GPU time is a few ms, ran at
# 2.2 us a token in all; a fit of all seven gave 1.8), so a query of 100 such pairs spends ~100 ms on
# the host, against the 3 ms (0.03 ms a pair) assumed before, which put MiniLM's p50 at 10 ms against
# 114 measured. The range covers a host up to 1.8x faster or 1.7x slower.
DEFAULTS: dict[str, dict[str, tuple[float, float, float]]] = {
    "nvidia": {
        "efficiency": (0.20, 0.35, 0.60),
        "overhead_ms_per_layer": (0.06, 0.15, 0.35),
        "host_us_per_token": (1.0, 1.8, 3.0),
    },
    "amd": {
        "efficiency": (0.15, 0.30, 0.50),
        "overhead_ms_per_layer": (0.08, 0.2, 0.5),
        "host_us_per_token": (1.0, 1.8, 3.0),
    },
    "apple": {
        "efficiency": (0.15, 0.30, 0.50),
        "overhead_ms_per_layer": (0.15, 0.4, 1.0),
        "host_us_per_token": (1.0, 1.8, 3.0),
    },
    "cpu": {"efficiency": (0.25, 0.50, 1.00), "overhead_ms_per_layer": (0.0, 0.1, 1.2)},
}
# A family's share of the class's efficiency on a GPU. DeBERTa-v2/v3 has no fused (SDPA) attention in
# transformers and its disentangled attention adds position gathers and two more score products per layer:
# on the H200 (same run) mxbai-rerank-large-v1 reached 11% of the fp16 peak where the other families
# reached 43-47%, a third of the class's central efficiency. (One model, one GPU: the factor is that
# measurement, with the class's range around it.)
GPU_FAMILY_EFFICIENCY = {"deberta": 0.33}
TOKENIZE_MS_PER_PAIR = 0.03  # fast (Rust) tokenizers: tens of microseconds per pair


def request_lengths(
    depth: int, doc_tokens: str | None, max_length: int, specials: int, seed: int = 0, count: int = 64
) -> list[list[int]]:
    """Pair token lengths of `count` synthetic requests: the sweep's generator, counted in tokens."""
    from rerank_bench.workload.requests import parse_doc_tokens, synthetic_requests

    words = [f"w{i}" for i in range(50)]
    requests = synthetic_requests(words, depth, parse_doc_tokens(doc_tokens), max_length, seed=f"{seed}:{depth}")[
        :count
    ]
    out = []
    for request in requests:
        query = len(request.query.split())
        out.append([min(max_length, query + len(doc.split()) + specials) for doc in request.documents])
    return out


def batches_of(lengths: list[int], batch: int) -> list[list[int]]:
    """Batches as sentence-transformers' CrossEncoder.predict forms them: longest first, then in chunks.
    (Longest first puts the full batch at the longest lengths; the last, partial batch gets the short pairs.)"""
    ordered = sorted(lengths, reverse=True)
    return [ordered[i : i + batch] for i in range(0, len(ordered), batch)]


def padded_gflop(shape: EncoderShape, lengths: list[int], batch: int) -> float:
    return sum(len(b) * pair_flops(shape, max(b)) for b in batches_of(lengths, batch)) / 1e9


@dataclass
class Rates:
    """What turns work into time on one device and dtype."""

    peak_tflops: float
    bandwidth_gbs: float
    efficiency: float
    overhead_ms: float  # per batch
    tokenize_ms_per_pair: float = TOKENIZE_MS_PER_PAIR
    tokenize_ms_per_token: float = 0.0  # a GPU's host: tokenization and input preparation, per pair token
    source: str = "estimated"  # "calibrated" when fitted to this machine's rows
    note: str = ""


def batch_ms(arch: ArchShape, shape: EncoderShape, rates: Rates, lengths: list[int], dtype: str) -> float:
    width = max(lengths)
    flops = len(lengths) * pair_flops(shape, width)
    compute_s = flops / (rates.peak_tflops * 1e12 * rates.efficiency)
    activations = arch.layers * (12 * arch.hidden + 4 * arch.intermediate) * len(lengths) * width * BYTES.get(dtype, 4)
    memory_s = (weights_bytes(arch, dtype) + activations) / (rates.bandwidth_gbs * 1e9)
    return max(compute_s, memory_s) * 1000.0 + rates.overhead_ms


def query_ms(arch: ArchShape, shape: EncoderShape, rates: Rates, lengths: list[int], batch: int, dtype: str) -> float:
    return sum(batch_ms(arch, shape, rates, b, dtype) for b in batches_of(lengths, batch)) + host_ms(rates, lengths)


def host_ms(rates: Rates, lengths: Sequence[int]) -> float:
    """The host's own time for these pairs: tokenization and input preparation."""
    return rates.tokenize_ms_per_pair * len(lengths) + rates.tokenize_ms_per_token * sum(lengths)


def host_ms_per_token(kind: str) -> float:
    """The central host time per pair token of a device class (0 on a CPU, whose per-pair figure stands)."""
    return DEFAULTS[kind].get("host_us_per_token", (0.0, 0.0, 0.0))[1] / 1000.0


@dataclass
class Prediction:
    p50_ms: float
    p95_ms: float
    p50_low_ms: float | None = None
    p50_high_ms: float | None = None
    p95_low_ms: float | None = None
    p95_high_ms: float | None = None
    source: str = "estimated"
    notes: list[str] = field(default_factory=list)


def predict(
    arch: ArchShape,
    shape: EncoderShape,
    requests: list[list[int]],
    batch: int,
    dtype: str,
    central: Rates,
    low: Rates | None = None,
    high: Rates | None = None,
) -> Prediction:
    """p50/p95 over the requests with the central rates; the range from the fast (low) and slow (high) ones."""

    def stats(rates: Rates) -> tuple[float, float]:
        times = [query_ms(arch, shape, rates, lengths, batch, dtype) for lengths in requests]
        return percentile(times, 50), percentile(times, 95)

    p50, p95 = stats(central)
    prediction = Prediction(p50_ms=p50, p95_ms=p95, source=central.source)
    if low is not None and high is not None:
        prediction.p50_low_ms, prediction.p95_low_ms = stats(low)
        prediction.p50_high_ms, prediction.p95_high_ms = stats(high)
    return prediction


def default_rates(
    kind: str, peak_tflops: float, bandwidth_gbs: float, layers: int, family: str = "bert"
) -> tuple[Rates, Rates, Rates]:
    """(central, fast, slow) rates for a device class where nothing was measured."""
    eff = DEFAULTS[kind]["efficiency"]
    share = GPU_FAMILY_EFFICIENCY.get(family, 1.0) if kind != "cpu" else 1.0
    eff = (eff[0] * share, eff[1] * share, eff[2] * share)
    over = DEFAULTS[kind]["overhead_ms_per_layer"]
    host = DEFAULTS[kind].get("host_us_per_token")
    note = f"{kind} defaults: efficiency {eff[0]:.0%}-{eff[2]:.0%} of peak"
    note += f" ({share:.2g} of the class's for {family})" if share != 1.0 else ""
    note += f", {over[0]}-{over[2]} ms per batch per layer"
    if host:
        note += f", host {host[0]:g}-{host[2]:g} us per token"

    def make(e: float, o: float, h: float | None) -> Rates:
        return Rates(
            peak_tflops=peak_tflops,
            bandwidth_gbs=bandwidth_gbs,
            efficiency=e,
            overhead_ms=o * layers,
            tokenize_ms_per_pair=0.0 if h is not None else TOKENIZE_MS_PER_PAIR,
            tokenize_ms_per_token=(h or 0.0) / 1000.0,
            source="estimated",
            note=note,
        )

    def at(i: int) -> float | None:
        return host[i] if host else None

    return make(eff[1], over[1], at(1)), make(eff[2], over[0], at(0)), make(eff[0], over[2], at(2))


@dataclass
class Calibration:
    efficiency: float
    overhead_ms: float
    rows: int
    spread: float  # relative RMS error of the fit on its own rows
    note: str


def calibrate(points: list[tuple[float, float, float]], peak_tflops: float) -> Calibration | None:
    """Fit p50_ms = a * padded GFLOP + b * batches (a, b >= 0) to measured rows: (padded_gflop, batches, p50_ms).

    Returns efficiency = 1 / (a x peak) and overhead b per batch; None with fewer than 2 rows or a fit that
    makes no physical sense (no compute term)."""
    if len(points) < 2:
        return None
    import numpy as np

    x = np.array([[g, n] for g, n, _ in points], dtype=float)
    y = np.array([p for _, _, p in points], dtype=float)
    weights = 1.0 / y  # relative error matters, not absolute: weight each row by 1/p50
    coef, *_ = np.linalg.lstsq(x * weights[:, None], y * weights, rcond=None)
    a, b = float(coef[0]), float(coef[1])
    if b < 0:  # no negative overhead: refit the compute term alone
        a, b = float(np.sum(x[:, 0] * y * weights**2) / np.sum((x[:, 0] * weights) ** 2)), 0.0
    if a <= 0:
        return None
    fitted = x[:, 0] * a + x[:, 1] * b
    spread = float(np.sqrt(np.mean(((fitted - y) / y) ** 2)))
    efficiency = 1.0 / (a * peak_tflops * 1e12 / 1e9 / 1000.0)  # a is ms per GFLOP
    return Calibration(
        efficiency=efficiency,
        overhead_ms=b,
        rows=len(points),
        spread=spread,
        note=f"fitted to {len(points)} measured rows (fit error {spread:.0%})",
    )
