"""Statistics over raw latency samples. Pure functions: no I/O, no clocks, no numpy.

Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, numpy's default), so
figures agree with what a user recomputes from the raw samples in the sidecar file.

The p50 confidence interval is distribution-free: order statistics whose ranks come from the binomial
distribution (Conover, Practical Nonparametric Statistics, 3rd ed., section 3.2). Latencies are skewed
and heavy-tailed, so a normal-theory interval on the median would be wrong exactly when it matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean, stdev
from typing import Any

PERCENTILES = (50, 90, 95, 99)
# A percentile is reported only when at least this many samples lie at or above it; otherwise p99 would be
# read off two or three queries. With 2: p90 needs 20 samples, p95 40, p99 200 (the median: 3).
MIN_TAIL_SAMPLES = 2


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, linear interpolation (type 7)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


MIN_MEDIAN_SAMPLES = 3  # the middle of three is a median; its confidence interval still needs six


def min_samples_for(q: float, tail: int = MIN_TAIL_SAMPLES) -> int:
    """Fewest samples for which the q-th percentile is reported."""
    if q >= 100:
        raise ValueError("the maximum is not a percentile estimate")
    if q == 50:
        return MIN_MEDIAN_SAMPLES
    return math.ceil(round(tail / (1 - q / 100.0), 9))


def _binom_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2)."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) for i in range(0, min(k, n) + 1)) / 2.0**n


def _z_two_sided(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int, float] | None:
    """1-based ranks (lo, hi) so that [x_(lo), x_(hi)] covers the median with at least `confidence`.

    Returns (lo, hi, exact coverage), the narrowest symmetric such pair, or None when n is too small for any
    pair to reach the confidence (n < 6 at 95%).
    """
    if n >= 200:
        # Normal approximation to the binomial (Conover 3.2); the exact sum below is O(n^2) in big integers.
        z = _z_two_sided(confidence)
        lo = max(1, math.floor(n / 2.0 - z * math.sqrt(n) / 2.0))
        return lo, n - lo + 1, confidence
    best = None
    for lo in range(1, n // 2 + 1):
        # coverage of [x_(lo), x_(n-lo+1)] = 1 - 2 * P(X <= lo - 1)
        coverage = 1.0 - 2.0 * _binom_cdf(lo - 1, n)
        if coverage >= confidence - 1e-12:
            best = (lo, n - lo + 1, coverage)
        else:
            break
    return best


def median_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    ranks = median_ci_ranks(len(values), confidence)
    if ranks is None:
        return None
    ordered = sorted(values)
    return ordered[ranks[0] - 1], ordered[ranks[1] - 1]


def p50_relative_halfwidth(values: list[float], confidence: float = 0.95) -> float | None:
    """Half the width of the median's confidence interval, relative to the median; None if not yet known."""
    ci = median_ci(values, confidence)
    if ci is None:
        return None
    med = percentile(values, 50)
    if med <= 0:
        return None
    return (ci[1] - ci[0]) / 2.0 / med


@dataclass(frozen=True)
class LatencySummary:
    """Summary of per-query latencies, in milliseconds. Percentiles with too few samples are None."""

    n: int
    mean_ms: float
    stdev_ms: float | None
    min_ms: float
    max_ms: float
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p50_ci_low_ms: float | None
    p50_ci_high_ms: float | None
    missing_percentiles: tuple[str, ...]  # e.g. ("p95 needs 40 queries", ...)


def summarize_latencies(latencies_ms: list[float]) -> LatencySummary:
    if not latencies_ms:
        raise ValueError("no latency samples to summarise")
    n = len(latencies_ms)
    values: dict[int, float | None] = {}
    missing: list[str] = []
    for q in PERCENTILES:
        need = min_samples_for(q)
        if n >= need:
            values[q] = percentile(latencies_ms, q)
        else:
            values[q] = None
            missing.append(f"p{q} needs {need} queries")
    ci = median_ci(latencies_ms)
    return LatencySummary(
        n=n,
        mean_ms=fmean(latencies_ms),
        stdev_ms=stdev(latencies_ms) if n >= 2 else None,
        min_ms=min(latencies_ms),
        max_ms=max(latencies_ms),
        p50_ms=values[50],
        p90_ms=values[90],
        p95_ms=values[95],
        p99_ms=values[99],
        p50_ci_low_ms=ci[0] if ci else None,
        p50_ci_high_ms=ci[1] if ci else None,
        missing_percentiles=tuple(missing),
    )


def distribution(values: list[int] | list[float]) -> dict[str, float]:
    """mean, p50 and p95 of a list of counts (token lengths)."""
    as_float = [float(v) for v in values]
    return {"mean": fmean(as_float), "p50": percentile(as_float, 50), "p95": percentile(as_float, 95)}


# --- comparing two sets of runs -------------------------------------------------------------------------


@dataclass(frozen=True)
class RatioEstimate:
    """current / baseline for one statistic, with a bootstrap percentile interval."""

    ratio: float
    low: float
    high: float
    confidence: float


def _statistic(name: str) -> Any:
    import numpy as np

    if name == "mean":
        return lambda a: a.mean(axis=-1)
    if name == "median":
        return lambda a: np.median(a, axis=-1)
    if name == "p95":
        return lambda a: np.percentile(a, 95, axis=-1)
    raise ValueError(f"unknown statistic {name!r}")


def bootstrap_ratio(
    baseline: list[list[float]],
    current: list[list[float]],
    statistic: str = "median",
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RatioEstimate:
    """Ratio statistic(current) / statistic(baseline) with a two-level bootstrap interval.

    Each side is a list of runs (one list of per-query latencies per process). A resample draws runs with
    replacement, then queries with replacement within each drawn run, and pools them (Davison & Hinkley,
    Bootstrap Methods, 1997, section 3.8). With one run per side this is the ordinary bootstrap; with
    several, the interval also carries the run-to-run (process, machine state) noise that single runs hide.
    """
    import numpy as np

    if not baseline or not current or not all(baseline) or not all(current):
        raise ValueError("bootstrap needs at least one non-empty run on each side")
    stat = _statistic(statistic)
    rng = np.random.default_rng(seed)

    def resample(runs: list[list[float]]) -> Any:
        arrays = [np.asarray(r, dtype=float) for r in runs]
        size = min(sum(len(a) for a in arrays), 4000)  # pooled draws per resample
        chosen = rng.integers(0, len(arrays), size=(resamples, len(arrays)))
        out = np.empty(resamples)
        per_run = max(1, size // len(arrays))
        for b in range(resamples):
            parts = [arrays[i][rng.integers(0, len(arrays[i]), per_run)] for i in chosen[b]]
            out[b] = stat(np.concatenate(parts))
        return out

    base = resample(baseline)
    cur = resample(current)
    ratios = cur / base
    alpha = (1 - confidence) / 2
    point = float(stat(np.concatenate([np.asarray(r, float) for r in current]))) / float(
        stat(np.concatenate([np.asarray(r, float) for r in baseline]))
    )
    return RatioEstimate(
        ratio=point,
        low=float(np.quantile(ratios, alpha)),
        high=float(np.quantile(ratios, 1 - alpha)),
        confidence=confidence,
    )


def verdict(estimate: RatioEstimate, threshold: float, higher_is_worse: bool = True) -> str:
    """Decide one metric. `threshold` is the tolerated relative change (0.05 for 5%).

    regressed: the ratio is worse than the threshold AND the interval excludes no change;
    improved: the mirror image; unchanged: the interval rules out a change beyond the threshold;
    inconclusive: otherwise (the interval is too wide to decide at this threshold).
    """
    r, lo, hi = estimate.ratio, estimate.low, estimate.high
    if not higher_is_worse:  # express as "higher is worse" by inverting the ratio
        r, lo, hi = 1 / r, 1 / hi, 1 / lo
    worse, better = 1 + threshold, 1 / (1 + threshold)
    if r > worse and lo > 1:
        return "regressed"
    if r < better and hi < 1:
        return "improved"
    if hi <= worse and lo >= better:
        return "unchanged"
    if hi <= worse and hi < 1:  # better, but not beyond the threshold for sure: no regression possible
        return "unchanged"
    return "inconclusive"


def paired_ratio(
    runs: list[list[tuple[float, float]]],
    statistic: str = "mean",
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RatioEstimate:
    """statistic(current) / statistic(baseline) over matched (baseline, current) latency pairs, with a
    two-level bootstrap that keeps pairs together: runs with replacement, then pairs within each run.

    Pairs are queries of the same request measured back to back, so request-to-request variation and slow
    drift of the machine move both members of a pair and cancel in the ratio instead of widening it.
    """
    import numpy as np

    if not runs or not all(runs):
        raise ValueError("paired_ratio needs at least one non-empty run")
    stat = _statistic(statistic)
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(run, dtype=float) for run in runs]
    pooled = np.concatenate(arrays)
    point = float(stat(pooled[:, 1])) / float(stat(pooled[:, 0]))
    ratios = np.empty(resamples)
    for b in range(resamples):
        chosen = np.concatenate(
            [
                arrays[i][rng.integers(0, len(arrays[i]), len(arrays[i]))]
                for i in rng.integers(0, len(arrays), len(arrays))
            ]
        )
        ratios[b] = float(stat(chosen[:, 1])) / float(stat(chosen[:, 0]))
    alpha = (1 - confidence) / 2
    return RatioEstimate(point, float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha)), confidence)
