"""What this machine has measured, for will-it-run on `--hardware local`: its sweep rows (a matching one is
the answer; the others calibrate the latency model) and its matmul peaks.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path

from rerank_bench.common.stats import T_975
from rerank_bench.common.vocab import Status
from rerank_bench.probe import MachineReport
from rerank_bench.results.schema import ResultRow
from rerank_bench.results.store import find_result_files, read_rows, read_samples, samples_path_for
from rerank_bench.willrun.model_info import ModelInfo


def local_rows(results: tuple[Path, ...], fingerprint: str) -> list[ResultRow]:
    """Sweep rows measured on this machine (same hardware fingerprint), status ok, torch backend."""
    if not results:
        return []
    rows: list[ResultRow] = []
    for path in find_result_files(list(results)).files:
        try:
            rows.extend(
                r
                for r in read_rows(path)
                if r.get("hardware_fingerprint") == fingerprint
                and r.get("status") == Status.OK
                and r.get("backend") == "torch"
            )
        except Exception:  # noqa: BLE001 - an unreadable file only means fewer measurements
            continue
    return rows


def other_machines(results: tuple[Path, ...], fingerprint: str) -> str:
    """The rows in `results` that --hardware local cannot use because another machine measured them, said per
    machine ('' where there are none): a user who passed a CI runner's results on a laptop gets a plan
    self-calibrated here, and should be told why their rows were left out."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for path in find_result_files(list(results)).files:
        try:
            for r in read_rows(path):
                theirs = str(r.get("hardware_fingerprint") or "")
                if theirs and theirs != fingerprint and r.get("status") == Status.OK:
                    counts[theirs] = counts.get(theirs, 0) + 1
                    names[theirs] = f"{r.get('hardware_name') or '?'}, {r.get('cpu_isa') or '?'}"
        except Exception:  # noqa: BLE001 - an unreadable file is said where its rows are read
            continue
    if not counts:
        return ""
    machines = "; ".join(f"{n} rows of {key} ({names[key]})" for key, n in sorted(counts.items()))
    return (
        f"--results rows measured on another machine are not used for this one (fingerprint {fingerprint}): "
        f"{machines}; sweep here, or plan for that hardware with --hardware NAME"
    )


def measured_row(
    rows: list[ResultRow],
    info: ModelInfo,
    depth: int,
    dtype: str,
    max_length: int,
    doc_tokens: str | None,
    batch: int | None = None,
) -> tuple[ResultRow, int] | None:
    """The measured case of this model, depth, dtype, length and workload (the sweep's default mix unless
    --doc-tokens) at the batch size whose rows have the lowest median p50 (the given one, if given), with how many
    rows that batch size has. Of a case swept several times, the row with the median p50 answers (the slower
    middle one of an even count): on a host whose speed drifts by half within an hour (measured here), the
    fastest sweep is the host's best moment, not what a budget can count on."""
    workload = "rag" if doc_tokens in (None, "rag") else None
    if batch is not None:
        rows = [r for r in rows if r.get("batch_size") == batch]
    matching = [
        r
        for r in rows
        if r.get("model") in (info.name, info.model_id)
        and r.get("depth") == depth
        and r.get("dtype") == dtype
        and (r.get("effective_max_length") or r.get("max_length")) == max_length
        and (workload is None or r.get("workload") == workload)
        and r.get("p50_ms") is not None
    ]
    by_batch: dict[int, list[ResultRow]] = {}
    for r in matching:
        by_batch.setdefault(int(r.get("batch_size") or 0), []).append(r)
    medians = {b: sorted(found, key=lambda r: r["p50_ms"])[len(found) // 2] for b, found in by_batch.items()}
    if not medians:
        return None
    best = min(medians, key=lambda b: medians[b]["p50_ms"])
    return medians[best], len(by_batch[best])


OTHER_MODELS = "rows of other models on this machine"


def family_share(model: str) -> float:
    """A swept model's share of its device class's efficiency on a GPU (GPU_FAMILY_EFFICIENCY), from the
    catalog; a Hub id or folder outside it counts as 1 (its family is not in the row)."""
    from rerank_bench.catalog import find_model
    from rerank_bench.willrun.latency_model import GPU_FAMILY_EFFICIENCY

    entry = find_model(model)
    family = "deberta" if entry is not None and entry.model_type in ("deberta-v2", "deberta") else ""
    return GPU_FAMILY_EFFICIENCY.get(family, 1.0)


def calibration_points(
    rows: list[ResultRow], info: ModelInfo, dtype: str, host_ms_per_token: float = 0.0
) -> tuple[list[tuple[float, float, float]], str]:
    """(padded GFLOP per query, batches per query, ms per query) from rows of this dtype; this model's if any.

    The time is the row's mean query (its whole passes over the request set), which goes with its mean padded
    GFLOP per query and stays stable with the few requests of a set at high depth; a set of 3 has a median
    that is just its middle request. The latency model then gives p50 and p95 from its length mix.

    On a GPU (`host_ms_per_token` > 0) the host's tokenization and input preparation is taken off each row
    first, at the class's rate per token: it grows with tokens, not with the model's work, so left in, a small
    model's rows (all host) would read as a device a tenth as efficient and a large model's predicted from
    them would come out several times too slow (seen on an H200: +190%). Each row's work is also counted at
    its family's share of the class efficiency (`family_share`: DeBERTa's third), so the fit is the class's
    efficiency and the model asked about gets its own family's share of it (`choose_rates`)."""

    def points(subset: list[ResultRow]) -> list[tuple[float, float, float]]:
        out = []
        for r in subset:
            gflop, eff = r.get("gflop_per_query"), r.get("padding_efficiency")
            ms = r.get("mean_ms") or r.get("p50_ms")
            depth, batch = r.get("depth"), r.get("batch_size")
            if gflop and eff and ms and depth and batch:
                host = host_ms_per_token * (r.get("pair_tokens_mean") or 0.0) * depth
                if host_ms_per_token > 0:
                    gflop /= family_share(str(r.get("model") or ""))
                # the model keeps at least a tenth of the row: a host rate above this machine's own must not
                # leave a row with no time for its work
                out.append((gflop / eff, math.ceil(depth / batch), max(ms - host, 0.1 * ms)))
        return out

    same_dtype = [r for r in rows if r.get("dtype") == dtype]
    own = points([r for r in same_dtype if r.get("model") in (info.name, info.model_id)])
    if len(own) >= 2:
        return own, f"{info.name}'s own rows"
    return points(same_dtype), OTHER_MODELS


def local_peaks(machine: MachineReport) -> dict[str, float]:
    """This CPU's matmul peaks (GFLOP/s) per dtype it can run, measured once and cached (peak.py)."""
    from rerank_bench.sweep.matmul_peak import cached_peak_gflops
    from rerank_bench.sweep.support import cpu_has_bf16

    threads = machine.cpu.usable_cores
    dtypes = ["fp32", "int8"] + (["bf16"] if cpu_has_bf16(frozenset(machine.cpu.isa_flags)) else [])
    peaks = {}
    for dtype in dtypes:
        value = cached_peak_gflops(machine.fingerprint, "cpu", threads, dtype)
        if value:
            peaks[dtype] = value
    return peaks


# How much a batch's time varies around its modelled cost (lognormal sigma), where no sidecar of this machine
# says: CPUs 0.09, the median of the within-request spread in this project's own in-process rows measured on a
# quiet 2-core EPYC (results/2026-12-01-infinity-minilm-l6-inprocess.samples.jsonl: 0.050-0.103 over three
# batch sizes); GPUs 0.05, a stated guess (a dedicated GPU's kernels vary less than a shared CPU's threads).
DEFAULT_SERVICE_SIGMA = {"cpu": 0.09, "nvidia": 0.05, "apple": 0.05, "amd": 0.05}
MIN_SPREAD_DF = 5  # repeats of one request a row needs before its spread counts


def request_spread(latencies_ms: list[float], set_size: int) -> tuple[float, int] | None:
    """The pooled standard deviation of log latency among repeats of the same request (a sweep times its set
    of `set_size` requests in whole passes, so query i is request i % set_size): the spread of one request's
    time with its shape held fixed. Returns (sigma, degrees of freedom), or None with too few repeats."""
    squares, df = 0.0, 0
    for i in range(set_size):
        logs = [math.log(v) for v in latencies_ms[i::set_size] if 0 < v < math.inf]
        if len(logs) > 1:
            mean = sum(logs) / len(logs)
            squares += sum((v - mean) ** 2 for v in logs)
            df += len(logs) - 1
    return (math.sqrt(squares / df), df) if df >= MIN_SPREAD_DF else None


def service_spread(results: tuple[Path, ...], fingerprint: str) -> tuple[float, str] | None:
    """This machine's batch-time spread from its sweep rows' raw samples: the median over rows of
    `request_spread`, for rows whose stop_reason names their set size ("... passes of N"); with where it came
    from. None where no row of this machine has enough repeats."""
    if not results:
        return None
    sigmas: list[float] = []
    files: list[str] = []
    for path in find_result_files(list(results)).files:
        try:
            samples = read_samples(samples_path_for(path))
            rows = [r for r in read_rows(path) if r.get("hardware_fingerprint") == fingerprint]
        except Exception:  # noqa: BLE001 - an unreadable file only means fewer measurements
            continue
        before = len(sigmas)
        for r in rows:
            match = re.search(r"of (\d+)\)", str(r.get("stop_reason") or ""))
            latencies = samples.get((str(r.get("run_id")), str(r.get("case_id"))))
            if r.get("status") == Status.OK and r.get("backend") == "torch" and match and latencies:
                spread = request_spread(latencies, int(match.group(1)))
                if spread:
                    sigmas.append(spread[0])
        if len(sigmas) > before:
            files.append(path.name)
    if not sigmas:
        return None
    sigma = statistics.median(sigmas)
    return sigma, f"batch times vary by sigma {sigma:.3f}, the median over {len(sigmas)} rows of {', '.join(files)}"


def _rows_of(rows: list[ResultRow], info: ModelInfo, dtype: str, depth: int) -> Iterator[ResultRow]:
    """This model's rows at this depth and dtype: the ones a batch size's price, and its uncertainty, come from."""
    return (
        r
        for r in rows
        if r.get("model") in (info.name, info.model_id) and r.get("depth") == depth and r.get("dtype") == dtype
    )


def batch_factors(
    rows: list[ResultRow], info: ModelInfo, dtype: str, depth: int, ms_per_gflop: float, overhead_ms: float
) -> dict[int, float]:
    """Per batch size, this model's measured time over what the fitted line (ms_per_gflop x padded GFLOP +
    overhead_ms x batches) gives for the same row: the fit's residual. The line can only make bigger batches
    cheaper per pair; a CPU whose caches favour batch 8 over 16 measures otherwise, and a simulation that
    prices each batch size by its own rows sees it (infinity at batch 32 measured slower here than at 8).
    Rows of this depth and dtype only; a batch size measured twice keeps the geometric mean."""
    found: dict[int, list[float]] = {}
    for r in _rows_of(rows, info, dtype, depth):
        gflop, eff, ms, batch = (
            r.get("gflop_per_query"),
            r.get("padding_efficiency"),
            r.get("p50_ms"),
            r.get("batch_size"),
        )
        if gflop and eff and ms and batch:
            fitted = gflop / eff * ms_per_gflop + math.ceil(depth / batch) * overhead_ms
            found.setdefault(int(batch), []).append(ms / fitted)
    return {b: math.exp(sum(map(math.log, v)) / len(v)) for b, v in found.items()}


def batch_uncertainties(rows: list[ResultRow], info: ModelInfo, dtype: str, depth: int) -> dict[int, float]:
    """Per batch size, how well its rows know its p50: the relative half-width of the p50's 95% interval (the
    rows' own, order statistics over their queries), over sqrt(k) for a batch size measured k times. A sweep of
    thirty queries knows each batch size's time to about +-5% (MiniLM-L6 at depth 50 here: 3.2-7.3%), and the
    per-batch-size prices (batch_factors) carry that into every plan: two infinity batch sizes whose predicted
    capacities differ by less than their prices' uncertainty are not told apart by these rows. A lower bound: the
    interval holds the queries' spread, not the host's drift between a sweep's cases (TinyBERT-L2's sweeps five
    minutes apart here put batch 16 at 18%, 8% and 1% over batch 8, each interval +-2-3%). Rows without an
    interval are left out."""
    found: dict[int, list[float]] = {}
    for r in _rows_of(rows, info, dtype, depth):
        ms, low, high, batch = r.get("p50_ms"), r.get("p50_ci_low_ms"), r.get("p50_ci_high_ms"), r.get("batch_size")
        if ms and low is not None and high is not None and batch:
            found.setdefault(int(batch), []).append((float(high) - float(low)) / 2.0 / float(ms))
    return {b: sum(v) / len(v) / math.sqrt(len(v)) for b, v in found.items()}


def batch_ratio_spreads(
    rows: list[ResultRow], info: ModelInfo, dtype: str, depth: int
) -> dict[tuple[int, int], tuple[float, int]]:
    """Per pair of batch sizes (a < b) that k >= 2 sweeps (run_id) each measured both of: how well those sweeps
    know the ratio of their p50s, as the 95% half-width of its log's mean (Student t x sd / sqrt(k)), and k.
    Unlike batch_uncertainties this holds the host's drift between a sweep's cases, which moves one batch size
    against another by more than either's interval (TinyBERT-L2's batch 16 over batch 8 here: 1.18, 1.08 and 1.01
    in three sweeps five minutes apart, +-21% together, each interval +-2-3%)."""
    sweeps: dict[str, dict[int, float]] = {}
    for r in _rows_of(rows, info, dtype, depth):
        ms, batch = r.get("p50_ms"), r.get("batch_size")
        if ms and batch:
            sweeps.setdefault(str(r.get("run_id") or ""), {})[int(batch)] = float(ms)
    sizes = sorted({b for times in sweeps.values() for b in times})
    out: dict[tuple[int, int], tuple[float, int]] = {}
    for i, a in enumerate(sizes):
        for b in sizes[i + 1 :]:
            logs = [math.log(t[a] / t[b]) for t in sweeps.values() if a in t and b in t]
            if len(logs) >= 2:
                half = T_975.get(len(logs), 1.96) * statistics.stdev(logs) / math.sqrt(len(logs))
                out[(a, b)] = (math.expm1(half), len(logs))
    return out


def nearest_batch(sizes: list[int], n: int) -> int:
    """The measured batch size nearest to n pairs on a log scale."""
    return min(sizes, key=lambda b: abs(math.log(b / max(n, 1))))


def by_nearest_batch(factors: dict[int, float]) -> Callable[[int], float]:
    """A batch of n pairs takes the factor of the measured batch size nearest to n on a log scale."""
    sizes = sorted(factors)

    def factor(n: int) -> float:
        return factors[nearest_batch(sizes, n)]

    return factor
