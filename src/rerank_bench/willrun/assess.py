"""`will-it-run`: does a reranker fit a device's memory and meet a latency budget at a depth?

Only the model's config is needed (the catalog carries it; for a Hub id only config.json is fetched; never
the weights). Memory comes from memory_model.py, latency from latency_model.py. On this machine
(`--hardware local`) measured sweep rows answer directly where they match, and otherwise calibrate the
latency model; every figure says whether it is measured or estimated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rerank_bench.common.vocab import FitVerdict, ServerKind
from rerank_bench.errors import ResultFileError, UsageError
from rerank_bench.probe import MachineReport
from rerank_bench.results.schema import ResultRow
from rerank_bench.willrun.calibration import (
    OTHER_MODELS,
    calibration_points,
    local_peaks,
    local_rows,
    measured_row,
    other_machines,
    service_spread,
)
from rerank_bench.willrun.latency_model import (
    GPU_FAMILY_EFFICIENCY,
    Calibration,
    Prediction,
    Rates,
    calibrate,
    default_rates,
    host_ms_per_token,
    predict,
    request_lengths,
)
from rerank_bench.willrun.memory_model import (
    SAFETY_MARGIN,
    max_batch,
    peak_mib,
    usable_memory_mib,
    weights_bytes,
)
from rerank_bench.willrun.model_info import ModelInfo, load_model_info
from rerank_bench.willrun.profiles import SHOWN_PEAKS, HardwareProfile
from rerank_bench.willrun.self_calibration import SELF_CALIBRATED_RANGE, SelfCalibrate, forward_probe
from rerank_bench.willrun.served_calibration import endpoint_rows

VERDICTS = tuple(FitVerdict)
BATCH_CANDIDATES = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class WillRunRequest:
    model: str | None = None  # None: every catalog model
    hardware: str = "local"  # a profile name, "local" or "all"
    vram_gib: float | None = None  # overrides the device's memory
    depth: int = 50
    budget_ms: float | None = None
    percentile: str = "p95"
    burstiness: float = 1.0  # --rate: gamma shape of the arrival gaps (1 Poisson, below 1 burstier)
    max_length: int | None = None
    doc_tokens: str | None = None
    dtype: str = "auto"
    batch_size: str = "auto"
    attention: str = "sdpa"
    profile_dirs: tuple[Path, ...] = ()
    results: tuple[Path, ...] = ()  # sweep result files or folders, for measured rows and calibration
    measure: bool = False
    trust_remote_code: bool = False
    rate: float | None = None  # requests per second to plan for (--rate): capacity, replicas and cost
    server: str = ServerKind.TEI  # how the simulated server batches (--server)
    max_batch_tokens: int | str | None = None  # tei's --max-batch-tokens, or "auto" (the best for the budget)
    arrivals: Path | None = None  # --rate: a trace of arrival timestamps to replay instead of Poisson
    headroom: float | None = None  # --rate: plan each replica at this utilisation at most
    as_endpoint: bool = False  # --rate: also what `endpoint --capacity`'s search would report (willrun/search_sim.py)
    instruction: str | None = None  # yes/no rerankers: the prompt's instruction (its tokens count)


@dataclass
class Assessment:
    model: str
    hardware: str
    hardware_key: str
    params: int
    dtype: str
    depth: int
    max_length: int
    weights_mib: float
    peak_mib: float
    memory_mib: float
    headroom_mib: float
    max_batch: int
    batch_size: int
    p50_ms: float | None
    p95_ms: float | None
    source: str
    verdict: FitVerdict | str  # str only while the row is being assessed (empty)
    reason: str
    change: str
    budget_ms: float | None
    p50_ms_low: float | None = None
    p50_ms_high: float | None = None
    p95_ms_low: float | None = None
    p95_ms_high: float | None = None
    memory_note: str = ""
    latency_note: str = ""
    tdp_w: float | None = None
    notes: list[str] = field(default_factory=list)
    # --rate: one replica simulated under Poisson arrivals (willrun/rate_plan.py); empty without --rate
    rate: float | None = None
    server: str | None = None
    capacity_rps: float | None = None
    capacity_rps_low: float | None = None
    capacity_rps_high: float | None = None
    replicas: int | None = None  # planned: covers the capacity range's slow end (and --headroom)
    replicas_central: int | None = None  # what the central capacity alone would need
    utilisation: float | None = None
    capacity_spread_rps: tuple[float, float] | None = None  # the central capacity over its seeds
    # --as-endpoint: what `endpoint --capacity` would report (seeds' median of whole simulated searches), and
    # the seeds' lowest and highest: one measured search lands anywhere in that spread
    endpoint_capacity_rps: float | None = None
    endpoint_capacity_spread_rps: tuple[float, float] | None = None
    # ...and with the latency estimate's slow and fast ends too (END_SEEDS searches each), as the capacity's own
    # range has them: the range a measured search should fall in
    endpoint_capacity_range_rps: tuple[float, float] | None = None
    headroom: float | None = None
    server_batch_size: int | None = None  # infinity's --batch-size planned with
    server_max_batch_tokens: int | None = None  # tei's --max-batch-tokens planned with
    server_setting_note: str | None = None  # auto: the best setting, the runner-up and the margin
    p50_at_rate_ms: float | None = None
    p95_at_rate_ms: float | None = None
    p95_at_rate_ci_ms: tuple[float, float] | None = None
    p95_at_rate_range_ms: tuple[float, float] | None = None  # with the estimate's fast and slow costs
    simulated_seconds: float | None = None
    simulation_s: float | None = None
    power_w: float | None = None  # replicas x TDP: the cost stand-in
    price_per_hour: float | None = None  # from the profile, where it gives one
    cost_per_hour: float | None = None  # replicas x price_per_hour

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def choose_dtype(requested: str, profile: HardwareProfile) -> str:
    if requested != "auto":
        if profile.peak(requested) is None:
            runs = ", ".join(k for k in SHOWN_PEAKS if profile.peak(k))
            raise UsageError(
                f"--dtype {requested}: {profile.name} has no {requested} rate in its profile (it lists {runs})"
            )
        return requested
    fp16, fp32 = profile.peak("fp16"), profile.peak("fp32")
    if profile.kind in ("nvidia", "amd", "apple") and fp16 and fp16 > (fp32 or 0.0):
        return "fp16"
    return "fp32"


def _verdict(
    row: Assessment,
    budget: float | None,
    fits_batch1: bool,
    percentile: str,
    profile: HardwareProfile,
    batch1_peak: float,
) -> None:
    if not fits_batch1:
        row.verdict = FitVerdict.WONT_FIT
        row.reason = (
            f"needs {batch1_peak:,.0f} MiB at batch 1 and {row.max_length} tokens; {row.memory_mib:,.0f} MiB usable"
        )
        options = []
        if row.dtype == "fp32":
            options.append("fp16/bf16 halves weights and activations")
        need_gib = math.ceil(batch1_peak / 1024 / (1 - SAFETY_MARGIN) + 1)
        options.append(f"a device with {need_gib} GiB or more")
        row.change = "; ".join(options)
        return
    latency = row.p95_ms if percentile == "p95" else row.p50_ms
    high = row.p95_ms_high if percentile == "p95" else row.p50_ms_high
    tight_memory = row.max_batch < 1
    if budget is not None and latency is not None and latency > budget:
        row.verdict = FitVerdict.TOO_SLOW
        row.reason = f"{percentile} {latency:,.0f} ms at depth {row.depth} is over the {budget:g} ms budget"
        fewer = int(row.depth * budget / latency)  # latency grows about linearly with the candidates
        if fewer >= 1:
            row.change = (
                f"about {fewer} candidates instead of {row.depth}; or a shorter --max-length; or a faster device"
            )
        else:
            row.change = "even one candidate would be over the budget here: a shorter --max-length or a faster device"
        if row.dtype == "fp32" and (profile.peak("bf16") or profile.peak("fp16")):
            row.change += "; or bf16/fp16"
        return
    if tight_memory:
        row.verdict = FitVerdict.TIGHT
        row.reason = f"batch 1 fits but with less than {SAFETY_MARGIN:.0%} of memory to spare"
        row.change = "a shorter --max-length or fp16 gives room"
        return
    if budget is not None and high is not None and latency is not None and high > budget:
        row.verdict = FitVerdict.TIGHT
        row.reason = (
            f"{percentile} {latency:,.0f} ms meets the {budget:g} ms budget, "
            f"but the estimate's range reaches {high:,.0f} ms"
        )
        row.change = "run `will-it-run --hardware local --measure` on the device, or leave more room in the budget"
        return
    row.verdict = FitVerdict.RUNS
    pieces = [f"fits with batch up to {row.max_batch}"]
    if latency is not None:
        pieces.append(f"{percentile} {latency:,.0f} ms" + (f" within {budget:g} ms" if budget is not None else ""))
    row.reason = ", ".join(pieces)
    row.change = ""


def _fitted_rates(
    fit: Calibration, peak_rate: float, profile: HardwareProfile, source: str, host_per_token: float = 0.0
) -> Rates:
    """Rates from a fit to whole timed queries: on a CPU their tokenization is inside the fitted figures
    already; on a GPU it was taken off the rows at `host_per_token` (calibration_points) and goes back here."""
    return Rates(
        peak_tflops=peak_rate,
        bandwidth_gbs=profile.memory_bandwidth_gbs,
        efficiency=fit.efficiency,
        overhead_ms=fit.overhead_ms,
        tokenize_ms_per_pair=0.0,
        tokenize_ms_per_token=host_per_token,
        source=source,
    )


@dataclass(frozen=True)
class MemoryFit:
    """What the device's memory allows: usable MiB, the weights, the peak at batch 1 and the largest batch."""

    available_mib: float
    note: str
    weights_mib: float
    batch1_mib: float
    max_batch: int

    @property
    def fits_batch1(self) -> bool:
        return self.batch1_mib <= self.available_mib


def memory_fit(info: ModelInfo, profile: HardwareProfile, request: WillRunRequest, dtype: str) -> MemoryFit:
    memory_gib = request.vram_gib if request.vram_gib is not None else profile.memory_gib
    free = profile.free_memory_gib if request.vram_gib is None else None
    available, note = usable_memory_mib(profile.kind, memory_gib, free)
    length = info.max_length
    return MemoryFit(
        available_mib=available,
        note=note,
        weights_mib=weights_bytes(info.arch, dtype) / 2**20,
        batch1_mib=peak_mib(info.arch, 1, length, dtype, request.attention, profile.kind),
        max_batch=max_batch(info.arch, length, dtype, request.attention, profile.kind, available),
    )


@dataclass(frozen=True)
class RateChoice:
    """The latency model's rates for this device: the central ones, the class's fast and slow bounds, and
    where a calibration replaced the central ones, the range around them (`widths`: low, high multipliers)."""

    central: Rates
    fast: Rates
    slow: Rates
    widths: tuple[float, float] | None
    calibrated: bool
    note: str
    # The range reaches the class's fast and slow ends too: a GPU calibrated on other models only, whose
    # families' efficiencies differ more than a fit to a few of their rows can tell (benchmarks/gpu_willrun.py
    # on an H200: leave one model out, XLM-R +225% and DeBERTa-v3 -68% off, both outside a +-10% range).
    with_class_range: bool = False

    @property
    def source(self) -> str:
        return f"{self.central.source} estimate" if self.calibrated else "estimated"


def choose_rates(
    info: ModelInfo,
    profile: HardwareProfile,
    rows: list[ResultRow],
    dtype: str,
    self_calibrate: SelfCalibrate | None,
) -> RateChoice:
    """From three sources, the first that gives a fit: this machine's sweep rows (`--hardware local`), a few
    seconds of self-calibration (local CPU, no rows), else the device class's defaults."""
    peak_rate = profile.peak(dtype) or profile.peak("fp32")
    assert peak_rate is not None  # every profile has an fp32 rate (profiles.py refuses one without)
    central, fast, slow = default_rates(
        profile.kind, peak_rate, profile.memory_bandwidth_gbs, info.arch.layers, info.arch.family
    )
    if profile.key == "local" and rows:
        host = host_ms_per_token(profile.kind)
        points, which = calibration_points(rows, info, dtype, host)
        fit = calibrate(points, peak_rate)
        if fit is not None and host > 0:  # the rows' work was counted at the class's efficiency
            share = GPU_FAMILY_EFFICIENCY.get(info.arch.family, 1.0)
            fit = replace(fit, efficiency=fit.efficiency * share)
        if fit is not None:
            spread = max(0.10, 2 * fit.spread)
            others = profile.kind != "cpu" and which == OTHER_MODELS
            return RateChoice(
                _fitted_rates(fit, peak_rate, profile, "calibrated", host),
                fast,
                slow,
                (1 - spread, 1 + spread),
                True,
                f"calibrated: {fit.note}, from {which}; efficiency {fit.efficiency:.0%} of peak"
                + ("; the range is the device class's too, as the model itself was not measured" if others else ""),
                with_class_range=others,
            )
    if profile.key == "local" and profile.kind == "cpu" and self_calibrate is not None:
        fit = self_calibrate(info, dtype, peak_rate)
        if fit is not None:
            note = (
                f"{fit.note}; no sweep rows of this machine to calibrate on "
                f"(a sweep of {info.name} narrows the range); efficiency {fit.efficiency:.0%} of peak"
            )
            rates = _fitted_rates(fit, peak_rate, profile, "self-calibrated")
            return RateChoice(rates, fast, slow, SELF_CALIBRATED_RANGE, True, note)
    return RateChoice(central, fast, slow, None, False, central.note)


def fixed_batch(request: WillRunRequest) -> int | None:
    """--batch-size as a number, None for auto."""
    if request.batch_size == "auto":
        return None
    try:
        return int(request.batch_size)
    except ValueError:
        raise UsageError(f"--batch-size {request.batch_size!r} is not auto or a number") from None


def best_prediction(
    info: ModelInfo, requests: list[list[int]], candidates: list[int], dtype: str, rates: RateChoice
) -> tuple[int, Prediction]:
    """The batch size with the lowest predicted p50, and its prediction with a range: a calibration's widths
    around it, else the device class's fast and slow bounds."""
    predictions = {b: predict(info.arch, info.shape, requests, b, dtype, rates.central) for b in candidates}
    batch = min(candidates, key=lambda b: (predictions[b].p50_ms, b))
    if rates.widths is None:
        return batch, predict(info.arch, info.shape, requests, batch, dtype, rates.central, rates.fast, rates.slow)
    prediction = predictions[batch]
    low, high = rates.widths
    prediction.p50_low_ms, prediction.p50_high_ms = prediction.p50_ms * low, prediction.p50_ms * high
    prediction.p95_low_ms, prediction.p95_high_ms = prediction.p95_ms * low, prediction.p95_ms * high
    if rates.with_class_range:
        wide = predict(info.arch, info.shape, requests, batch, dtype, rates.central, rates.fast, rates.slow)
        prediction.p50_low_ms = min(prediction.p50_low_ms, wide.p50_low_ms or prediction.p50_low_ms)
        prediction.p50_high_ms = max(prediction.p50_high_ms, wide.p50_high_ms or prediction.p50_high_ms)
        prediction.p95_low_ms = min(prediction.p95_low_ms, wide.p95_low_ms or prediction.p95_low_ms)
        prediction.p95_high_ms = max(prediction.p95_high_ms, wide.p95_high_ms or prediction.p95_high_ms)
    return batch, prediction


@dataclass
class Latency:
    """The figures a row shows: p50, p95 and their ranges, at a batch size, with where they come from."""

    batch: int
    p50_ms: float | None
    p95_ms: float | None
    ranges: tuple[float | None, float | None, float | None, float | None]  # p50 low, high, p95 low, high
    source: str
    note: str


def predicted_latency(batch: int, prediction: Prediction, rates: RateChoice) -> Latency:
    ranges = (prediction.p50_low_ms, prediction.p50_high_ms, prediction.p95_low_ms, prediction.p95_high_ms)
    return Latency(batch, prediction.p50_ms, prediction.p95_ms, ranges, rates.source, rates.note)


def measured_latency(measured: ResultRow, prediction: Prediction, sweeps: int = 1) -> Latency:
    """A sweep row of this very case answers instead of the model (of `sweeps` rows of it, the median)."""
    batch = int(measured["batch_size"])
    p50, p95 = measured.get("p50_ms"), measured.get("p95_ms")
    note = (
        f"measured: {measured.get('n_queries')} queries at batch {batch} "
        f"({(measured.get('utc_time') or '')[:10]}, run {measured.get('run_id', '')})"
        + (f"; the median p50 of {sweeps} rows of this case" if sweeps > 1 else "")
    )
    ranges: tuple[float | None, float | None, float | None, float | None] = (None, None, None, None)
    if p95 is None and p50 and prediction.p50_ms:
        # The p50 is measured; the p95 is the model's p95/p50 ratio applied to it, so it carries the
        # model's range (scaled the same way) and is not shown as if it were measured.
        note += "; too few queries for a p95, so p95 is the model's estimate (with its range)"
        scale = p50 / prediction.p50_ms
        p95 = prediction.p95_ms * scale
        p95_low, p95_high = prediction.p95_low_ms, prediction.p95_high_ms
        ranges = (None, None, p95_low * scale if p95_low else p95, p95_high * scale if p95_high else p95)
    return Latency(batch, p50, p95, ranges, "measured", note)


def assess(
    info: ModelInfo,
    profile: HardwareProfile,
    request: WillRunRequest,
    rows: list[ResultRow],
    self_calibrate: SelfCalibrate | None = None,
    rate_facts: RateFacts | None = None,
) -> Assessment:
    """One model on one device: memory, the latency at the best batch size (measured where a sweep row of
    this case exists), the verdict, and with --rate the capacity plan."""
    dtype = choose_dtype(request.dtype, profile)
    memory = memory_fit(info, profile, request, dtype)
    rates = choose_rates(info, profile, rows, dtype, self_calibrate)
    requests = request_lengths(request.depth, request.doc_tokens, info.max_length, info.specials)
    fixed = fixed_batch(request)
    candidates = [fixed] if fixed is not None else [b for b in BATCH_CANDIDATES if b <= max(memory.max_batch, 1)]
    batch, prediction = best_prediction(info, requests, candidates, dtype, rates)
    measured = (
        measured_row(rows, info, request.depth, dtype, info.max_length, request.doc_tokens, fixed)
        if profile.key == "local"
        else None
    )
    if measured is not None:
        latency = measured_latency(measured[0], prediction, sweeps=measured[1])
    else:
        latency = predicted_latency(batch, prediction, rates)
    row = _assessment(info, profile, request, dtype, memory, latency)
    _verdict(row, request.budget_ms, memory.fits_batch1, request.percentile, profile, memory.batch1_mib)
    if not memory.fits_batch1:
        row.p50_ms = row.p95_ms = None
        row.p50_ms_low = row.p50_ms_high = row.p95_ms_low = row.p95_ms_high = None
    elif request.rate is not None:
        costs = (rates.central, rates.fast, rates.slow) if rates.widths is None else (rates.central, rates.widths)
        facts = rate_facts or RateFacts()
        conditions = _conditions(request, profile, facts.service, facts.trace)
        local = (rows, facts.served_rows) if profile.key == "local" else ([], ())
        _plan_rate(row, request, info, profile, requests, costs, conditions, local)
    return row


@dataclass(frozen=True)
class RateFacts:
    """What --rate plans with besides the latency model: this machine's batch-time spread (from its
    sidecars), a replayed trace's gaps, and this machine's endpoint rows (a served overhead to fit)."""

    service: tuple[float, str] | None = None
    trace: tuple[float, ...] | None = None
    served_rows: tuple[ResultRow, ...] = ()


def _served_overhead(
    info: ModelInfo,
    request: WillRunRequest,
    requests: list[list[int]],
    policy: Any,
    cost: Any,
    conditions: Any,
    rows: Any,
) -> Any:
    """The served overhead fitted from this machine's endpoint rows of this server, model, depth and workload
    (--hardware local only: the server measured is this machine's); None where no row matches."""
    if not rows:
        return None
    from rerank_bench.willrun.rate_plan import service_bound_rps
    from rerank_bench.willrun.served_calibration import fit_overhead, matching
    from rerank_bench.workload.requests import parse_doc_tokens

    workload = parse_doc_tokens(request.doc_tokens).label()
    names = {info.name, str(info.model_id).rstrip("/").split("/")[-1]}
    chosen = matching(list(rows), request.server, names, request.depth, workload)
    if not chosen:
        return None
    return fit_overhead(chosen, requests, cost, policy, conditions, lambda c: service_bound_rps(requests, c, policy))


def _batch_corrected(row: Assessment, info: ModelInfo, rates: Any, rows: list[ResultRow], costs: tuple) -> tuple:
    """Costs priced per batch size by this machine's own rows of this model (calibration.batch_factors), where a
    calibrated line exists and at least two batch sizes were measured at this depth."""
    from rerank_bench.willrun.calibration import batch_factors, by_nearest_batch

    if not rows or rates.source != "calibrated" or rates.efficiency <= 0:
        return costs
    ms_per_gflop = 1.0 / (rates.peak_tflops * rates.efficiency)
    factors = batch_factors(rows, info, row.dtype, row.depth, ms_per_gflop, rates.overhead_ms)
    if len(factors) < 2:
        return costs
    factor = by_nearest_batch(factors)
    shown = ", ".join(f"{b}: x{f:.2f}" for b, f in sorted(factors.items()))
    row.latency_note += f"; each batch size priced by its own rows ({shown})"

    def priced(cost: Any) -> Any:
        return lambda lengths: cost(lengths) * factor(len(lengths))

    return tuple(priced(c) for c in costs)


def _conditions(
    request: WillRunRequest,
    profile: HardwareProfile,
    service: tuple[float, str] | None,
    trace: tuple[float, ...] | None,
) -> Any:
    """What the simulated replica meets: the arrivals asked for, and batch times varying by this machine's
    measured spread (--hardware local with sidecars), else the device kind's stated default."""
    from rerank_bench.willrun.calibration import DEFAULT_SERVICE_SIGMA
    from rerank_bench.willrun.serving_sim import Conditions

    sigma = service[0] if service and profile.key == "local" else DEFAULT_SERVICE_SIGMA.get(profile.kind, 0.05)
    return Conditions(burstiness=request.burstiness, trace_gaps=trace, service_sigma=sigma)


def _assessment(
    info: ModelInfo,
    profile: HardwareProfile,
    request: WillRunRequest,
    dtype: str,
    memory: MemoryFit,
    latency: Latency,
) -> Assessment:
    length = info.max_length
    peak_at_batch = peak_mib(info.arch, latency.batch, length, dtype, request.attention, profile.kind)
    return Assessment(
        model=info.name,
        hardware=profile.name,
        hardware_key=profile.key,
        params=info.arch.params,
        dtype=dtype,
        depth=request.depth,
        max_length=length,
        weights_mib=round(memory.weights_mib, 1),
        peak_mib=round(peak_at_batch, 1),
        memory_mib=round(memory.available_mib, 1),
        headroom_mib=round(memory.available_mib - peak_at_batch, 1),
        max_batch=memory.max_batch,
        batch_size=latency.batch,
        p50_ms=latency.p50_ms,
        p95_ms=latency.p95_ms,
        source=latency.source,
        verdict="",
        reason="",
        change="",
        budget_ms=request.budget_ms,
        p50_ms_low=latency.ranges[0],
        p50_ms_high=latency.ranges[1],
        p95_ms_low=latency.ranges[2],
        p95_ms_high=latency.ranges[3],
        memory_note=f"{memory.note}; peak at {length} tokens per pair (worst case), "
        f"{'DeBERTa disentangled (eager)' if info.arch.family == 'deberta' else request.attention} attention; "
        "estimated",
        latency_note=latency.note,
        tdp_w=profile.tdp_w,
    )


def _plan_rate(
    row: Assessment,
    request: WillRunRequest,
    info: ModelInfo,
    profile: HardwareProfile,
    requests: list[list[int]],
    costs: tuple[Any, ...],
    conditions: Any,
    local: tuple[list[ResultRow], tuple[ResultRow, ...]],
) -> None:
    """--rate: simulate a serving replica on this device; the verdict becomes the rate's (a memory refusal
    stays). costs: (central, fast, slow) rates, or (central, (low, high) multipliers) for a calibrated fit.
    local: this machine's sweep rows (each batch size priced by its own) and endpoint rows (a served overhead
    per request and per batch, added to every cost and reply); empty for other hardware."""
    from rerank_bench.willrun.rate_plan import batch_cost, plan_rate, scaled, server_policy

    assert request.rate is not None and request.budget_ms is not None
    fixed = request.batch_size != "auto"
    tokens = request.max_batch_tokens if isinstance(request.max_batch_tokens, int) else None
    policy = server_policy(request.server, row.batch_size, tokens, profile.kind, fixed)
    cost = batch_cost(info.arch, info.shape, costs[0], row.dtype, policy.padded)
    if len(costs) == 2:
        low, high = costs[1]
        fast, slow = scaled(cost, low), scaled(cost, high)
    else:
        fast = batch_cost(info.arch, info.shape, costs[1], row.dtype, policy.padded)
        slow = batch_cost(info.arch, info.shape, costs[2], row.dtype, policy.padded)
    sweep_rows, endpoint_rows_here = local
    cost, fast, slow = _batch_corrected(row, info, costs[0], sweep_rows, (cost, fast, slow))
    served = _served_overhead(info, request, requests, policy, cost, conditions, endpoint_rows_here)
    if served is not None:
        from dataclasses import replace

        from rerank_bench.willrun.served_calibration import with_batch_overhead

        if served.model_speed != 1.0:  # the levels ran faster (or failed slower) than the sweep: every cost with them
            cost, fast, slow = (scaled(c, served.model_speed) for c in (cost, fast, slow))
        cost, fast, slow = (with_batch_overhead(c, served.per_batch_ms) for c in (cost, fast, slow))
        conditions = replace(
            conditions,
            request_overhead_ms=served.per_request_ms,
            request_cpu_ms=served.request_cpu_ms,
            service_sigma=served.service_sigma,
            service_sigma_ends=served.sigma_range,  # the range's ends meet what the levels say of the spread
            idle_wake_ms=served.idle_wake_ms,
        )
        row.notes.append(served.source)
        row.latency_note += f"; {served.source}"
    else:  # said, because it is most of the gap where the model is small: infinity here added 8-12 ms a request
        row.latency_note += (
            "; the server's own work (HTTP, JSON, its threads) is not in these figures: no endpoint rows of this "
            "server, model, depth and workload measured here (one `endpoint --concurrency 1` level and one "
            "--rate level, passed with --results, fit it)"
        )
    policy = _server_setting(row, request, policy, requests, cost, conditions, _batch_known(info, row, sweep_rows))
    plan = plan_rate(
        request.rate,
        request.budget_ms,
        request.percentile,
        requests,
        policy,
        (cost, fast, slow),
        conditions=conditions,
        headroom=request.headroom,
    )
    row.rate, row.server = plan.rate_rps, plan.server
    row.capacity_rps, row.capacity_rps_low, row.capacity_rps_high = (
        plan.capacity_rps,
        plan.capacity_rps_low,
        plan.capacity_rps_high,
    )
    row.replicas, row.replicas_central, row.utilisation = plan.replicas, plan.replicas_central, plan.utilisation
    row.capacity_spread_rps, row.headroom = plan.capacity_spread_rps, plan.headroom
    row.p95_at_rate_range_ms = plan.p95_at_rate_range_ms
    row.p50_at_rate_ms, row.p95_at_rate_ms, row.p95_at_rate_ci_ms = (
        plan.p50_at_rate_ms,
        plan.p95_at_rate_ms,
        plan.p95_at_rate_ci_ms,
    )
    row.simulated_seconds, row.simulation_s = plan.simulated_seconds, plan.run_s
    if request.as_endpoint:
        _endpoint_figure(row, request, requests, policy, (cost, fast, slow), conditions)
    row.price_per_hour = profile.price_per_hour
    if plan.replicas is not None:
        row.power_w = plan.replicas * profile.tdp_w if profile.tdp_w else None
        row.cost_per_hour = plan.replicas * profile.price_per_hour if profile.price_per_hour else None
    _rate_verdict(row, plan, request)


def _endpoint_figure(
    row: Assessment,
    request: WillRunRequest,
    requests: list[list[int]],
    policy: Any,
    costs: tuple[Any, Any, Any],
    conditions: Any,
) -> None:
    """--as-endpoint: `endpoint --capacity`'s search run on the model, beside the steady capacity: the central
    cost's searches give the figure and its seeds' spread; the slow and fast costs' searches (END_SEEDS each,
    at the conditions' own ends where they have some) widen that to the range a measured search should fall
    in, as the latency estimate's range widens the capacity's (the seeds alone say only how much the arrival
    streams move it)."""
    from rerank_bench.willrun.rate_plan import END_SEEDS, quantile_of
    from rerank_bench.willrun.search_sim import search_figure

    assert request.budget_ms is not None
    cost, fast, slow = costs
    quantile = quantile_of(request.percentile)
    figure = search_figure(requests, cost, policy, request.budget_ms, quantile, conditions)
    row.endpoint_capacity_rps, row.endpoint_capacity_spread_rps = figure.rate_rps, figure.spread_rps
    row.simulation_s = (row.simulation_s or 0.0) + figure.run_s
    if figure.rate_rps is None:
        row.notes.append("`endpoint --capacity` would find no rate meeting the budget (simulated searches)")
        return
    at_fast, at_slow = conditions.ends()
    ends = [
        search_figure(requests, c, policy, request.budget_ms, quantile, m, END_SEEDS)
        for c, m in ((slow, at_slow), (fast, at_fast))
    ]
    row.simulation_s += sum(e.run_s for e in ends)
    found = [r for f in (figure, *ends) for r in f.seed_rates_rps if r is not None]
    # a slow end that finds no rate at all leaves the low end at zero: a measured search may find none either
    lowest = min(found) if all(r is not None for r in ends[0].seed_rates_rps) else 0.0
    row.endpoint_capacity_range_rps = (lowest, max(found))
    spread, searches = figure.spread_rps, len(figure.seed_rates_rps)
    if spread and f"{spread[0]:.3g}" != f"{spread[1]:.3g}":
        among = f"{spread[0]:.3g}-{spread[1]:.3g} over {searches} searches"
    else:
        among = f"each of {searches} searches"
    low, high = row.endpoint_capacity_range_rps
    row.notes.append(
        f"`endpoint --capacity` would report about {figure.rate_rps:.3g}/s ({among}; {low:.3g}-{high:.3g} with "
        f"the latency estimate's range): the highest rate its levels show to pass at 95% confidence; the capacity "
        f"is where a long steady run's {request.percentile} meets the budget"
    )


def _batch_known(info: ModelInfo, row: Assessment, rows: list[ResultRow]) -> Callable[[int, int], Any] | None:
    """How well this machine's rows tell batches of a and b pairs apart (rate_plan.PairKnown), where two batch
    sizes or more were measured (else None): the nearest measured sizes' p50 intervals together, or, where
    several sweeps measured both, the spread of their ratio across sweeps if that is wider."""
    from rerank_bench.willrun.calibration import batch_ratio_spreads, batch_uncertainties, nearest_batch
    from rerank_bench.willrun.rate_plan import PairKnown

    known = batch_uncertainties(rows, info, row.dtype, row.depth) if rows else {}
    if len(known) < 2:
        return None
    spreads = batch_ratio_spreads(rows, info, row.dtype, row.depth)
    sizes = sorted(known)

    def pair(a: int, b: int) -> PairKnown:
        near_a, near_b = nearest_batch(sizes, a), nearest_batch(sizes, b)
        half = math.hypot(known[near_a], known[near_b])
        why = f"their times at the two settings known to +-{known[near_a]:.0%} and +-{known[near_b]:.0%}"
        spread, sweeps = spreads.get((min(near_a, near_b), max(near_a, near_b)), (None, 1))
        if spread is not None:
            why += f", their ratio across {sweeps} sweeps to +-{spread:.0%}"
            half = max(half, spread)
        return PairKnown(half, why, sweeps)

    return pair


def _server_setting(
    row: Assessment,
    request: WillRunRequest,
    policy: Any,
    requests: list[list[int]],
    cost: Any,
    conditions: Any,
    batch_known: Callable[[int, int], Any] | None = None,
) -> Any:
    """--server infinity --batch-size auto, or --server tei --max-batch-tokens auto: the setting with the most
    capacity at the budget (batches that fit the device's memory only); otherwise the policy as given. With
    `batch_known` (this machine's rows priced each infinity batch size), the margin over the runner-up is also
    weighed against how well those rows know the two batch sizes' times."""
    from dataclasses import replace

    from rerank_bench.willrun.rate_plan import (
        INFINITY_BATCH_CANDIDATES,
        TEI_TOKEN_CANDIDATES,
        best_setting,
        quantile_of,
    )

    assert request.budget_ms is not None
    which = quantile_of(request.percentile)
    candidates = []
    if request.server == ServerKind.INFINITY and request.batch_size == "auto":
        fits = [b for b in INFINITY_BATCH_CANDIDATES if b <= max(row.max_batch, 1)] or [1]
        candidates = [replace(policy, batch_size=b) for b in fits]
    elif request.server == ServerKind.TEI and request.max_batch_tokens == "auto":
        candidates = [replace(policy, max_batch_tokens=t) for t in TEI_TOKEN_CANDIDATES]
    if candidates:
        labelled = [(c.setting(), c) for c in candidates]
        calibration: Callable[[str, str], Any] | None = None
        if batch_known is not None and request.server == ServerKind.INFINITY:
            sizes = {label: c.batch_size for label, c in labelled}
            pair = batch_known

            def priced(best: str, runner: str) -> Any:
                return pair(sizes[best], sizes[runner])

            calibration = priced
        choice = best_setting(requests, cost, labelled, request.budget_ms, which, conditions, calibration)
        policy = choice.policy
        row.server_setting_note = f"best {choice.note}"
        row.notes.append(f"server setting searched: {choice.note}")
    if policy.kind == ServerKind.INFINITY:
        row.server_batch_size = policy.batch_size
    elif policy.kind == ServerKind.TEI:
        row.server_max_batch_tokens = policy.max_batch_tokens
    return policy


def _rate_verdict(row: Assessment, plan: Any, request: WillRunRequest) -> None:
    pct, budget = request.percentile, request.budget_ms
    assert budget is not None  # --rate is refused without --budget-ms (run_will_it_run)
    if plan.capacity_rps is None:
        row.verdict = FitVerdict.TOO_SLOW
        row.reason = (
            f"{pct} {plan.unloaded_ms:,.0f} ms with an idle {request.server} server is over the {budget:g} ms "
            f"budget at depth {row.depth}, before any load"
        )
        fewer = int(row.depth * budget / plan.unloaded_ms)
        row.change = (f"about {fewer} candidates instead of {row.depth}; " if fewer >= 1 else "") + "a faster device"
        return
    share = plan.rate_rps / plan.replicas
    capacity = f"{plan.capacity_rps:.3g}/s per replica"
    if plan.capacity_rps_low and plan.capacity_rps_high:
        capacity += f" ({plan.capacity_rps_low:.3g}-{plan.capacity_rps_high:.3g})"
    plural = "s" if plan.replicas > 1 else ""
    covers = "the range's slow end" if plan.capacity_rps_low else "the central estimate (its slow end meets none)"
    if plan.headroom_bound:
        covers = f"utilisation at most {plan.headroom:.0%}"
    row.reason = (
        f"{plan.rate_rps:g} requests/s within {pct} {budget:g} ms: {plan.replicas} replica{plural} for {covers} "
        f"(capacity {capacity}); at {share:.3g}/s each: p95 {plan.p95_at_rate_ms:,.0f} ms, "
        f"utilisation {plan.utilisation:.0%}"
    )
    if plan.capacity_rps_low is None:
        row.verdict = FitVerdict.TIGHT
        row.change = (
            "the estimate's slow end misses the budget even unloaded: measure a replica with "
            "`rerank-bench endpoint --capacity`"
        )
        return
    ci = plan.p95_at_rate_ci_ms
    if pct == "p95" and ci and ci[1] > budget:
        # RUNS only when the p95 at the planned share meets the budget at its interval's upper end: a share just
        # under the capacity's central figure can read under the budget and still miss it half the time
        row.verdict = FitVerdict.TIGHT
        row.change = (
            f"at {share:.3g}/s a replica the p95 could be up to {ci[1]:,.0f} ms (its 95% interval "
            f"{ci[0]:,.0f}-{ci[1]:,.0f}), over the {budget:g} ms budget: plan {plan.replicas + 1} replicas, or "
            "measure one with `rerank-bench endpoint --capacity`"
        )
        return
    central = plan.replicas_central
    if central is not None and central < plan.replicas and not plan.headroom_bound:
        # the count is safe; whether it is needed depends on where in its range the device really is
        row.verdict = FitVerdict.TIGHT
        row.change = (
            f"the central capacity needs only {central} replica{'s' if central > 1 else ''}: measure one with "
            "`rerank-bench endpoint --capacity` to know which"
        )
        return
    row.verdict = FitVerdict.TIGHT if row.max_batch < 1 else FitVerdict.RUNS
    row.change = "" if row.verdict == FitVerdict.RUNS else "batch 1 fits with little memory to spare"


def sort_rows(rows: list[Assessment], by_hardware: bool) -> list[Assessment]:
    """Passing first; across hardware the least power-hungry first (a stand-in for cost). With --rate, by what
    the rate costs: devices whose profile gives price_per_hour first, by replicas x price, then the rest by
    replicas x TDP."""
    rank: dict[str, int] = {v: i for i, v in enumerate(VERDICTS)}
    if by_hardware and any(r.rate is not None for r in rows):

        def cost(r: Assessment) -> tuple[bool, bool, float, int]:
            value = r.cost_per_hour if r.cost_per_hour is not None else r.power_w
            return (rank[r.verdict] > 1, r.cost_per_hour is None, value if value is not None else 1e12, rank[r.verdict])

        return sorted(rows, key=cost)
    if by_hardware:
        return sorted(
            rows, key=lambda r: (rank[r.verdict] > 1, r.tdp_w if r.tdp_w is not None else 1e9, rank[r.verdict])
        )
    return rows


def _measure(info: ModelInfo, spec: str, row: Assessment, request: WillRunRequest, machine: MachineReport) -> Path:
    """A short real sweep of the chosen configuration on this machine (--measure)."""
    import tempfile

    from rerank_bench.sweep.planner import plan_sweep
    from rerank_bench.sweep.request import SweepRequest
    from rerank_bench.sweep.scheduler import run_sweep
    from rerank_bench.sweep.timing import MeasureSettings

    output = Path(tempfile.mkdtemp(prefix="rerank-bench-measure-")) / "measure.csv"
    sweep = SweepRequest(
        models=(spec,),
        depths=(row.depth,),
        batch_sizes=(row.batch_size,),
        dtypes=(row.dtype,),
        max_length=row.max_length,
        instruction=request.instruction,
        doc_tokens=request.doc_tokens,
        output=output,
        trust_remote_code=request.trust_remote_code,
    )
    settings = MeasureSettings(max_seconds=20.0)
    plan = plan_sweep(sweep, machine)
    run_sweep(plan, machine, settings)
    return output


@dataclass
class LocalFacts:
    """What `--hardware local` reads from this machine: its matmul peaks (GFLOP/s per dtype) and the sweep
    rows measured here. Gathered by `gather_local_facts`; tests pass their own."""

    peaks: dict[str, float]
    rows: list[ResultRow]
    self_calibrate: SelfCalibrate | None = None  # where no row calibrates: forward passes of the model here
    service: tuple[float, str] | None = None  # batch-time spread from the rows' raw samples, and its source
    served_rows: tuple[ResultRow, ...] = ()  # endpoint rows measured from here (--rate: a served overhead)
    # --results held rows of other machines and none of the kind the plan needs from this one: said, not silent
    other_machines: str = ""


def gather_local_facts(request: WillRunRequest, machine: MachineReport) -> LocalFacts:
    """This machine's peaks and rows: from --results (which must exist), else from ./results when it holds
    any result files (an empty or missing folder only means nothing was measured here yet)."""
    peaks = {} if machine.gpus else local_peaks(machine)
    probe = None if machine.gpus else forward_probe(machine.cpu.usable_cores)
    if request.results:
        paths = request.results
    elif Path("results").is_dir():
        paths = (Path("results"),)
    else:
        return LocalFacts(peaks=peaks, rows=[], self_calibrate=probe)
    try:
        rows = local_rows(paths, machine.fingerprint)
        service = served = None
        if request.rate is not None:
            service = service_spread(paths, machine.fingerprint)
            served = tuple(endpoint_rows(paths, machine.fingerprint))
    except ResultFileError:
        if request.results:
            raise
        return LocalFacts(peaks=peaks, rows=[], self_calibrate=probe)
    # only where the user named the files: ./results may hold every machine's rows on purpose
    missing = not rows or (request.rate is not None and not served)
    others = other_machines(paths, machine.fingerprint) if request.results and missing else ""
    return LocalFacts(
        peaks=peaks, rows=rows, self_calibrate=probe, service=service, served_rows=served or (), other_machines=others
    )


def check_request(request: WillRunRequest) -> None:
    """Every option checked before anything is resolved or simulated: one clear line for the first wrong one."""
    if request.depth < 1:
        raise UsageError("--depth must be at least 1")
    if request.budget_ms is not None and request.budget_ms <= 0:
        raise UsageError("--budget-ms must be positive")
    if request.percentile not in ("p50", "p95"):
        raise UsageError(f"--percentile {request.percentile!r} is not p50 or p95")
    if request.attention not in ("sdpa", "eager"):
        raise UsageError(f"--attention {request.attention!r} is not sdpa or eager")
    if request.vram_gib is not None and request.vram_gib <= 0:
        raise UsageError("--vram must be positive, e.g. --vram 12GiB")
    if request.measure and request.hardware != "local":
        raise UsageError("--measure runs on this machine: use it with --hardware local")
    _check_rate(request)


def _check_rate(request: WillRunRequest) -> None:
    """--rate and the options that shape it."""
    if request.rate is not None:
        from rerank_bench.willrun.serving_sim import SERVERS

        if not (request.rate > 0 and math.isfinite(request.rate)):
            raise UsageError(f"--rate {request.rate:g} must be a positive number of requests per second")
        if request.budget_ms is None:
            raise UsageError("--rate needs --budget-ms: capacity is the rate a replica holds within a budget")
        if request.server not in SERVERS:
            raise UsageError(f"--server {request.server!r} is not one of {', '.join(SERVERS)}")
    if request.headroom is not None and not 0 < request.headroom <= 1:
        raise UsageError(f"--headroom {request.headroom:g} must be a utilisation within (0, 1], e.g. 0.7")
    if (request.headroom is not None or request.arrivals is not None or request.as_endpoint) and request.rate is None:
        raise UsageError("--headroom, --arrivals and --as-endpoint plan a rate: use them with --rate")
    if request.arrivals is not None and request.burstiness != 1.0:
        raise UsageError("--arrivals replays a trace's own gaps: drop --burstiness")
    if not (request.burstiness > 0 and math.isfinite(request.burstiness)):
        raise UsageError(f"--burstiness {request.burstiness:g} must be positive (1 is Poisson, below 1 burstier)")
    if request.max_batch_tokens is not None and (request.server != ServerKind.TEI or request.rate is None):
        raise UsageError("--max-batch-tokens is TEI's batching: use it with --rate and --server tei")
    tokens = request.max_batch_tokens
    if isinstance(tokens, str) and tokens != "auto" or isinstance(tokens, int) and tokens < 1:
        raise UsageError(f"--max-batch-tokens {tokens} must be auto or a positive number of tokens")


def _targets(
    request: WillRunRequest, machine: MachineReport | None, local: LocalFacts | None
) -> tuple[list[HardwareProfile], LocalFacts | None]:
    """The hardware to assess (every profile, this machine, or one named), and this machine's facts for local."""
    from rerank_bench.willrun.profiles import find_profile, load_profiles, local_profile

    profiles = load_profiles(list(request.profile_dirs))
    if request.hardware == "all":
        return list(profiles.values()), local
    if request.hardware != "local":
        return [find_profile(request.hardware, profiles)], local
    if machine is None:
        raise UsageError("--hardware local needs this machine's probe")
    local = local or gather_local_facts(request, machine)
    return [local_profile(machine, profiles, local.peaks)], local


def run_will_it_run(
    request: WillRunRequest, machine: MachineReport | None, local: LocalFacts | None = None
) -> list[Assessment]:
    from rerank_bench.catalog import aliases

    check_request(request)
    targets, local = _targets(request, machine, local)
    specs = [request.model] if request.model else aliases()
    infos = [
        (spec, load_model_info(spec, request.max_length, request.trust_remote_code, request.instruction))
        for spec in specs
    ]
    rows = local.rows if local is not None else []
    probe = local.self_calibrate if local is not None else None
    facts = RateFacts(
        service=local.service if local is not None else None,
        trace=_trace(request),
        served_rows=local.served_rows if local is not None else (),
    )
    out: list[Assessment] = []
    for spec, info in infos:
        for profile in targets:
            row = assess(info, profile, request, rows, probe, facts)
            if profile.key == "local" and local is not None and local.other_machines:
                # beside the calibration's own note, where the table shows it and the reader looks for why
                row.latency_note = f"{row.latency_note}; {local.other_machines}"
            if request.measure and machine is not None and row.verdict != FitVerdict.WONT_FIT:
                measured_file = _measure(info, spec, row, request, machine)
                extra = local_rows((measured_file,), machine.fingerprint)
                if extra:
                    row = assess(info, profile, request, extra + rows, probe, facts)
                    row.notes.append(f"measured now: {measured_file}")
                else:
                    row.notes.append("--measure: the short sweep measured nothing (see its result file)")
            out.append(row)
    return sort_rows(out, by_hardware=request.hardware == "all")


def _trace(request: WillRunRequest) -> tuple[float, ...] | None:
    """--arrivals FILE: the trace's gaps, scaled to mean 1; with no --rate, the rate is the trace's own."""
    if request.arrivals is None:
        return None
    from rerank_bench.common.arrivals import read_trace
    from rerank_bench.willrun.serving_sim import trace_gaps

    return trace_gaps(read_trace(request.arrivals))


def trace_rate(path: Path) -> float:
    """A trace's own mean rate, requests per second: what --arrivals plans for when --rate is not given."""
    from rerank_bench.common.arrivals import read_trace

    times = sorted(read_trace(path))
    return (len(times) - 1) / (times[-1] - times[0])


def parse_size_gib(text: str | None) -> float | None:
    """'12GiB', '12GB', '12G' or '12' (GiB) -> GiB."""
    if text is None:
        return None
    import re

    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(gib|gb|g|mib|mb|m)?\s*", text.lower())
    if not match:
        raise UsageError(f"--vram {text!r} is not a size", "for example --vram 12GiB or --vram 8192MiB")
    value = float(match.group(1))
    unit = match.group(2) or "gib"
    if unit in ("mib", "mb", "m"):
        return value / 1024
    if unit == "gb":
        return value * 1e9 / 2**30
    return value
