"""`endpoint --capacity`: the highest open-loop rate whose latency percentile stays within the SLO with
errors under 1%, found to within a tolerance by bracketing and geometric bisection. Pure search logic: the
caller supplies `try_rate` (run one level, say whether it met the SLO), so tests drive it with a known
threshold and the command line with a real server."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_TOLERANCE = 0.10  # the answer's bracket: failing rate / passing rate <= 1.10
MAX_LEVELS = 14  # a search that has not closed its bracket by then stops and says so
MAX_HALVINGS = 8  # start / 256: below that the endpoint is too slow to search from this start


@dataclass(frozen=True)
class Trial:
    rate_rps: float
    met: bool
    why: str  # why not, when not met


@dataclass
class CapacityResult:
    low_rps: float | None  # the highest rate that met the SLO (None: none did)
    high_rps: float | None  # the lowest rate above it that did not (None: none failed)
    trials: list[Trial] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def capacity_rps(self) -> float | None:
        return self.low_rps

    @property
    def converged(self) -> bool:
        if self.low_rps is None or self.high_rps is None:
            return False
        return self.high_rps / self.low_rps <= 1.0 + self.tolerance + 1e-9

    def note(self) -> str:
        if self.low_rps is None:
            lowest = min(t.rate_rps for t in self.trials)
            why = next(t.why for t in self.trials if t.rate_rps == lowest)
            return f"no rate met the SLO, down to {lowest:.3g}/s ({why})"
        if self.high_rps is None:
            return f"every rate tried met the SLO, up to {self.low_rps:.3g}/s: capacity is higher"
        if not self.converged:
            return f"stopped after {len(self.trials)} levels with the bracket {self.low_rps:.3g}-{self.high_rps:.3g}/s"
        return ""


def search_capacity(
    try_rate: Callable[[float], Trial],
    start_rps: float,
    tolerance: float = DEFAULT_TOLERANCE,
    max_levels: int = MAX_LEVELS,
) -> CapacityResult:
    """Double from `start_rps` until a rate fails (or halve until one passes), then bisect the bracket
    geometrically until failing / passing <= 1 + tolerance."""
    if start_rps <= 0:
        raise ValueError("the starting rate must be positive")
    result = CapacityResult(None, None, tolerance=tolerance)

    def attempt(rate: float) -> bool:
        trial = try_rate(rate)
        result.trials.append(trial)
        return trial.met

    rate = start_rps
    if attempt(rate):
        result.low_rps = rate
        while len(result.trials) < max_levels:
            rate *= 2
            if not attempt(rate):
                result.high_rps = rate
                break
            result.low_rps = rate
    else:
        result.high_rps = rate
        for _ in range(MAX_HALVINGS):
            if len(result.trials) >= max_levels:
                break
            rate /= 2
            if attempt(rate):
                result.low_rps = rate
                break
            result.high_rps = rate
    while not result.converged and result.low_rps and result.high_rps and len(result.trials) < max_levels:
        middle = math.sqrt(result.low_rps * result.high_rps)
        if attempt(middle):
            result.low_rps = middle
        else:
            result.high_rps = middle
    return result
