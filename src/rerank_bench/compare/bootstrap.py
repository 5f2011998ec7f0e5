"""Is one set of runs slower than another, beyond noise? Ratio estimates with bootstrap intervals, and the
verdict rule the gate applies. Pure functions over raw latency samples; numpy for the resampling.

References: Davison & Hinkley, Bootstrap Methods and their Application (1997), section 3.8 (two-level
bootstrap over runs, then samples within runs); asv's compare for "the ratio passes the threshold AND the
interval agrees".
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
