"""One load level's figures from its raw outcomes. Pure: no clocks, no I/O; the statistics are the sweep's
(common/stats.py), so a served p95 means what an in-process p95 means."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from rerank_bench.common.stats import LatencySummary, min_samples_for, percentile, summarize_latencies
from rerank_bench.common.thresholds import MAX_ERROR_FRACTION
from rerank_bench.endpoint.loadgen import Outcome

# The generator fell behind its own schedule when the 99th percentile of its send lag passes 10 ms or 2% of the
# level's median latency, whichever is larger: requests then go out later than the offered rate says, and
# the level is marked rather than silently slowed down. (Latency counts from the scheduled time, so a lag
# hides nothing; what it can do is bunch the sends, which matters in proportion to the latencies measured:
# on a 2-core machine shared with the server, wake-ups 10-30 ms late are routine beside 2 s replies.)
BEHIND_SCHEDULE_MS = 10.0
BEHIND_SCHEDULE_SHARE = 0.02


@dataclass(frozen=True)
class Level:
    """What one level asks for: closed loop at a concurrency, or open loop at an offered rate."""

    mode: str  # "closed" or "open"
    concurrency: int | None = None
    rate_rps: float | None = None
    burstiness: float = 1.0

    def label(self) -> str:
        if self.mode == "closed":
            return f"closed x{self.concurrency}"
        shape = "" if self.burstiness == 1.0 else f" burstiness {self.burstiness:g}"
        return f"open {self.rate_rps:g}/s{shape}"


@dataclass(frozen=True)
class LevelSummary:
    level: Level
    depth: int
    duration_s: float  # the level's planned length
    elapsed_s: float  # from the level's start to its last reply (at least duration_s for open loop)
    sent: int
    completed: int  # replies that were valid: one score per document
    errors: dict[str, int]  # kind -> count (http_<status>, timeout, connection, malformed)
    error_example: str  # the first error's detail, for the one-line report
    achieved_rps: float
    pairs_per_s: float
    latency: LatencySummary | None  # over completed requests only
    slo_ms: float | None
    goodput_rps: float | None  # completed within slo_ms, per second
    mean_in_flight: float  # time-averaged requests outstanding (sum of latencies / elapsed, Little's law)
    send_lag_p99_ms: float | None  # open loop only
    latencies_ms: tuple[float, ...]  # raw, completed requests, in request order: the sidecar's samples

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def error_fraction(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    @property
    def lag_tolerance_ms(self) -> float:
        typical = statistics.median(self.latencies_ms) if self.latencies_ms else 0.0
        return max(BEHIND_SCHEDULE_MS, BEHIND_SCHEDULE_SHARE * typical)

    @property
    def behind_schedule(self) -> bool:
        return self.send_lag_p99_ms is not None and self.send_lag_p99_ms > self.lag_tolerance_ms

    def latency_at(self, q: float) -> float | None:
        """The q-th percentile of completed latencies, or None where too few requests completed for it."""
        if len(self.latencies_ms) < min_samples_for(q):
            return None
        return percentile(list(self.latencies_ms), q)

    def meets(self, slo_ms: float, q: float = 95.0) -> tuple[bool, str]:
        """(met, why not): the q-th percentile within slo_ms, errors under 1%, the generator on schedule."""
        if self.error_fraction >= MAX_ERROR_FRACTION:
            return False, f"{self.failed} of {self.sent} requests failed"
        value = self.latency_at(q)
        if value is None:
            return False, f"p{q:g} needs {min_samples_for(q)} completed requests, got {self.completed}"
        if self.behind_schedule:
            return False, f"the generator fell behind its schedule (send lag p99 {self.send_lag_p99_ms:.0f} ms)"
        if value > slo_ms:
            return False, f"p{q:g} {value:.0f} ms > {slo_ms:g} ms"
        return True, ""

    def errors_text(self) -> str:
        """e.g. "http_503:3;timeout:1"; empty when none."""
        return ";".join(f"{kind}:{count}" for kind, count in sorted(self.errors.items()))


def summarize_level(
    outcomes: list[Outcome], level: Level, depth: int, duration_s: float, slo_ms: float | None = None
) -> LevelSummary:
    ok = [o for o in outcomes if o.kind == "ok"]
    failed = [o for o in outcomes if o.kind != "ok"]
    last = max((o.done_s for o in outcomes), default=0.0)
    elapsed = max(last, duration_s) if level.mode == "open" else (last or duration_s)
    latencies = [o.latency_ms for o in ok]
    in_flight = sum(o.done_s - o.sent_s for o in outcomes) / elapsed if elapsed > 0 else 0.0
    lag = percentile([o.lag_ms for o in outcomes], 99) if level.mode == "open" and outcomes else None
    goodput = None
    if slo_ms is not None:
        goodput = sum(1 for v in latencies if v <= slo_ms) / elapsed if elapsed > 0 else 0.0
    return LevelSummary(
        level=level,
        depth=depth,
        duration_s=duration_s,
        elapsed_s=elapsed,
        sent=len(outcomes),
        completed=len(ok),
        errors=dict(Counter(o.kind for o in failed)),
        error_example=failed[0].detail if failed else "",
        achieved_rps=len(ok) / elapsed if elapsed > 0 else 0.0,
        pairs_per_s=len(ok) * depth / elapsed if elapsed > 0 else 0.0,
        latency=summarize_latencies(latencies) if latencies else None,
        slo_ms=slo_ms,
        goodput_rps=goodput,
        mean_in_flight=in_flight,
        send_lag_p99_ms=lag,
        latencies_ms=tuple(latencies),
    )
