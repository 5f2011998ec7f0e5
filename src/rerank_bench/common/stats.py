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
