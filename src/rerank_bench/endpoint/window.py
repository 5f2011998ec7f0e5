"""When an open-loop level stops: the window it measures, the looks at which it is judged, and the early stop
of a level that has plainly failed.

A level sends `warmup` untimed arrivals at its own rate first (the queue fills as it will in the window), then
the window's arrivals, and keeps sending after them (a cool-down, so the window's last requests meet the same
load as its first) until every window request has its reply. Only then is the window judged. With an SLO, an
undecided window grows to the next look (n, 2n, 4n ... within --max-level-s); a window whose count over the
SLO already makes it fail (replies over it, failures, and requests still out that are older than it) stops at
once, as `saturated` when requests were piling up. The count is taken at its effective size where the overs
cluster (common/slo.py), except on a piling level, whose overs are one run growing with its queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rerank_bench.common.slo import SequentialPlan, Verdict, fail_is_certain, slo_test_in_order
from rerank_bench.endpoint.loadgen import Outcome
from rerank_bench.endpoint.summary import LevelState, Window


@dataclass(frozen=True)
class WindowPlan:
    warmup: int  # untimed arrivals before the window
    looks: tuple[int, ...]  # window sizes at which the level is judged (one, without an SLO)
    max_s: float  # no look whose window would end after this many seconds from the level's start
    slo_ms: float | None = None
    q: float = 95.0
    confidence: float = 0.95

    @property
    def sequential(self) -> SequentialPlan:
        return SequentialPlan(self.q, self.looks, self.confidence)

    def arrivals_needed(self) -> int:
        """Arrivals to schedule: warm-up, the largest window, and as many again for the cool-down."""
        return self.warmup + 2 * self.looks[-1]


class WindowJudge:
    """The open loop's stop rule (loadgen.StopRule): stateful, fed one reply at a time."""

    def __init__(self, plan: WindowPlan, arrivals: Sequence[float]) -> None:
        self.plan = plan
        self.arrivals = arrivals
        self.look = 0
        self.stopped = ""
        self.decided = False
        self._over: dict[int, bool] = {}  # window request -> over the SLO (or failed), as replies come in
        self._done_in = 0
        self._over_in = 0  # of those, over the SLO or failed
        self._asked: tuple[int, int, bool] | None = None  # (window, known over, piling) at the last fail test
        self._confidence = plan.sequential.look_confidence
        self._cut: int | None = None  # window requests scheduled before a time limit stopped the level

    @property
    def size(self) -> int:
        return self.plan.looks[self.look]

    def _inside(self, index: int) -> bool:
        return self.plan.warmup <= index < self.plan.warmup + self.size

    def window(self) -> Window:
        first = self.plan.warmup
        size = self.size if self._cut is None else max(1, self._cut)
        end = first + size
        start = self.arrivals[first - 1] if first > 0 else 0.0
        stop = self.arrivals[end - 1] if end - 1 < len(self.arrivals) else self.arrivals[-1]
        # n arrivals span n gaps: from the warm-up's last arrival to the window's last
        return Window(first, size, max(stop - start, 1e-9), self.stopped)

    def __call__(self, outcome: Outcome | None, outstanding: Mapping[int, float], now: float) -> bool:
        slo = self.plan.slo_ms
        if outcome is not None and self.plan.warmup <= outcome.index < self.plan.warmup + self.plan.looks[-1]:
            over = (not outcome.ok) or (slo is not None and outcome.latency_ms > slo)
            self._over[outcome.index] = over
            if self._inside(outcome.index):
                self._done_in += 1
                self._over_in += over
        if slo is not None:
            late = {i for i, due in outstanding.items() if self._inside(i) and (now - due) * 1000.0 > slo}
            piling = self._done_in < self.size and len(outstanding) > max(4, 0.1 * self.size)
            # the requests known over only ever join (one late while out is over when it replies), so the same
            # count is the same list and the same answer: asked after every reply and every tick, the test over
            # the whole window (10 ms at 2,000 requests here) runs only when an over joined, not 17 times a
            # second (the generator shares the server's cores on a small machine)
            asked = (self.size, self._over_in + len(late), piling)
            if asked != self._asked:
                self._asked = asked
                known = [self._over.get(i, False) or i in late for i in self._indices()]
                # a queue that keeps growing puts every later request over: one run to the end, not an episode
                # that passed, so a piling level is judged as independent trials (else it would run to its limit)
                failed = fail_is_certain(known, self.plan.q, self._confidence, clustered=not piling)
            else:
                failed = False
            if failed:
                if self._done_in < self.size:
                    self.stopped = LevelState.SATURATED if piling else LevelState.STOPPED
                self.decided = True
                return True
        if self._done_in < self.size:
            if now > self.plan.max_s:
                # the window ends where sending stopped: it is what was scheduled before the limit
                first = self.plan.warmup
                self._cut = sum(1 for t in self.arrivals[first : first + self.size] if t <= now)
                self.stopped = LevelState.TIME_LIMIT
                return True
            return False
        if slo is None:
            return True
        verdict = slo_test_in_order([self._over[i] for i in self._indices()], self.plan.q, self._confidence).verdict
        if verdict != Verdict.UNDECIDED or self.look + 1 >= len(self.plan.looks):
            self.decided = True
            return True
        next_end = self.plan.warmup + self.plan.looks[self.look + 1] - 1
        if next_end >= len(self.arrivals) or self.arrivals[next_end] > self.plan.max_s:
            return True  # undecided, and no longer look fits in the level's time
        self.look += 1
        self._done_in = sum(1 for i in self._indices() if i in self._over)
        self._over_in = sum(1 for i in self._indices() if self._over.get(i))
        return False

    def _indices(self) -> range:
        return range(self.plan.warmup, self.plan.warmup + self.size)
