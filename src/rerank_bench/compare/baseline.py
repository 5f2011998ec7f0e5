"""`compare` and `ab`: is the current run slower or hungrier than the baseline, beyond noise?

Like asv's compare, a change counts only when the ratio passes the threshold AND the confidence interval
agrees; like pytest-benchmark's check_regressions, every regression is collected and reported before the
command fails once. The statistics live in stats.py (bootstrap_ratio, verdict); this module matches cases
and applies them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from rerank_bench.common.case_key import KEY_FIELDS
from rerank_bench.common.stats import min_samples_for, percentile
from rerank_bench.common.thresholds import BUSY_PCT, MAX_ERROR_FRACTION
from rerank_bench.common.vocab import Status
from rerank_bench.compare.bootstrap import RatioEstimate, bootstrap_ratio, paired_ratio, verdict
from rerank_bench.errors import ResultFileError, UsageError
from rerank_bench.results.schema import ResultRow
from rerank_bench.results.store import find_result_files, read_rows, read_samples, samples_path_for

# A case's key, less the path it was loaded from: the same model measured from another folder or cache
# snapshot on the other machine is still the same case.
MATCH_FIELDS = tuple(f for f in KEY_FIELDS if f != "model_id")
REQUIRED_COLUMNS = (
    "schema_version",
    "run_id",
    "case_id",
    "utc_time",
    "hardware_fingerprint",
    "status",
    "pairs_per_s",
    "p50_ms",
    "p95_ms",
    "peak_rss_mib",
    *MATCH_FIELDS,
)
METRICS = ("throughput", "p50", "p95", "memory", "ndcg", "errors", "goodput", "capacity")
# ndcg is an absolute nDCG@10 difference: --threshold ndcg=0.5% allows a drop of 0.005; errors likewise an absolute
# difference in the share of failed requests (served levels): errors=1% allows one more failure in a hundred.
DEFAULT_THRESHOLDS = {
    "throughput": 0.05,
    "p50": 0.05,
    "p95": 0.05,
    "memory": 0.10,
    "ndcg": 0.005,
    "errors": MAX_ERROR_FRACTION,  # the share of failures that fails an SLO on its own
    "goodput": 0.05,
    "capacity": 0.10,  # a capacity search's own bracket is 10% wide
}


@dataclass
class CaseRuns:
    """One case on one side: its row(s) and the raw latencies of each run (one list per process)."""

    key: tuple[Any, ...]
    rows: list[ResultRow]
    runs: list[list[float]]
    where: str  # file:row, for messages

    @property
    def row(self) -> ResultRow:
        return self.rows[-1]

    def memory_mib(self) -> float | None:
        values = []
        for row in self.rows:
            value = row.get("peak_vram_reserved_mib") or row.get("peak_rss_mib")
            if value:
                values.append(value)
        return max(values) if values else None


@dataclass
class ResultSet:
    cases: dict[tuple[Any, ...], CaseRuns]
    fingerprints: set[str]
    hardware: set[str]
    files: list[Path]
    notes: list[str] = field(default_factory=list)


def load_result_set(paths: list[Path], ignore: tuple[Any, ...] = ()) -> ResultSet:
    """Every ok row of the given files or folders, keyed by configuration, with its raw samples."""
    fields = tuple(f for f in MATCH_FIELDS if f not in ignore)
    cases: dict[tuple[Any, ...], CaseRuns] = {}
    seen_in_run: dict[tuple[str, tuple[Any, ...]], str] = {}
    fingerprints: set[str] = set()
    hardware: set[str] = set()
    notes: list[str] = []
    found = find_result_files(paths)
    files = found.files
    if note := found.note():
        notes.append(note)
    for path in files:
        rows = read_rows(path)
        if rows:
            missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
            if missing:
                raise ResultFileError(f"{path}: missing column(s) {', '.join(missing)}")
        samples = read_samples(samples_path_for(path))
        for number, row in enumerate(rows, start=2):
            where = f"{path}:{number}"
            if row["status"] != Status.OK:
                continue
            summary_row = row.get("load_mode") == "capacity"  # a capacity search's answer: no samples of its own
            # a served level's p50 may be empty: it fell on failed requests
            needed = () if summary_row else ("pairs_per_s",) if row.get("load_mode") else ("pairs_per_s", "p50_ms")
            for column in needed:
                if row[column] is None:
                    raise ResultFileError(f"{where}: column {column} is empty in a row whose status is ok")
            key = tuple(row[f] for f in fields)
            run_key = (row["run_id"], key)
            # A served level may run twice in one run: a capacity search confirms a rate its search passed with a
            # level three times as long. The later level is kept (read_samples keeps the later one's samples too).
            repeated = run_key in seen_in_run
            if repeated and row.get("load_mode") not in ("open", "closed"):
                raise ResultFileError(
                    f"{where}: duplicate case in run {row['run_id']} (also at {seen_in_run[run_key]})",
                    "a run measures each case once; split the file or remove one row",
                )
            if repeated:
                notes.append(
                    f"{where}: this level ran earlier in run {row['run_id']} too (at {seen_in_run[run_key]}: a "
                    "capacity search's confirmation repeats a rate it passed); using this later one"
                )
            seen_in_run[run_key] = where
            latencies = samples.get((row["run_id"], row["case_id"]))
            if summary_row:
                latencies = [math.nan]  # nothing to resample: compared on its bracket
            elif not latencies:
                raise ResultFileError(
                    f"{where}: no raw samples for case {row['case_id']} in {samples_path_for(path).name}",
                    "compare needs the sidecar file that sweep writes next to the CSV",
                )
            fingerprints.add(row["hardware_fingerprint"])
            hardware.add(row.get("hardware_name", ""))
            previous = cases.get(key)
            if previous is not None and previous.row["utc_time"] > row["utc_time"]:
                continue
            if previous is not None and not repeated:
                notes.append(f"{where}: a later run of a case also at {previous.where}; using the later one")
            cases[key] = CaseRuns(key=key, rows=[row], runs=[latencies], where=where)
    return ResultSet(cases=cases, fingerprints=fingerprints, hardware=hardware, files=files, notes=notes)


@dataclass
class MetricResult:
    metric: str
    baseline: float | None
    current: float | None
    ratio: float | None  # current / baseline of the metric as displayed (pairs/s for throughput)
    low: float | None
    high: float | None
    threshold: float
    verdict: str  # regressed, improved, unchanged, inconclusive, or n/a
    note: str = ""


def _estimated(
    metric: str, base: float | None, cur: float | None, shown: RatioEstimate, threshold: float, judged: str, note: str
) -> MetricResult:
    """A metric judged on a ratio estimate: its values, the ratio as shown with its interval, the verdict."""
    return MetricResult(metric, base, cur, shown.ratio, shown.low, shown.high, threshold, judged, note)


@dataclass
class CaseComparison:
    label: str
    key: ResultRow
    metrics: list[MetricResult]
    verdict: str
    noise: float | None = None  # A/A noise floor (relative half-width), ab only


def parse_thresholds(default: str, overrides: list[str]) -> dict[str, float]:
    def pct(text: str, what: str) -> float:
        raw = text.strip().removesuffix("%")
        try:
            value = float(raw) / 100.0
        except ValueError:
            raise UsageError(f"{what} {text!r} is not a percentage", "for example 5% or 7.5") from None
        if not 0 < value < 10:
            raise UsageError(f"{what} {text!r} must be above 0%")
        return value

    thresholds = dict(DEFAULT_THRESHOLDS)
    base = pct(default, "--max-regression")
    for name in ("throughput", "p50", "p95"):
        thresholds[name] = base
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in METRICS:
            raise UsageError(f"--threshold {item!r} is not METRIC=PCT", f"metrics: {', '.join(METRICS)}")
        thresholds[name.strip()] = pct(value, f"--threshold {name.strip()}")
    return thresholds


def _invert(estimate: RatioEstimate) -> RatioEstimate:
    return RatioEstimate(1 / estimate.ratio, 1 / estimate.high, 1 / estimate.low, estimate.confidence)


def compare_case(
    label: str,
    key: ResultRow,
    baseline: CaseRuns,
    current: CaseRuns,
    thresholds: dict[str, float],
    seed: int = 0,
    pairs: list[list[tuple[float, float]]] | None = None,
) -> CaseComparison:
    """Judge one case. With `pairs` (ab: baseline and current latency of the same request, back to back,
    one list per run), timing ratios come from the paired bootstrap; otherwise from the two samples."""
    if baseline.row.get("backend") == "endpoint":
        return _compare_served(label, key, baseline, current, thresholds, seed)
    note = "paired: same request, back to back" if pairs is not None else ""

    def estimate(statistic: str) -> RatioEstimate:
        if pairs is not None:
            return paired_ratio(pairs, statistic, seed=seed)
        return bootstrap_ratio(baseline.runs, current.runs, statistic, seed=seed)

    metrics: list[MetricResult] = []
    # Values are computed from the pooled raw samples of all runs, so they agree with the ratios beside them.
    base_pool = [v for run in baseline.runs for v in run]
    cur_pool = [v for run in current.runs for v in run]
    # throughput = depth / mean latency, so its ratio is the inverse of the mean-latency ratio
    mean = estimate("mean")
    shown = _invert(mean)
    base_tp = float(baseline.row["depth"]) * 1000.0 / fmean(base_pool)
    cur_tp = float(current.row["depth"]) * 1000.0 / fmean(cur_pool)
    metrics.append(
        _estimated(
            "throughput",
            base_tp,
            cur_tp,
            shown,
            thresholds["throughput"],
            verdict(mean, thresholds["throughput"]),
            note,
        )
    )
    metrics += _percentile_metrics(base_pool, cur_pool, estimate, thresholds, note, "queries")
    base_mem, cur_mem = baseline.memory_mib(), current.memory_mib()
    if base_mem and cur_mem:
        ratio = cur_mem / base_mem
        tolerance = thresholds["memory"]
        mem_verdict = (
            "regressed" if ratio > 1 + tolerance else "improved" if ratio < 1 / (1 + tolerance) else "unchanged"
        )
        metrics.append(
            MetricResult(
                "memory",
                base_mem,
                cur_mem,
                ratio,
                None,
                None,
                tolerance,
                mem_verdict,
                "plain tolerance: peak memory is nearly deterministic",
            )
        )
    quality = _quality(baseline.row, current.row, thresholds["ndcg"])
    if quality is not None:
        metrics.append(quality)
    return CaseComparison(label=label, key=key, metrics=metrics, verdict=overall_verdict([m.verdict for m in metrics]))


BLOCK_NOTE = "moving-block bootstrap over the level's requests"
Estimator = Callable[[str], RatioEstimate]


def _compare_served(
    label: str, key: ResultRow, baseline: CaseRuns, current: CaseRuns, thresholds: dict[str, float], seed: int
) -> CaseComparison:
    """A served level (or a capacity search) against its baseline. Throughput is the achieved pairs/s (at a fixed
    open-loop rate a slower server does not serve fewer requests, it queues them: latency shows that), failures
    count in latency and on their own, and intervals come from a moving-block bootstrap over each level's
    requests in scheduled order (queueing makes neighbours alike)."""
    if baseline.row.get("load_mode") == "capacity":
        metric = _capacity(baseline.row, current.row, thresholds["capacity"])
        return CaseComparison(label=label, key=key, metrics=[metric], verdict=metric.verdict)

    def estimate(statistic: str) -> RatioEstimate:
        return bootstrap_ratio(baseline.runs, current.runs, statistic, seed=seed, blocks=True)

    ok = estimate("share_ok")
    base_pool = [v for run in baseline.runs for v in run]
    cur_pool = [v for run in current.runs for v in run]
    failures = BLOCK_NOTE + "; failed requests count as slower than any reply"
    metrics = [
        _served_throughput(baseline, current, ok, thresholds["throughput"], seed),
        *_percentile_metrics(base_pool, cur_pool, estimate, thresholds, failures, "requests"),
        _served_errors(base_pool, cur_pool, ok, thresholds["errors"]),
    ]
    goodput = _served_goodput(baseline.row, current.row, estimate, thresholds["goodput"])
    if goodput is not None:
        metrics.append(goodput)
    return CaseComparison(label=label, key=key, metrics=metrics, verdict=overall_verdict([m.verdict for m in metrics]))


def _served_throughput(
    baseline: CaseRuns, current: CaseRuns, ok: RatioEstimate, threshold: float, seed: int
) -> MetricResult:
    base_tp, cur_tp = baseline.row.get("pairs_per_s") or 0.0, current.row.get("pairs_per_s") or 0.0
    if baseline.row.get("load_mode") == "open":
        # the schedule fixes the rate offered: what can change is the share served
        ratio = cur_tp / base_tp if base_tp else math.inf
        scale = ratio / ok.ratio if ok.ratio else 1.0
        shown = RatioEstimate(ratio, ok.low * scale, ok.high * scale, ok.confidence)
        served_none = ratio == 0 or shown.low <= 0
        tp_verdict = "regressed" if served_none else verdict(shown, threshold, higher_is_worse=False)
    else:
        # closed loop: a fixed number of clients, so throughput is their count over the mean reply time
        mean = bootstrap_ratio(
            [[v for v in r if math.isfinite(v)] or [math.nan] for r in baseline.runs],
            [[v for v in r if math.isfinite(v)] or [math.nan] for r in current.runs],
            "mean",
            seed=seed,
            blocks=True,
        )
        shown, tp_verdict = _invert(mean), verdict(mean, threshold)
    return _estimated("throughput", base_tp, cur_tp, shown, threshold, tp_verdict, BLOCK_NOTE)


def _served_errors(base_pool: list[float], cur_pool: list[float], ok: RatioEstimate, tolerance: float) -> MetricResult:
    """The share of failed requests, by absolute difference; the direction must also show in the bootstrap."""
    base_err, cur_err = 1.0 - _share_ok(base_pool), 1.0 - _share_ok(cur_pool)
    if cur_err - base_err > tolerance and ok.high < 1.0:
        err_verdict = "regressed"
    elif base_err - cur_err > tolerance and ok.low > 1.0:
        err_verdict = "improved"
    elif abs(cur_err - base_err) <= tolerance:
        err_verdict = "unchanged"
    else:
        err_verdict = "inconclusive"
    note = f"share of requests failed; absolute difference {cur_err - base_err:+.4f} against {tolerance:g}"
    return MetricResult("errors", base_err, cur_err, None, None, None, tolerance, err_verdict, note)


def _served_goodput(
    base_row: ResultRow, cur_row: ResultRow, estimate: Estimator, threshold: float
) -> MetricResult | None:
    """Replies within the SLO per second, where both sides were measured against the same SLO."""
    slo = base_row.get("slo_ms")
    if slo is None or cur_row.get("slo_ms") != slo or base_row.get("goodput_rps") is None:
        return None
    within = estimate(f"within:{slo}")
    ratio_of_rows = (cur_row.get("goodput_rps") or 0.0) / (base_row["goodput_rps"] or math.inf)
    scale = ratio_of_rows / within.ratio if within.ratio else 1.0
    shown = RatioEstimate(within.ratio * scale, within.low * scale, within.high * scale, within.confidence)
    return MetricResult(
        "goodput",
        base_row["goodput_rps"],
        cur_row.get("goodput_rps"),
        shown.ratio,
        shown.low,
        shown.high,
        threshold,
        verdict(shown, threshold, higher_is_worse=False) if shown.low > 0 else "regressed",
        f"replies within {slo:g} ms per second; " + BLOCK_NOTE,
    )


def _percentile_metrics(
    base_pool: list[float],
    cur_pool: list[float],
    estimate: Callable[[str], RatioEstimate],
    thresholds: dict[str, float],
    note: str,
    noun: str,
) -> list[MetricResult]:
    """p50 and p95, each judged on its ratio estimate, or n/a where a side has fewer samples than it needs."""
    out = []
    for metric, statistic, q in (("p50", "median", 50), ("p95", "p95", 95)):
        need = min_samples_for(q)
        if min(len(base_pool), len(cur_pool)) < need:
            why = f"needs {need} {noun} a side, has {len(base_pool)} and {len(cur_pool)}"
            out.append(MetricResult(metric, None, None, None, None, None, thresholds[metric], "n/a", why))
            continue
        ratio = estimate(statistic)
        judged = verdict(ratio, thresholds[metric])
        base, cur = percentile(base_pool, q), percentile(cur_pool, q)
        out.append(_estimated(metric, base, cur, ratio, thresholds[metric], judged, note))
    return out


def _share_ok(values: list[float]) -> float:
    return sum(1 for v in values if math.isfinite(v)) / len(values) if values else 0.0


def _capacity(base: ResultRow, cur: ResultRow, tolerance: float) -> MetricResult:
    """Two capacity searches: each answer is known within its bracket [capacity, lowest rate not passing]. A
    regression is a current bracket wholly below the baseline's capacity by more than the tolerance."""
    b_low, c_low = base.get("capacity_rps"), cur.get("capacity_rps")
    if not b_low or not c_low:
        return MetricResult(
            "capacity", b_low, c_low, None, None, None, tolerance, "inconclusive", "a search found none"
        )
    b_high = base.get("capacity_fail_rps") or b_low
    c_high = cur.get("capacity_fail_rps") or c_low
    ratio, low, high = c_low / b_low, c_low / b_high, c_high / b_low
    if high < 1 / (1 + tolerance):
        result = "regressed"
    elif low > 1 + tolerance:
        result = "improved"
    elif low >= 1 / (1 + tolerance) and high <= 1 + tolerance:
        result = "unchanged"
    else:
        result = "inconclusive"
    return MetricResult(
        "capacity", b_low, c_low, ratio, low, high, tolerance, result, "from the two searches' brackets"
    )


def _quality(base: ResultRow, cur: ResultRow, tolerance: float) -> MetricResult | None:
    """nDCG@10 where both rows were scored on labelled requests: a quality regression is a regression. Scores
    of the same requests by the same configuration are deterministic, so a plain absolute tolerance."""
    before, after = base.get("ndcg_at_10"), cur.get("ndcg_at_10")
    if before is None or after is None:
        return None
    diff = after - before
    verdict = "regressed" if diff < -tolerance else "improved" if diff > tolerance else "unchanged"
    note = f"absolute difference {diff:+.4f} against a tolerance of {tolerance:g}"
    if base.get("quality_requests") != cur.get("quality_requests"):
        note += f" (scored on {base.get('quality_requests')} and {cur.get('quality_requests')} requests)"
    ratio = after / before if before else None
    return MetricResult("ndcg@10", before, after, ratio, None, None, tolerance, verdict, note)


def overall_verdict(verdicts: list[str]) -> str:
    for candidate in ("regressed", "inconclusive", "improved"):
        if candidate in verdicts:
            return candidate
    return "unchanged"


@dataclass
class Comparison:
    cases: list[CaseComparison]
    only_in_baseline: list[str]
    only_in_current: list[str]
    notes: list[str]
    thresholds: dict[str, float]

    @property
    def counts(self) -> dict[str, int]:
        out = {v: 0 for v in ("regressed", "improved", "unchanged", "inconclusive")}
        for case in self.cases:
            out[case.verdict] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "thresholds": self.thresholds,
            "cases": [
                {
                    "label": c.label,
                    "key": c.key,
                    "verdict": c.verdict,
                    "noise": c.noise,
                    "metrics": [m.__dict__ for m in c.metrics],
                }
                for c in self.cases
            ],
            "only_in_baseline": self.only_in_baseline,
            "only_in_current": self.only_in_current,
            "notes": self.notes,
        }


def case_label(key: ResultRow) -> str:
    if key.get("backend") == "endpoint":  # a served endpoint's load level
        mode = key.get("load_mode")
        if mode == "closed":
            load = f"closed x{key.get('concurrency')}"
        elif mode == "capacity":
            load = "capacity"
        else:
            load = f"open {key.get('offered_rps'):.3g}/s" if key.get("offered_rps") else "open"
        return f"{key.get('model', '?')} @ {key.get('endpoint', '?')} depth {key.get('depth', '?')} {load}"
    return (
        f"{key.get('model', '?')} {key.get('backend', '')}/{key.get('dtype', '')} {key.get('device', '')} "
        f"batch {key.get('batch_size', '?')} depth {key.get('depth', '?')}"
    )


# Two runs whose measured matmul peaks (each row's speed check, cached per host) differ by more than this ran on
# machines of different speed, whatever their fingerprints say: hosts of one VM type were seen here at 387 and
# 190 GFLOP/s fp32. The probe takes the best of several sustained runs, so the same host repeats within a few %.
SPEED_TOLERANCE = 0.25


def speed_check_mismatch(base: ResultSet, cur: ResultSet) -> str | None:
    """The first dtype whose peak differs between the two sides beyond SPEED_TOLERANCE, said with both figures."""

    def peaks(side: ResultSet) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for case in side.cases.values():
            value = case.row.get("peak_gflop_per_s")
            if value:
                out.setdefault((str(case.row.get("dtype")), str(case.row.get("threads"))), value)
        return out

    before, after = peaks(base), peaks(cur)
    for key in sorted(set(before) & set(after)):
        ratio = after[key] / before[key]
        if not 1 / (1 + SPEED_TOLERANCE) <= ratio <= 1 + SPEED_TOLERANCE:
            dtype, threads = key
            return (
                f"the {dtype} matmul speed check at {threads} threads reads {before[key]:,.0f} GFLOP/s in the "
                f"baseline and {after[key]:,.0f} in the current run (more than {SPEED_TOLERANCE:.0%} apart)"
            )
    return None


def compare_files(
    baseline: list[Path],
    current: list[Path],
    thresholds: dict[str, float],
    ignore: tuple[Any, ...] = (),
    allow_different_hardware: bool = False,
) -> Comparison:
    unknown = [f for f in ignore if f not in MATCH_FIELDS]
    if unknown:
        raise UsageError(f"--ignore {', '.join(unknown)}: not a key field", f"key fields: {', '.join(MATCH_FIELDS)}")
    base = load_result_set(baseline, ignore)
    cur = load_result_set(current, ignore)
    if not base.cases:
        raise ResultFileError(f"{', '.join(map(str, baseline))}: no measured (status ok) cases")
    if not cur.cases:
        raise ResultFileError(f"{', '.join(map(str, current))}: no measured (status ok) cases")
    notes = base.notes + cur.notes
    if base.fingerprints != cur.fingerprints:
        message = (
            f"baseline ran on {', '.join(sorted(base.hardware))} ({', '.join(sorted(base.fingerprints))}), current on "
            f"{', '.join(sorted(cur.hardware))} ({', '.join(sorted(cur.fingerprints))})"
        )
        if not allow_different_hardware:
            raise UsageError(
                f"different hardware: {message}",
                "compare runs from the same machine, or pass --allow-different-hardware",
            )
        notes.insert(0, f"DIFFERENT HARDWARE: {message}; differences may be the machine, not the change")
    speed = speed_check_mismatch(base, cur)
    if speed is not None:
        if not allow_different_hardware:
            raise UsageError(
                f"different machines under one fingerprint: {speed}",
                "compare runs from the same host, or pass --allow-different-hardware",
            )
        notes.insert(0, f"DIFFERENT SPEED: {speed}; differences may be the machine, not the change")
    fields = [f for f in MATCH_FIELDS if f not in ignore]
    cases = []
    for key, base_case in base.cases.items():
        cur_case = cur.cases.get(key)
        if cur_case is None:
            continue
        key_dict = dict(zip(fields, key, strict=False))
        cases.append(compare_case(case_label(key_dict), key_dict, base_case, cur_case, thresholds))
        loads = [side.row.get("background_cpu_pct") for side in (base_case, cur_case)]
        if any((load or 0.0) > BUSY_PCT for load in loads):
            shown = ", ".join("-" if v is None else f"{v:.0f}%" for v in loads)
            notes.append(
                f"BUSY MACHINE: {case_label(key_dict)} ran beside other work (background CPU baseline, current: "
                f"{shown}); a change there may be the machine's load, not the code"
            )
    only_base = [case_label(dict(zip(fields, k, strict=False))) for k in base.cases if k not in cur.cases]
    only_cur = [case_label(dict(zip(fields, k, strict=False))) for k in cur.cases if k not in base.cases]
    if not cases:
        raise UsageError(
            "no case of the baseline matches a case of the current run",
            f"unmatched: {len(only_base)} baseline, {len(only_cur)} current; "
            "--ignore FIELD drops a field from the match",
        )
    return Comparison(
        cases=cases, only_in_baseline=only_base, only_in_current=only_cur, notes=notes, thresholds=thresholds
    )


def github_benchmark_entries(comparison: Comparison) -> list[dict[str, Any]]:
    """github-action-benchmark's `customSmallerIsBetter` format: one entry per case and metric.

    Throughput is given as ms per pair so that one file (smaller is better) holds every metric.
    """
    out = []
    for case in comparison.cases:
        for m in case.metrics:
            if m.current is None:
                continue
            if m.metric == "throughput":
                out.append(
                    {
                        "name": f"{case.label} ms/pair",
                        "unit": "ms",
                        "value": round(1000.0 / m.current, 4),
                        "extra": f"{m.current:.1f} pairs/s; verdict {m.verdict}",
                    }
                )
            elif m.metric == "ndcg@10":  # smaller is better: the nDCG@10 missing to a perfect ranking
                out.append(
                    {
                        "name": f"{case.label} 1-nDCG@10",
                        "unit": "",
                        "value": round(1.0 - m.current, 5),
                        "extra": f"nDCG@10 {m.current:.4f}; verdict {m.verdict}",
                    }
                )
            else:
                unit = "MiB" if m.metric == "memory" else "ms"
                out.append(
                    {
                        "name": f"{case.label} {m.metric}",
                        "unit": unit,
                        "value": round(m.current, 3),
                        "extra": f"verdict {m.verdict}",
                    }
                )
    return out
