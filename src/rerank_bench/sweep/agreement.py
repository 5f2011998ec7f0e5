"""How far a configuration's ranking is from the reference (torch fp32, given order, same device).

Pure functions over score lists; scores come from the same requests scored by both. Spearman's rho uses
average ranks for ties (what scipy.stats.spearmanr does), so a constant score list has no defined rho
and is reported as None rather than a made-up number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TOP_K = 10


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
