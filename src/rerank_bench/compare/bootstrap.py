"""Is one set of runs slower than another, beyond noise? Ratio estimates with bootstrap intervals, and the
verdict rule the gate applies. Pure functions over raw latency samples; numpy for the resampling.

References: Davison & Hinkley, Bootstrap Methods and their Application (1997), section 3.8 (two-level
bootstrap over runs, then samples within runs); asv's compare for "the ratio passes the threshold AND the
interval agrees"; Kuensch (1989), the moving-block bootstrap, for a served level's latencies: requests queue
behind one another, so neighbours are correlated, and resampling them one by one as if independent gives an
interval that is too narrow. Blocks of consecutive requests (in scheduled order) keep that correlation.

A failed request is slower than any reply (inf); statistics are order statistics then (no interpolation
between a time and a failure), and a ratio of two failures is 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RatioEstimate:
    """current / baseline for one statistic, with a bootstrap percentile interval."""

    ratio: float
    low: float
    high: float
    confidence: float


def _statistic(name: str) -> Any:
    import numpy as np

    def quantile(q: float) -> Any:
        def compute(a: Any) -> Any:
            # an order statistic where failures (inf) are present: interpolating towards inf gives inf or nan
            if np.isinf(a).any():
                return np.percentile(a, q, axis=-1, method="inverted_cdf")
            return np.percentile(a, q, axis=-1)

        return compute

    if name == "mean":
        return lambda a: a.mean(axis=-1)
    if name == "median":
        return quantile(50)
    if name == "p95":
        return quantile(95)
    if name == "share_ok":  # the share of requests that did not fail
        return lambda a: np.isfinite(a).mean(axis=-1)
    if name.startswith("within:"):  # the share of requests answered within an SLO (ms): goodput per request
        bound = float(name.split(":", 1)[1])
        return lambda a: (a <= bound).mean(axis=-1)
    raise ValueError(f"unknown statistic {name!r}")


def _ratio(current: Any, baseline: Any) -> Any:
    """current / baseline, elementwise, with inf / inf = 1 (both failed) and 0 / 0 = 1."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(current, dtype=float) / np.asarray(baseline, dtype=float)
    same = (np.asarray(current) == np.asarray(baseline)) & ~np.isfinite(out)
    return np.where(same, 1.0, out)


def block_length(n: int) -> int:
    """The moving-block bootstrap's block: about n^(1/3) requests (Hall, Horowitz & Jing 1995)."""
    return max(1, round(n ** (1.0 / 3.0)))


def bootstrap_ratio(
    baseline: list[list[float]],
    current: list[list[float]],
    statistic: str = "median",
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    blocks: bool = False,
) -> RatioEstimate:
    """Ratio statistic(current) / statistic(baseline) with a two-level bootstrap interval.

    Each side is a list of runs (one list of per-query latencies per process). A resample draws runs with
    replacement, then queries with replacement within each drawn run, and pools them (Davison & Hinkley,
    Bootstrap Methods, 1997, section 3.8). With one run per side this is the ordinary bootstrap; with
    several, the interval also carries the run-to-run (process, machine state) noise that single runs hide.
    With `blocks`, samples within a run are drawn as circular blocks of consecutive samples (block_length),
    for latencies that are correlated in time, as a served level's are.
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
            parts = [_draw(arrays[i], per_run) for i in chosen[b]]
            out[b] = stat(np.concatenate(parts))
        return out

    def _draw(array: Any, count: int) -> Any:
        if not blocks or len(array) < 3:
            return array[rng.integers(0, len(array), count)]
        length = block_length(len(array))
        starts = rng.integers(0, len(array), -(-count // length))
        index = (starts[:, None] + np.arange(length)[None, :]).ravel()[:count] % len(array)
        return array[index]

    base = resample(baseline)
    cur = resample(current)
    ratios = _ratio(cur, base)
    alpha = (1 - confidence) / 2
    point = float(
        _ratio(
            stat(np.concatenate([np.asarray(r, float) for r in current])),
            stat(np.concatenate([np.asarray(r, float) for r in baseline])),
        )
    )
    if np.isinf(ratios).any():  # no interpolation between infinities
        low, high = np.quantile(ratios, [alpha, 1 - alpha], method="inverted_cdf")
    else:
        low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return RatioEstimate(ratio=point, low=float(low), high=float(high), confidence=confidence)


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
