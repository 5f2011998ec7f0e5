"""Statistics over raw latency samples. Pure functions: no I/O, no clocks, no numpy.

Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, numpy's default), so
figures agree with what a user recomputes from the raw samples in the sidecar file.

Every percentile's confidence interval is distribution-free: order statistics whose ranks come from the
binomial distribution (Conover, Practical Nonparametric Statistics, 3rd ed., section 3.2). Latencies are
skewed and heavy-tailed, so a normal-theory interval would be wrong exactly when it matters. A percentile is
reported only from as many samples as its upper bound needs (p95: 59, p99: 299 at 95%).

Those intervals assume independent samples. A served level's latencies are not: a slow batch delays every
request queued behind it, and a server's slow second slows ten requests in a row, so ten requests over the
p95 may be one event. For samples in the order they were taken (`in_order`), each interval is widened to hold
the batch-means one too (`batch_means_interval`): the percentile of each of ten consecutive blocks, a t
interval over them, widened for the blocks' own lag-1 correlation.

An SLO is tested on the count of requests over it, not on a percentile estimate (`clopper_pearson`): the
MLPerf LoadGen early-stopping idea, so noise cannot decide a pass. Where those requests came in clusters, the
count is taken at its effective size (Korn & Graubard 1998: the count and the trials divided by the design
effect, which leaves them fractional; the bounds then come from the regularized incomplete beta function).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import fmean, stdev

PERCENTILES = (50, 90, 95, 99)
CONFIDENCE = 0.95


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, linear interpolation (type 7).

    A failed request counts as slower than any reply (math.inf): a percentile that falls on or between failures
    is inf, never a mixture of a time and a failure."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    if math.isinf(ordered[low]) or (fraction > 0 and math.isinf(ordered[high])):
        return math.inf
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def min_samples_for(q: float, confidence: float = CONFIDENCE) -> int:
    """Fewest samples for which the q-th percentile is reported: the fewest for which the largest sample is an
    upper confidence bound of it, 1 - (q/100)^n >= confidence (p50: 5, p90: 29, p95: 59, p99: 299 at 95%).
    Below that no order statistic bounds the percentile from above, so no figure is better than a guess."""
    if not 0 < q < 100:
        raise ValueError("a percentile estimate needs 0 < q < 100")
    return math.ceil(round(math.log(1.0 - confidence) / math.log(q / 100.0), 9))


@functools.lru_cache(maxsize=256)
def binom_cdf_table(n: int, p: float) -> tuple[float, ...]:
    """P(X <= k) for k = 0..n, X ~ Binomial(n, p); exact, summed in log space so large n does not underflow."""
    if n < 0:
        raise ValueError("n must be at least 0")
    if p <= 0.0:
        return (1.0,) * (n + 1)
    if p >= 1.0:
        return (0.0,) * n + (1.0,)
    log_p, log_q = math.log(p), math.log1p(-p)
    top = math.lgamma(n + 1)
    logs = [top - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q for k in range(n + 1)]
    peak = max(logs)
    weights = [math.exp(v - peak) for v in logs]
    total = math.fsum(weights)
    out, running = [], 0.0
    for w in weights:
        running += w
        out.append(min(1.0, running / total))
    return tuple(out)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return binom_cdf_table(n, p)[k]


def quantile_ci_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int | None, int | None]:
    """1-based ranks (lo, hi) so that x_(lo) <= the q-th percentile <= x_(hi), each side with probability at
    least 1 - (1 - confidence) / 2: order statistics whose ranks come from the binomial (Conover, Practical
    Nonparametric Statistics, 3rd ed., 3.2). Distribution-free, so right for skewed, heavy-tailed latencies.
    A side is None where n is too small for any order statistic to bound it."""
    tail = (1.0 - confidence) / 2.0
    cdf = binom_cdf_table(n, q / 100.0)
    lo = None
    # P(x_(l) <= xi_q) = P(Bin(n, q) >= l) >= 1 - tail  <=>  P(Bin <= l - 1) <= tail
    for rank in range(1, n + 1):
        if cdf[rank - 1] <= tail + 1e-12:
            lo = rank
        else:
            break
    # P(x_(u) >= xi_q) = P(Bin(n, q) <= u - 1) >= 1 - tail
    hi = next((rank for rank in range(1, n + 1) if cdf[rank - 1] >= 1.0 - tail - 1e-12), None)
    return lo, hi


def percentile_ci(values: list[float], q: float, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """The q-th percentile's distribution-free interval (quantile_ci_ranks); a side too few samples can bound
    is None, and an end that falls on a failed request is inf."""
    lo, hi = quantile_ci_ranks(len(values), q, confidence)
    ordered = sorted(values)
    return (ordered[lo - 1] if lo else None, ordered[hi - 1] if hi else None)


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float] | None:
    """Ranks (lo, hi) covering the median with at least `confidence`, and their exact coverage; None when n is
    too small for both sides (n < 6 at 95%)."""
    lo, hi = quantile_ci_ranks(n, 50, confidence)
    if lo is None or hi is None:
        return None
    cdf = binom_cdf_table(n, 0.5)
    return lo, hi, cdf[hi - 1] - (cdf[lo - 1] if lo >= 1 else 0.0)


def median_ci(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    low, high = percentile_ci(values, 50, confidence)
    if low is None or high is None:
        return None
    return low, high


def p50_relative_halfwidth(values: list[float], confidence: float = CONFIDENCE) -> float | None:
    """Half the width of the median's confidence interval, relative to the median; None if not yet known."""
    ci = median_ci(values, confidence)
    if ci is None:
        return None
    med = percentile(values, 50)
    if med <= 0 or math.isinf(med):
        return None
    return (ci[1] - ci[0]) / 2.0 / med


def clopper_pearson(k: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """One-sided bounds (low, high) on a binomial proportion from k successes in n trials, each holding with
    `confidence` (Clopper & Pearson 1934): high solves P(Bin(n, p) <= k) = 1 - confidence, low solves
    P(Bin(n, p) >= k) = 1 - confidence. Whole counts use the exact binomial sum; effective counts (a count and
    its trials divided by a design effect, so fractional) use the same tail through the regularized incomplete
    beta function, P(Bin(n, p) <= k) = I_(1-p)(n - k, k + 1), which equals the sum at whole counts."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k} n={n}")
    alpha = 1.0 - confidence
    whole = float(k).is_integer() and float(n).is_integer()

    # (_cdf_exact and regularized_beta both hold the ends p = 0 and p = 1)
    def at_most(count: float, p: float) -> float:
        """P(Bin(n, p) <= count)."""
        return _cdf_exact(int(count), int(n), p) if whole else regularized_beta(1.0 - p, n - count, count + 1.0)

    def at_least(count: float, p: float) -> float:
        """P(Bin(n, p) >= count): 1 - P(Bin <= count - 1) for whole counts, I_p(count, n - count + 1) else."""
        return 1.0 - _cdf_exact(int(count) - 1, int(n), p) if whole else regularized_beta(p, count, n - count + 1.0)

    def solve(cdf: Callable[[float], float], rising: bool = False) -> float:
        """The p where cdf(p) (falling in p) crosses alpha, or where a tail rising in p crosses it."""
        lo, hi = 0.0, 1.0
        for _ in range(50):
            mid = (lo + hi) / 2.0
            value = cdf(mid)
            if (value < alpha) if rising else (value > alpha):
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2.0

    high = 1.0 if k >= n else solve(lambda p: at_most(k, p))
    low = 0.0 if k <= 0 else solve(lambda p: at_least(k, p), rising=True)
    return low, high


def _cdf_exact(k: int, n: int, p: float) -> float:
    """P(Bin(n, p) <= k), summed term by term (k is small in a tail test; no table of n+1 terms per p)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    log_p, log_q, top = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    terms = [
        math.exp(top - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        for i in range(0, k + 1)
    ]
    return min(1.0, math.fsum(terms))


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function (a, b > 0, 0 <= x <= 1): its continued fraction
    evaluated by the modified Lentz method (Numerical Recipes, 3rd ed., section 6.4), on the side of the
    symmetry I_x(a, b) = 1 - I_(1-x)(b, a) where it converges fast."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - regularized_beta(1.0 - x, b, a)
    log_front = a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    value = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            value *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return min(1.0, max(0.0, math.exp(log_front) * value / a))


@dataclass(frozen=True)
class LatencySummary:
    """Summary of per-query latencies, in milliseconds. A percentile with too few samples for its interval is
    None; a failed request counted in (served levels) is inf, so a percentile that falls on failures is inf."""

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
    missing_percentiles: tuple[str, ...]  # e.g. ("p95 needs 59 queries", ...)
    # The other percentiles' intervals (same method as p50's): q -> (low, high), a side None where unbounded.
    intervals: dict[int, tuple[float | None, float | None]] = field(default_factory=dict)

    def columns(self, prefix: str = "") -> dict[str, float | None]:
        """The result row's latency columns (`p95_ms`, `p95_ci_low_ms`, ...). A figure that falls on failures
        (inf) is left empty: a CSV cell holds times, and percentile_note says which fell on failures."""

        def cell(value: float | None) -> float | None:
            return None if value is None or math.isinf(value) else value

        names = ("mean_ms", "stdev_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms")
        out = {f"{prefix}{name}": cell(getattr(self, name)) for name in names}
        out[f"{prefix}p50_ci_low_ms"], out[f"{prefix}p50_ci_high_ms"] = (
            cell(self.p50_ci_low_ms),
            cell(self.p50_ci_high_ms),
        )
        for q in (90, 95, 99):
            low, high = self.intervals.get(q, (None, None))
            out[f"{prefix}p{q}_ci_low_ms"], out[f"{prefix}p{q}_ci_high_ms"] = cell(low), cell(high)
        return out

    def note(self) -> str:
        """What percentile_note says: the percentiles too few samples support, and those that fell on failures."""
        notes = list(self.missing_percentiles)
        failed_on = [f"p{q}" for q in PERCENTILES if getattr(self, f"p{q}_ms") == math.inf]
        if failed_on:
            notes.append(f"{', '.join(failed_on)} fall on failed requests (slower than any reply): shown empty")
        return "; ".join(notes)


def _union(
    order_statistics: tuple[float | None, float | None], batch_means: tuple[float, float] | None
) -> tuple[float | None, float | None]:
    """Both intervals' outer ends; a side the order statistics cannot bound stays unbounded."""
    if batch_means is None:
        return order_statistics
    low, high = order_statistics
    return (None if low is None else min(low, batch_means[0]), None if high is None else max(high, batch_means[1]))


def summarize_latencies(latencies_ms: list[float], noun: str = "queries", in_order: bool = False) -> LatencySummary:
    """Every percentile with its interval; `in_order`: the samples are in the order they were taken and may be
    correlated (a served level), so each interval also holds the batch-means one."""
    if not latencies_ms:
        raise ValueError("no latency samples to summarise")
    n = len(latencies_ms)
    finite = [v for v in latencies_ms if not math.isinf(v)]
    values: dict[int, float | None] = {}
    intervals: dict[int, tuple[float | None, float | None]] = {}
    missing: list[str] = []
    for q in PERCENTILES:
        need = min_samples_for(q)
        if n >= need:
            values[q] = percentile(latencies_ms, q)
            intervals[q] = percentile_ci(latencies_ms, q)
            if in_order:
                intervals[q] = _union(intervals[q], batch_means_interval(latencies_ms, q))
        else:
            values[q] = None
            missing.append(f"p{q} needs {need} {noun}")
    low50, high50 = intervals.get(50, (None, None))
    both = low50 is not None and high50 is not None
    return LatencySummary(
        n=n,
        mean_ms=fmean(latencies_ms) if len(finite) == n else math.inf,
        stdev_ms=stdev(latencies_ms) if n >= 2 and len(finite) == n else None,
        min_ms=min(latencies_ms),
        max_ms=max(latencies_ms),
        p50_ms=values[50],
        p90_ms=values[90],
        p95_ms=values[95],
        p99_ms=values[99],
        p50_ci_low_ms=low50 if both else None,
        p50_ci_high_ms=high50 if both else None,
        missing_percentiles=tuple(missing),
        intervals=intervals,
    )


BLOCKS = 10
T_975_9 = 2.262  # Student t, 97.5% quantile, 9 degrees of freedom
# Student t, 97.5% quantile, by the number of values n (n - 1 degrees of freedom); 1.96 beyond the table
T_975 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306, 10: 2.262}


def batch_means_interval(values: list[float], q: float) -> tuple[float, float] | None:
    """The q-th percentile of every value +- the batch-means half-width: t x sd / sqrt(10) over the q-th
    percentiles of ten consecutive blocks, widened by sqrt((1 + r) / (1 - r)) where r > 0 is the blocks' lag-1
    autocorrelation (capped at 0.9: blocks of a queue near saturation carry over into the next). Centred on the
    percentile that is reported, not on the blocks' mean. None where a block would hold fewer than 1 / (1 -
    q/100) values or 5 (20 for a p95: fewer and a block's p95 is its maximum), or a block's percentile is a
    failure (inf)."""
    value = percentile(values, q)
    size = len(values) // BLOCKS
    if size < max(5, math.ceil(round(1.0 / (1.0 - q / 100.0), 9))):
        return None
    blocks = [percentile(values[i * size : (i + 1) * size], q) for i in range(BLOCKS)]
    if not all(map(math.isfinite, blocks)) or not math.isfinite(value):
        return None
    mean = sum(blocks) / BLOCKS
    deviations = [b - mean for b in blocks]
    squares = sum(d * d for d in deviations)
    lag1 = sum(a * b for a, b in zip(deviations, deviations[1:], strict=False))
    r = min(0.9, max(0.0, lag1 / squares)) if squares > 0 else 0.0
    half = T_975_9 * math.sqrt(squares / (BLOCKS - 1)) / math.sqrt(BLOCKS) * math.sqrt((1 + r) / (1 - r))
    return value - half, value + half


def distribution(values: list[int] | list[float]) -> dict[str, float]:
    """mean, p50 and p95 of a list of counts (token lengths)."""
    as_float = [float(v) for v in values]
    return {"mean": fmean(as_float), "p50": percentile(as_float, 50), "p95": percentile(as_float, 95)}


# Spearman's rho with average ranks for ties (what scipy.stats.spearmanr does): a constant list has no defined
# rho and gives None. Here, one floor down, because both the sweep's agreement and int8-ac's accuracy control
# (backends/quantize.py) rank by it.
def average_ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) != len(b):
        raise ValueError("score lists differ in length")
    if len(a) < 2:
        return None
    ra, rb = average_ranks(a), average_ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=False))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return cov / math.sqrt(va * vb)
