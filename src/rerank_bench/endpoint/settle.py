"""Before a level: is the server answering one request at a time as fast as it did at the start?

Draining the server's queue (run.drain) does not show that the server is idle. A server can empty its queue and
still be busy: with requests whose clients gave up (a level stops with requests still out, and the server may go
on computing them), with a batch it took before the queue emptied, or with the host itself slowed. So before each
level a few requests are sent one at a time; the level starts once their median is within SETTLE_FACTOR of the
unloaded time measured at the depth's start, or when the wait runs out, and either way the level's row says what
they found (idle_before_ms, settle_s), so a level that started on a slow server is seen as one. (Asked after a
search against infinity stepped down below rates it had just held; measured since, infinity answered one at a
time at 0.91-1.32x its one-client p50 after every overloaded level, so no level waited:
benchmarks/endpoint_settle_infinity.py. A server that computes what a client abandoned would show here; TEI at
least drops a queued request whose client is gone, core/src/queue.rs. The probes cost three requests a level.)

Pure logic over an injected probe (one request, its time in ms, or None when it did not complete), so tests drive
it with a list of times and the command line with the server.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

SETTLE_PROBES = 3  # the median of this many one-at-a-time requests is the server's idle time before a level
# Within this factor of the depth's unloaded time counts as idle: one client's p95/p50 is 1.3-1.4 against infinity
# (TinyBERT, 2026-12-04), so the median of three on an idle server stays well inside it.
SETTLE_FACTOR = 1.5
SETTLE_WAIT_S = 30.0  # default --settle-wait-s: how long a level waits for the server to answer at its idle speed
FAILED_PROBE_PAUSE_S = 0.5  # after a probe that failed: a server answering errors at once is not hammered


@dataclass(frozen=True)
class Settle:
    idle_ms: float | None  # median of the last SETTLE_PROBES probes that completed (None: none did)
    waited_s: float  # from the first probe to the decision
    probes: int  # requests sent
    settled: bool  # the median came within factor x reference
    reference_ms: float

    @property
    def ratio(self) -> float | None:
        return self.idle_ms / self.reference_ms if self.idle_ms is not None and self.reference_ms > 0 else None

    def note(self, label: str) -> str:
        """One line for stderr when the level starts on a server slower than at the start."""
        if self.settled:
            return ""
        if self.idle_ms is None:
            return f"before {label}: no probe request completed in {self.waited_s:.0f} s; measuring anyway"
        return (
            f"before {label}: the server answered one request at a time in {self.idle_ms:.0f} ms (median of the "
            f"last {SETTLE_PROBES}), {self.ratio:.1f}x its {self.reference_ms:.0f} ms at the start, after waiting "
            f"{self.waited_s:.0f} s; measuring anyway (the row's idle_before_ms says so)"
        )


async def settle(
    probe: Callable[[], Awaitable[float | None]],
    reference_ms: float,
    wait_s: float = SETTLE_WAIT_S,
    factor: float = SETTLE_FACTOR,
    probes: int = SETTLE_PROBES,
    clock: Callable[[], float] = time.monotonic,
) -> Settle:
    """Probe until the median of the last `probes` completed probes is within factor x reference_ms, or until
    wait_s has passed since the first (at least `probes` are sent either way, so every level gets its idle time)."""
    start = clock()
    times: list[float] = []
    sent = 0
    while True:
        ms = await probe()
        sent += 1
        if ms is not None:
            times.append(ms)
        else:
            await asyncio.sleep(FAILED_PROBE_PAUSE_S)
        recent = times[-probes:]
        idle = statistics.median(recent) if recent else None
        waited = clock() - start
        if len(recent) >= probes and idle is not None and idle <= factor * reference_ms:
            return Settle(idle, waited, sent, True, reference_ms)
        if sent >= probes and waited >= wait_s:
            return Settle(idle, waited, sent, False, reference_ms)
