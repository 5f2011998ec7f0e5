"""The timed loop for one case: warm up, then time whole passes over the depth's request set until the median
is known well enough.

Every configuration at a depth is timed on the same request set (`request_set`: picked to represent the
length mix), in whole passes: a fast configuration runs more passes than a slow one, never a different
subset of requests, so throughput (pairs of complete passes over their time) compares the same work.
Modelled on optimum-benchmark's latency tracker otherwise: after at least a minimum count and a minimum time,
timing stops at the end of the first pass where the p50's 95% confidence interval is within the target
precision. The time cap is a budget checked at the end of each pass: a further pass starts only when it is
expected (from the passes so far) to end within the cap, so a case never runs a pass it cannot finish in time,
and at least one pass is always run. Every per-query latency is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from rerank_bench.backends.base import Scorer
from rerank_bench.common.stats import p50_relative_halfwidth
from rerank_bench.errors import UsageError
from rerank_bench.workload.records import Request


@dataclass(frozen=True)
class MeasureSettings:
    min_queries: int = 5
    min_seconds: float = 2.0
    max_seconds: float = 15.0  # per-case budget for timed passes (a pass is started only if it should end within it)
    target_precision: float = 0.03  # relative half-width of the p50's 95% confidence interval
    max_queries: int = 2000
    warmup_queries: int = 2  # at most; the first is the longest request
    warmup_max_seconds: float = 1.0  # no further warm-up query once this much time is spent
    # Parent-side watchdog for a worker that stops answering: the first query may take this long ...
    first_query_timeout_s: float = 600.0
    # ... and then the case may take 30 s + 3 * (max_seconds + warm-up queries) before it is killed.
    # A pass over the request set holds about this many pairs (set size = this / depth, at least 3 for a median):
    # small enough that a slow configuration finishes a pass within the cap on a 2-core CPU.
    pass_pairs: int = 100
    set_size: int | None = None  # a fixed request-set size instead (tune: the same N for every configuration)
    # Labelled workloads: requests scored after timing (untimed) for the relevance columns, the same first N
    # for every configuration and the reference.
    quality_requests: int = 64

    def request_set_size(self, depth: int) -> int:
        """Requests per pass at this depth: about `pass_pairs` pairs, at least 3 (a median), at most 16."""
        if self.set_size is not None:
            return self.set_size
        return max(MIN_SET_SIZE, min(MAX_SET_SIZE, math.ceil(self.pass_pairs / depth)))

    @classmethod
    def from_options(cls, max_seconds: float, precision: float, case_timeout_s: float) -> MeasureSettings:
        """The sweep's --max-seconds-per-case, --precision and --case-timeout, checked."""
        if max_seconds <= 0 or case_timeout_s <= 0 or not 0 < precision < 1:
            raise UsageError("--max-seconds-per-case and --case-timeout must be positive, --precision within (0, 1)")
        return cls(
            max_seconds=max_seconds,
            target_precision=precision,
            min_seconds=min(cls.min_seconds, max_seconds),
            first_query_timeout_s=case_timeout_s,
        )


MIN_SET_SIZE, MAX_SET_SIZE = 3, 16


def request_set(requests: list[Request], size: int, tokens: Callable[[Request], int]) -> list[Request]:
    """`size` requests that represent the pool's length mix: sorted by total tokens, the one at the middle of
    each of `size` equal slices (a stratified pick), returned in the pool's order. The same for every
    configuration at a depth, since it depends only on the requests."""
    if size >= len(requests):
        return list(requests)
    ranked = sorted(range(len(requests)), key=lambda i: (tokens(requests[i]), i))
    chosen = sorted(ranked[min(len(ranked) - 1, int((k + 0.5) * len(ranked) / size))] for k in range(size))
    return [requests[i] for i in chosen]


@dataclass
class Measurement:
    latencies_ms: list[float]
    measure_s: float  # time spent inside timed queries: their latencies summed
    warmup_queries: int
    stop_reason: str  # "precision", "time_cap" or "max_queries", with the number of whole passes
    tokens_computed: int
    real_tokens: int
    passes: int = 0


def warmup_requests(requests: list[Request], count: int) -> list[Request]:
    """The longest request first (largest padded shapes, so allocators reach their peak before timing),
    then the first timed requests. (A shortest-first warm-up on CPUs was tried: the first timed pass of a
    fresh worker then ran 20-25% slower than its second, so the longest request stays first everywhere.)"""
    longest = max(requests, key=lambda r: sum(len(d) for d in r.documents) + len(r.query))
    return ([longest] + requests)[:count]


def run_timed(
    scorer: Scorer,
    requests: list[Request],
    batch_size: int,
    settings: MeasureSettings,
    clock: Callable[[], float] = time.perf_counter,
    on_warm: Callable[[float], None] | None = None,
) -> Measurement:
    warm = warmup_requests(requests, settings.warmup_queries)
    warm_started = clock()
    warmed = 0
    for request in warm:
        t0 = clock()
        scorer.score(request, batch_size)
        warmed += 1
        if warmed == 1 and on_warm is not None:
            on_warm(clock() - t0)
        # The first query pays the one-time costs; more warm-up only helps fast queries.
        if clock() - warm_started >= settings.warmup_max_seconds:
            break
    scorer.reset_padding_counters()

    latencies_ms: list[float] = []
    started = clock()
    passes = 0
    while True:
        for request in requests:  # one whole pass over the set
            t0 = clock()
            scorer.score(request, batch_size)
            latencies_ms.append((clock() - t0) * 1000.0)
        passes += 1
        n, elapsed = len(latencies_ms), clock() - started
        if elapsed + elapsed / passes > settings.max_seconds:  # the next pass would end past the budget
            reason = "time_cap"
            break
        if n + len(requests) > settings.max_queries:
            reason = "max_queries"
            break
        if n >= settings.min_queries and elapsed >= settings.min_seconds:
            halfwidth = p50_relative_halfwidth(latencies_ms)
            if halfwidth is not None and halfwidth <= settings.target_precision:
                reason = "precision"
                break
    computed, real = scorer.padding_counters()
    return Measurement(
        latencies_ms=latencies_ms,
        measure_s=sum(latencies_ms) / 1000.0,
        warmup_queries=warmed,
        stop_reason=f"{reason} ({passes} pass{'es' if passes != 1 else ''} of {len(requests)})",
        tokens_computed=computed,
        real_tokens=real,
        passes=passes,
    )
