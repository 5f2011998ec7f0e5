"""The timed loop for one case: warm up, then time queries until the median is known well enough.

Modelled on optimum-benchmark's latency tracker: timing runs until both a minimum count and a minimum time
are reached; from then on it stops as soon as the p50's 95% confidence interval is within the target
precision, and never runs past the per-case time cap. Every per-query latency is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rerank_bench.backends.base import Scorer
from rerank_bench.errors import UsageError
from rerank_bench.measure.stats import p50_relative_halfwidth
from rerank_bench.workload.requests import Request


@dataclass(frozen=True)
class MeasureSettings:
    min_queries: int = 5
    min_seconds: float = 2.0
    max_seconds: float = 15.0  # per-case cap on timed queries (a query already started is finished)
    target_precision: float = 0.03  # relative half-width of the p50's 95% confidence interval
    max_queries: int = 2000
    warmup_queries: int = 2  # at most; the first is the longest request
    warmup_max_seconds: float = 1.0  # no further warm-up query once this much time is spent
    # Parent-side watchdog for a worker that stops answering: the first query may take this long ...
    first_query_timeout_s: float = 600.0
    # ... and then the case may take 30 s + 3 * (max_seconds + warm-up queries) before it is killed.

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


@dataclass
class Measurement:
    latencies_ms: list[float]
    measure_s: float  # time spent inside timed queries: their latencies summed
    warmup_queries: int
    stop_reason: str  # "precision", "time_cap" or "max_queries"
    tokens_computed: int
    real_tokens: int


def warmup_requests(requests: list[Request], count: int) -> list[Request]:
    """The longest request first (largest padded shapes, so allocators reach their peak before timing),
    then the first timed requests."""
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
    reason = "time_cap"
    i = 0
    while True:
        request = requests[i % len(requests)]
        t0 = clock()
        scorer.score(request, batch_size)
        t1 = clock()
        latencies_ms.append((t1 - t0) * 1000.0)
        i += 1
        n = len(latencies_ms)
        if t1 - started >= settings.max_seconds:
            reason = "time_cap"
            break
        if n >= settings.max_queries:
            reason = "max_queries"
            break
        # Checking costs a sort; past 50 samples, every 10th query is often enough.
        if n >= settings.min_queries and t1 - started >= settings.min_seconds and (n < 50 or n % 10 == 0):
            halfwidth = p50_relative_halfwidth(latencies_ms)
            if halfwidth is not None and halfwidth <= settings.target_precision:
                reason = "precision"
                break
    computed, real = scorer.padding_counters()
    return Measurement(
        latencies_ms=latencies_ms,
        measure_s=sum(latencies_ms) / 1000.0,
        warmup_queries=warmed,
        stop_reason=reason,
        tokens_computed=computed,
        real_tokens=real,
    )
