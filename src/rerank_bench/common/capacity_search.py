"""`endpoint --capacity`: the highest open-loop rate whose SLO test passes, searched along the latency curve.

The shape is GuideLLM's sweep profile: one client at a time (the unloaded rate), a closed loop at high
concurrency (the server's throughput ceiling: no rate above it can be sustained), open-loop rates spread
between the two (ascending, stopping at the first that does not pass), then geometric bisection between the
highest rate that passed and the lowest that did not, until they are within the tolerance (where every rate of
the spread passes, the search steps on past the ceiling until one does not: a closed loop with too few clients
understates it). A level that is undecided, or whose latency was still rising (`not steady`: its queue had not
settled, so a longer level would fail), counts as not passing: the capacity is a rate that was shown to hold,
never one that was not shown to fail. The answer is then confirmed by one level at least three times as long;
a rate that fails its confirmation is not the capacity (near the knee a queue can drift up over minutes: measured
against infinity, three of four capacities held for a search level and failed one three times as long), so the
search steps down one tolerance step (or to the highest lower rate that passed, where that is nearer) and
confirms that, up to MAX_CONFIRMATIONS times: the confirmation is the stronger showing, so a rate it passes is the
capacity whether or not a search level ran there.

Pure search logic: the caller supplies `try_rate` (run one level, return its trial), so tests drive it with a
known threshold and the command line with a real server.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from rerank_bench.common.slo import Verdict

DEFAULT_TOLERANCE = 0.10  # the answer's bracket: lowest rate not passing / capacity <= 1.10
MAX_LEVELS = 12  # open-loop levels before the confirmation; a search that has not closed by then says so
SPREAD_POINTS = 4  # open-loop rates between the unloaded rate and the ceiling
CEILING_SHARE = 0.95  # the spread's top: just under the closed-loop ceiling
MAX_HALVINGS = 6  # below the spread's lowest rate: halve this often before giving up
CONFIRM_FACTOR = 3  # the confirmation level's requests, as a multiple of a search level's
MAX_CONFIRMATIONS = 3  # confirmation levels at most (each is long): the last failed one is reported unconfirmed
# Before the search, one open level at a light rate: what a request that finds the server idle waits. One client
# at a time never leaves it idle (the next request follows the last reply), and infinity answered such a request
# 35% slower than closed x1 (22 -> 30 ms, TinyBERT-L2, flat from 3/s to 20/s: not queueing), the figure a user
# with little traffic sees, and the one will-it-run's served fit needs for its wake time.
LIGHT_RATE_SHARE = 0.25  # of the closed x1 rate
LIGHT_REQUESTS = (30, 100)  # its window: as many as arrive in LIGHT_MAX_S, within these bounds (a p50, not a p95)
LIGHT_MAX_S = 60.0

# What each level of a search was for, said in its row (status_reason), so a bare CSV reads without this module.
ROLE_ONE_CLIENT = "capacity search: one client at a time (the unloaded rate)"
ROLE_CEILING = "capacity search: the closed-loop throughput ceiling"
ROLE_LIGHT = (
    f"capacity search: the light level ({LIGHT_RATE_SHARE:g} of closed x1's rate, before the search): "
    "what a request that finds the server idle waits (its p50)"
)
ROLE_SEARCH = "capacity search level"
ROLE_CONFIRMATION = f"capacity search: a confirmation ({CONFIRM_FACTOR}x a search level's requests)"


def light_level(unloaded_rps: float) -> tuple[float, int]:
    """(rate, window requests) of the light level before a search from this closed x1 rate."""
    rate = unloaded_rps * LIGHT_RATE_SHARE
    low, high = LIGHT_REQUESTS
    return rate, max(low, min(high, int(rate * LIGHT_MAX_S)))


@dataclass(frozen=True)
class Trial:
    rate_rps: float
    verdict: Verdict
    why: str  # why not, when it did not pass

    @property
    def passed(self) -> bool:
        return self.verdict == Verdict.PASS


@dataclass
class CapacityResult:
    low_rps: float | None  # the highest rate that passed (None: none did)
    high_rps: float | None  # the lowest rate above it that did not (None: none failed up to the ceiling)
    ceiling_rps: float | None = None  # the closed-loop throughput ceiling the spread was laid under
    trials: list[Trial] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE
    confirmations: list[Trial] = field(default_factory=list)  # every confirmation level, in the order they ran
    unconfirmed_rps: list[float] = field(default_factory=list)  # rates that passed a search level, failed a long one

    @property
    def capacity_rps(self) -> float | None:
        return self.low_rps

    @property
    def confirmation(self) -> Trial | None:
        """The last confirmation level: the one the capacity stands on."""
        return self.confirmations[-1] if self.confirmations else None

    @property
    def converged(self) -> bool:
        if self.low_rps is None:
            return False
        top = self.high_rps if self.high_rps is not None else self.ceiling_rps
        return top is not None and top / self.low_rps <= 1.0 + self.tolerance + 1e-9

    @property
    def confirmed(self) -> bool:
        return self.confirmation is not None and self.confirmation.passed

    def note(self) -> str:
        if self.low_rps is None:
            lowest = min(self.trials, key=lambda t: t.rate_rps, default=None)
            return f"no rate met the SLO, down to {lowest.rate_rps:.3g}/s ({lowest.why})" if lowest else "no level ran"
        notes = []
        if self.high_rps is None:
            ceiling = f"{self.ceiling_rps:.3g}/s" if self.ceiling_rps else "the ceiling"
            notes.append(
                f"every rate tried passed, up to {self.low_rps:.3g}/s, close to the throughput ceiling {ceiling}"
            )
        if self.unconfirmed_rps:
            shown = ", ".join(f"{r:.3g}" for r in self.unconfirmed_rps)
            notes.append(f"{shown}/s held for a search level but not for one {CONFIRM_FACTOR}x as long: stepped down")
        elif self.high_rps is not None and not self.converged:
            notes.append(
                f"stopped after {len(self.trials)} levels with the bracket {self.low_rps:.3g}-{self.high_rps:.3g}/s"
            )
        if self.confirmation is not None and not self.confirmation.passed:
            notes.append(f"the confirmation level did not pass: {self.confirmation.verdict} ({self.confirmation.why})")
        if self.high_rps is not None and self.bounded_by_invalid:
            notes.append(
                f"the rate above it, {self.high_rps:.3g}/s, said nothing of the server (invalid: the client failed "
                "or fell behind): the server may hold more; run the load generator where it has a core to itself"
            )
        return "; ".join(notes)

    @property
    def bounded_by_invalid(self) -> bool:
        """Whether the rate that bounds the capacity from above was judged invalid (the client's fault), so the
        bracket's top is not the server's."""
        if self.high_rps is None:
            return False
        # a rate can pass a search level and not its confirmation: the levels that did not pass there bound it
        bound = [t for t in (*self.trials, *self.confirmations) if t.rate_rps == self.high_rps and not t.passed]
        return bool(bound) and all(t.verdict == Verdict.INVALID for t in bound)


def spread(unloaded_rps: float, ceiling_rps: float, points: int = SPREAD_POINTS) -> list[float]:
    """Open-loop rates from about the unloaded rate (one request at a time) to just under the ceiling, evenly
    spaced: the unloaded rate is clamped to 10-60% of the ceiling, so a batching server, whose ceiling is many
    times its unloaded rate, is still searched near its knee."""
    if ceiling_rps <= 0:
        raise ValueError("the throughput ceiling must be positive")
    top = CEILING_SHARE * ceiling_rps
    low = min(max(unloaded_rps, 0.1 * ceiling_rps), 0.6 * ceiling_rps)
    if points <= 1:
        return [top]
    return [low + (top - low) * i / (points - 1) for i in range(points)]


def search_capacity(
    try_rate: Callable[[float], Trial],
    unloaded_rps: float,
    ceiling_rps: float,
    tolerance: float = DEFAULT_TOLERANCE,
    max_levels: int = MAX_LEVELS,
    confirm: Callable[[float], Trial] | None = None,
) -> CapacityResult:
    """The search described above; `confirm(rate)` runs the long confirmation level at the capacity found."""
    result = CapacityResult(None, None, ceiling_rps=ceiling_rps, tolerance=tolerance)

    def attempt(rate: float) -> bool:
        trial = try_rate(rate)
        result.trials.append(trial)
        return trial.passed

    for rate in spread(unloaded_rps, ceiling_rps):
        if len(result.trials) >= max_levels:
            break
        if not attempt(rate):
            result.high_rps = rate
            break
        result.low_rps = rate
    # Every rate of the spread passed: the closed loop's ceiling was not the server's (a closed loop with too
    # few clients, or a client that slowed it): step up past it until a rate does not pass.
    while result.high_rps is None and result.low_rps is not None and len(result.trials) < max_levels:
        rate = result.low_rps * (1.0 + tolerance)
        if not attempt(rate):
            result.high_rps = rate
            break
        result.low_rps = rate
    if result.low_rps is None and result.high_rps is not None:
        rate = result.high_rps
        for _ in range(MAX_HALVINGS):
            if len(result.trials) >= max_levels:
                break
            rate /= 2
            if attempt(rate):
                result.low_rps = rate
                break
            result.high_rps = rate
    while (
        result.low_rps is not None
        and result.high_rps is not None
        and not result.converged
        and len(result.trials) < max_levels
    ):
        middle = math.sqrt(result.low_rps * result.high_rps)
        if attempt(middle):
            result.low_rps = middle
        else:
            result.high_rps = middle
    while confirm is not None and result.low_rps is not None:
        confirmation = confirm(result.low_rps)
        result.confirmations.append(confirmation)
        if confirmation.passed or len(result.unconfirmed_rps) + 1 >= MAX_CONFIRMATIONS:
            break
        failed = result.low_rps
        result.unconfirmed_rps.append(failed)
        result.high_rps = failed
        # one tolerance step under the rate that failed, or the highest lower rate a search level passed where
        # that is nearer: the spread's steps are 10-20% apart, and falling back a whole one threw away a rate the
        # long level may well hold (against infinity: 59.2/s failed its confirmation, 50.9/s was the rate below)
        lower = [t.rate_rps for t in result.trials if t.passed and t.rate_rps < failed]
        result.low_rps = max([*lower, failed / (1.0 + tolerance)])
    return result
