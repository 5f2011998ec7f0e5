"""One load level's figures from its raw outcomes. Pure: no clocks, no I/O; the statistics are the shared ones
(common/stats.py), so a served p95 means what an in-process p95 means.

Latency is over everything the level's window sent: a failed, timed-out or abandoned request counts as slower
than any reply (inf), so a server that sheds load with fast 503s cannot read faster than one that serves it, and
a percentile that falls on failures is shown as failed. The figures over completed requests only are kept
beside them (`completed_*`), never instead of them.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from rerank_bench.common.slo import SloTest, Verdict, slo_test_in_order, trend_rises
from rerank_bench.common.stats import CONFIDENCE, LatencySummary, percentile, summarize_latencies
from rerank_bench.common.thresholds import MAX_ERROR_FRACTION
from rerank_bench.common.vocab import ErrorKind
from rerank_bench.endpoint.loadgen import Outcome
from rerank_bench.endpoint.settle import Settle

# The generator fell behind its own schedule when the 99th percentile of its send lag passes 10 ms or 2% of the
# level's median latency, whichever is larger: requests then go out later than the offered rate says, and
# the level is marked rather than silently slowed down. (Latency counts from the scheduled time, so a lag
# hides nothing; what it can do is bunch the sends, which matters in proportion to the latencies measured:
# on a 2-core machine shared with the server, wake-ups 10-30 ms late are routine beside 2 s replies.)
BEHIND_SCHEDULE_MS = 10.0
BEHIND_SCHEDULE_SHARE = 0.02
# A level whose generator fell behind can still be the server's fail: each request timed from when it actually
# went out, less the level's send-lag p99 (what bunched sends could have added to its wait, at most), and the
# count test still fails for certain. On a 2-core host shared with the server, an overloaded server starves the
# generator too (infinity, 2026-12-04: p95 8-15 s with the send lag p99 at 0.2 s): that level is a fail, not
# "the client's fault". Anything less certain stays invalid.


class LevelState(StrEnum):
    STEADY = "steady"
    NOT_STEADY = "not steady"  # latency still rising through the window: the queue had not settled
    SATURATED = "saturated"  # stopped early: the SLO failed for certain while requests piled up
    STOPPED = "stopped early"  # stopped early: the SLO failed for certain
    TIME_LIMIT = "time limit"  # --max-level-s ran out before a decision


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
        return f"open {self.rate_rps:.3g}/s{shape}"


@dataclass(frozen=True)
class Window:
    """Which of a level's requests are measured, and over how long: open loop, the requests scheduled inside
    the window (after the warm-up, before the cool-down); closed loop, all of them."""

    first: int  # request index of the window's first request
    size: int  # requests in the window
    length_s: float  # scheduled time the window spans (open loop), or the level's elapsed time (closed loop)
    stopped: str = ""  # a LevelState when the level did not end by its plan (early, or at its time limit)


@dataclass(frozen=True)
class ServerView:
    """What the server says of the level: its per-request timing headers (TEI) and its Prometheus counters."""

    times_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (p50, p95) over replies
    mean_ms: float | None = None  # server-side mean request time over the level (metrics)
    batch_mean: float | None = None  # mean batch size the server ran (metrics, where exposed)
    source: str = ""  # "headers", "metrics", "headers+metrics" or ""
    cpu_cores: float | None = None  # the serving process's CPU over the level, in cores (metrics, where exposed)
    cpu_ms_per_request: float | None = None  # its CPU time a request it counted in that time


@dataclass(frozen=True)
class LevelSummary:
    level: Level
    depth: int
    window: Window
    sent: int  # requests in the window
    completed: int  # valid replies: one score per document
    errors: dict[str, int]  # kind -> count (http_<status>, timeout, connection, malformed, client, abandoned)
    error_example: str  # the first error's detail, for the one-line report
    latency: LatencySummary | None  # over every request in the window, failures as inf
    completed_latency: LatencySummary | None  # over completed requests only
    slo_ms: float | None
    q: float
    slo: SloTest | None  # the count over the SLO and its verdict
    goodput_rps: float | None  # completed within slo_ms, per second of window
    mean_in_flight: float  # time-averaged requests outstanding (sum of latencies / window, Little's law)
    send_lag_p99_ms: float | None  # open loop only
    state: str  # a LevelState
    connections_opened: int = 0  # connections the window had to open (after pre-opening: none, ideally)
    connect_mean_ms: float | None = None
    server: ServerView = field(default_factory=ServerView)
    latencies_ms: tuple[float, ...] = ()  # raw, every window request in request order, inf for failures
    settle: Settle | None = None  # the server one request at a time just before the level (endpoint/settle.py)
    # what the level was for in a capacity search ("", a fixed level): its row says it, so a bare CSV reads alone
    role: str = ""
    loadgen_cpu_cores: float | None = None  # the load generator's own CPU over the level, in cores
    # the count over the SLO with each request timed from its actual send, less the send-lag p99 (open loop,
    # with an SLO): where the generator fell behind, a fail here is the server's all the same
    slo_as_sent: SloTest | None = None

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def error_fraction(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    @property
    def client_errors(self) -> int:
        return self.errors.get(ErrorKind.CLIENT, 0)

    @property
    def scheduled_rps(self) -> float | None:
        if self.level.mode != "open" or self.window.length_s <= 0:
            return None
        return self.sent / self.window.length_s

    @property
    def achieved_rps(self) -> float:
        return self.completed / self.window.length_s if self.window.length_s > 0 else 0.0

    @property
    def pairs_per_s(self) -> float:
        return self.achieved_rps * self.depth

    @property
    def completed_latencies_ms(self) -> list[float]:
        return [v for v in self.latencies_ms if not math.isinf(v)]

    @property
    def lag_tolerance_ms(self) -> float:
        done = self.completed_latencies_ms
        typical = statistics.median(done) if done else 0.0
        return max(BEHIND_SCHEDULE_MS, BEHIND_SCHEDULE_SHARE * typical)

    @property
    def behind_schedule(self) -> bool:
        return self.send_lag_p99_ms is not None and self.send_lag_p99_ms > self.lag_tolerance_ms

    @property
    def verdict(self) -> Verdict | None:
        """The level against its SLO: invalid where the client failed, or fell behind and the server's fail is
        not certain without it; None without an SLO."""
        if self.slo is None:
            return None
        if self.client_errors:
            return Verdict.INVALID
        if self.behind_schedule:
            return Verdict.FAIL if self.server_failed_as_sent else Verdict.INVALID
        return self.slo.verdict

    @property
    def server_failed_as_sent(self) -> bool:
        """The server missed the SLO for certain even on the requests as the lagging generator sent them."""
        return self.slo_as_sent is not None and self.slo_as_sent.verdict == Verdict.FAIL

    def meets(self) -> tuple[bool, str]:
        """(met, why not) against the level's own SLO: a pass of the count test, errors under 1%, the generator
        on schedule, the client sound."""
        if self.slo is None or self.slo_ms is None:
            return False, "no SLO"
        if self.client_errors:
            return False, f"{self.client_errors} requests failed in the client itself: the level says nothing"
        if self.behind_schedule:
            lag = f"send lag p99 {self.send_lag_p99_ms:.0f} ms"
            if self.server_failed_as_sent and self.slo_as_sent is not None:
                return False, (
                    f"the server missed it even on the requests as sent, each less the generator's {lag}: "
                    + self.slo_as_sent.why(self.q, self.slo_ms)
                )
            return False, f"the generator fell behind its schedule ({lag})"
        if self.error_fraction >= MAX_ERROR_FRACTION:
            return False, f"{self.failed} of {self.sent} requests failed ({self.errors_text()})"
        if self.slo.verdict != Verdict.PASS:
            return False, self.slo.why(self.q, self.slo_ms)
        return True, ""

    def errors_text(self) -> str:
        """e.g. "http_503:3;timeout:1"; empty when none."""
        return ";".join(f"{kind}:{count}" for kind, count in sorted(self.errors.items()))


def _server_view(outcomes: list[Outcome], metrics: dict[str, float] | None) -> ServerView:
    named: dict[str, list[float]] = {}
    for o in outcomes:
        if o.ok:
            for name, value in o.server_ms:
                named.setdefault(name, []).append(value)
    times = {name: (percentile(v, 50), percentile(v, 95)) for name, v in named.items() if v}
    metrics = metrics or {}
    sources = [s for s, present in (("headers", times), ("metrics", metrics)) if present]
    mean = metrics.get("mean_ms")
    if mean is None and "total" in named:
        mean = statistics.fmean(named["total"])
    return ServerView(
        times,
        mean,
        metrics.get("batch_mean"),
        "+".join(sources),
        metrics.get("cpu_cores"),
        metrics.get("cpu_ms_per_request"),
    )


def summarize_level(
    outcomes: list[Outcome],
    level: Level,
    depth: int,
    window: Window,
    slo_ms: float | None = None,
    q: float = 95.0,
    confidence: float | None = None,
    connections: tuple[int, float | None] = (0, None),
    metrics: dict[str, float] | None = None,
) -> LevelSummary:
    """The level's figures over the requests of its window (outcomes outside it are warm-up or cool-down)."""
    inside = sorted(
        (o for o in outcomes if window.first <= o.index < window.first + window.size), key=lambda o: o.index
    )
    ok = [o for o in inside if o.ok]
    failed = [o for o in inside if not o.ok]
    latencies = [o.latency_ms for o in inside]
    length = window.length_s
    test = None
    goodput = None
    # in send order, so clustered overs count at their effective size; a saturated level's queue grew to the
    # end (one run that is not an episode), so it is counted as independent trials, as its early stop was
    confidence = CONFIDENCE if confidence is None else confidence
    clustered = window.stopped != LevelState.SATURATED
    if slo_ms is not None and inside:
        test = slo_test_in_order([v > slo_ms for v in latencies], q, confidence, clustered=clustered)
        goodput = sum(1 for v in latencies if v <= slo_ms) / length if length > 0 else 0.0
    lag = percentile([o.lag_ms for o in inside], 99) if level.mode == "open" and inside else None
    as_sent = None
    if test is not None and lag is not None and slo_ms is not None:
        as_sent = slo_test_in_order(
            [not o.ok or (o.done_s - o.sent_s) * 1000.0 - lag > slo_ms for o in inside], q, confidence, clustered
        )
    state = window.stopped or (LevelState.NOT_STEADY if trend_rises(latencies) else LevelState.STEADY)
    count, connect_ms = connections
    return LevelSummary(
        level=level,
        depth=depth,
        window=window,
        sent=len(inside),
        completed=len(ok),
        errors=dict(Counter(o.kind for o in failed)),
        error_example=failed[0].detail if failed else "",
        # in send order: a served level's latencies are correlated, so its intervals hold the batch-means ones
        latency=summarize_latencies(latencies, "requests", in_order=True) if latencies else None,
        completed_latency=summarize_latencies([o.latency_ms for o in ok], "requests", in_order=True) if ok else None,
        slo_ms=slo_ms,
        q=q,
        slo=test,
        slo_as_sent=as_sent,
        goodput_rps=goodput,
        mean_in_flight=sum(o.reply_ms for o in inside) / 1000.0 / length if length > 0 else 0.0,
        send_lag_p99_ms=lag,
        state=state,
        connections_opened=count,
        connect_mean_ms=connect_ms,
        server=_server_view(inside, metrics),
        latencies_ms=tuple(latencies),
    )
