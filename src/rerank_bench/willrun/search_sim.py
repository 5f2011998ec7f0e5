"""What `endpoint --capacity` would report for the modelled server: its own search (common/capacity_search.py)
driven by simulated levels, each shaped and judged as the endpoint shapes and judges a real one
(common/slo.py: warm-up at the level's rate, a first window of 258 requests for a p95, looks that double while
undecided, the time limit, the count test at 95% confidence, and `not steady` for a latency still rising).

Why a second figure: will-it-run's capacity is where the p95 of a long steady run meets the budget. A measured
search reports the highest rate *shown* to hold in levels of a few hundred requests: with 258 requests a p95
passes only when about 4 or fewer are over (the Clopper-Pearson bound must clear 5%), so a rate whose true
share over the budget is 3% is undecided, not passed. Where latency rises slowly toward the knee (a large
model at a few requests a second) the shown figure is well below the steady one; measured against infinity,
MiniLM-L6's p95 was 2,169 ms at 0.75/s with a 3,000 ms budget and the search still reported 0.58/s. A user who
will check a plan with `endpoint --capacity` should expect this figure, and plan with the steady one.

Each seed runs the whole search on its own arrival streams (the same stream at every rate of one search, as
`find_capacity` does); the figure is the seeds' median of what each search reported, their range its spread.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from rerank_bench.common.capacity_search import CONFIRM_FACTOR, Trial, search_capacity
from rerank_bench.common.slo import (
    MAX_LEVEL_S,
    Verdict,
    first_window,
    level_confidence,
    level_looks,
    level_warmup,
    slo_test_in_order,
    trend_rises,
)
from rerank_bench.willrun.serving_sim import (
    PLAIN,
    Conditions,
    CostFn,
    ServerPolicy,
    replica_run,
    service_bound_rps,
    simulate,
)

SEARCH_SEEDS = 5  # whole searches, each on its own arrival streams


@dataclass
class SearchFigure:
    rate_rps: float | None  # the seeds' median of the capacity each search reported (None: most found none)
    seed_rates_rps: list[float | None] = field(default_factory=list)
    levels: int = 0  # simulated levels, all seeds together
    run_s: float = 0.0

    @property
    def spread_rps(self) -> tuple[float, float] | None:
        found = [r for r in self.seed_rates_rps if r is not None]
        return (min(found), max(found)) if len(found) > 1 else None


def simulate_level(
    rate_rps: float,
    requests: list[list[int]],
    cost_ms: CostFn,
    policy: ServerPolicy,
    budget_ms: float,
    quantile: float = 95.0,
    conditions: Conditions = PLAIN,
    seed: int = 0,
    factor: int = 1,
) -> Trial:
    """One open-loop level as `endpoint` runs it (`factor` 3: the capacity's confirmation level). Each look
    simulates its window and as many arrivals again after it (the endpoint keeps sending until the window's
    replies are in); a seed's longer run repeats a shorter one's start, so a later look extends the earlier."""
    first = first_window(quantile) * factor
    confidence = level_confidence()
    warmup = level_warmup(rate_rps)
    limit_ms = MAX_LEVEL_S * factor * 1000.0
    looks = level_looks(first)
    for index, size in enumerate(looks):
        # the queue starts empty, as a fresh level's does after the previous one drained
        n = warmup + 2 * size
        arrivals, latencies, _, _ = replica_run(rate_rps, n, requests, cost_ms, policy, seed, conditions)
        window = range(warmup, warmup + size)
        if arrivals[window[-1]] > limit_ms:
            if index > 0:  # undecided at the last look that fitted in the level's time
                return Trial(rate_rps, Verdict.UNDECIDED, "undecided within the level's time")
            # the first window is cut where sending stopped, and judged on what was scheduled before
            window = range(warmup, warmup + sum(1 for i in window if arrivals[i] <= limit_ms))
            if not window:
                return Trial(rate_rps, Verdict.UNDECIDED, "no request inside the level's time")
        timed = [latencies[i] for i in window]
        test = slo_test_in_order([v > budget_ms for v in timed], quantile, confidence)
        decided = test.verdict != Verdict.UNDECIDED or size == looks[-1] or len(timed) < size
        if not decided:
            continue
        if test.verdict == Verdict.PASS and trend_rises(timed):
            return Trial(rate_rps, Verdict.UNDECIDED, "passed, but latency was still rising (not steady)")
        return Trial(rate_rps, test.verdict, test.why(quantile, budget_ms))
    return Trial(rate_rps, Verdict.UNDECIDED, "undecided")  # not reached: the last look always decides


def search_figure(
    requests: list[list[int]],
    cost_ms: CostFn,
    policy: ServerPolicy,
    budget_ms: float,
    quantile: float = 95.0,
    conditions: Conditions = PLAIN,
    seeds: int = SEARCH_SEEDS,
) -> SearchFigure:
    """`endpoint --capacity`'s search, run `seeds` times on the model. Its two closed-loop levels are stood in
    for: one client by the mean latency at 1% of the service bound, the ceiling by the service bound itself
    (with the server's own work per request added); they only place the search's first open-loop rates."""
    started = time.perf_counter()
    bound = service_bound_rps(requests, cost_ms, policy)
    if conditions.request_cpu_ms:
        bound = 1000.0 / (1000.0 / bound + conditions.request_cpu_ms)
    idle = simulate(bound * 0.01, requests, cost_ms, policy, 200, 0, conditions.busy())  # one client: never idle
    unloaded_rps = 1000.0 / statistics.fmean(idle.latencies_ms)
    figure = SearchFigure(None)
    for seed in range(seeds):

        def level(rate: float, factor: int = 1, s: int = seed) -> Trial:
            figure.levels += 1
            return simulate_level(rate, requests, cost_ms, policy, budget_ms, quantile, conditions, s, factor)

        def confirm(rate: float, s: int = seed) -> Trial:
            return level(rate, CONFIRM_FACTOR, s)

        found = search_capacity(level, unloaded_rps, max(bound, unloaded_rps), confirm=confirm)
        figure.seed_rates_rps.append(found.capacity_rps)
    reported = sorted(r if r is not None else 0.0 for r in figure.seed_rates_rps)
    middle = statistics.median(reported)
    figure.rate_rps = middle if middle > 0 else None
    figure.run_s = time.perf_counter() - started
    return figure
