"""Arrival gaps of an open-loop load: what `endpoint` sends on and `will-it-run --rate` simulates, one
definition so that a measured level and a simulated one are offered the same kind of traffic."""

from __future__ import annotations

import random


def unit_gaps(count: int, seed: int | str, burstiness: float = 1.0) -> list[float]:
    """`count` inter-arrival gaps of mean 1, gamma distributed with shape `burstiness` (vLLM's definition: 1 is a
    Poisson process, below 1 burstier, above 1 more even), seeded. Every rate scales the same gaps by 1/rate
    (common random numbers), so two levels differ only by their rate."""
    if count < 0 or burstiness <= 0:
        raise ValueError("count must be at least 0 and burstiness positive")
    rng = random.Random(seed)
    return [rng.gammavariate(burstiness, 1.0 / burstiness) for _ in range(count)]
