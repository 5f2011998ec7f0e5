"""How far a configuration's ranking is from the reference (torch fp32, given order, same device).

Pure functions over score lists; scores come from the same requests scored by both. Spearman's rho uses
average ranks for ties (what scipy.stats.spearmanr does), so a constant score list has no defined rho
and is reported as None rather than a made-up number.
"""

from __future__ import annotations

from dataclasses import dataclass

from rerank_bench.common.stats import average_ranks, spearman

TOP_K = 10

__all__ = ["average_ranks", "spearman", "top_k_overlap"]  # the first two live in common/stats


def top_k_overlap(reference: list[float], candidate: list[float], k: int = TOP_K) -> float:
    """Share of the reference's top k that is also in the candidate's top k (index order breaks ties)."""
    k = min(k, len(reference))
    if k == 0:
        return 1.0

    def top(scores: list[float]) -> set[int]:
        return set(sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k])

    return len(top(reference) & top(candidate)) / k


@dataclass(frozen=True)
class Agreement:
    spearman_mean: float | None
    spearman_worst: float | None
    top10_overlap: float
    max_abs_diff: float
    requests: int

    def to_row(self) -> dict[str, float | int | None]:
        return {
            "agreement_spearman_mean": self.spearman_mean,
            "agreement_spearman_worst": self.spearman_worst,
            "agreement_top10_overlap": self.top10_overlap,
            "agreement_max_abs_diff": self.max_abs_diff,
            "agreement_requests": self.requests,
        }


def compare_scores(reference: list[list[float]], candidate: list[list[float]]) -> Agreement:
    """Per request Spearman (mean and worst), mean top-10 overlap, and the largest absolute difference."""
    if len(reference) != len(candidate) or not reference:
        raise ValueError("need the same non-empty list of requests on both sides")
    rhos = [r for r in (spearman(a, b) for a, b in zip(reference, candidate, strict=False)) if r is not None]
    overlaps = [top_k_overlap(a, b) for a, b in zip(reference, candidate, strict=False)]
    diff = max(abs(x - y) for a, b in zip(reference, candidate, strict=False) for x, y in zip(a, b, strict=False))
    return Agreement(
        spearman_mean=sum(rhos) / len(rhos) if rhos else None,
        spearman_worst=min(rhos) if rhos else None,
        top10_overlap=sum(overlaps) / len(overlaps),
        max_abs_diff=diff,
        requests=len(reference),
    )
