"""`will-it-run --rate`: one serving replica under load, simulated event by event.

Requests arrive (seeded Poisson, gamma gaps of a chosen burstiness, or a replayed trace), their query-document
pairs queue, and the server forms batches as the chosen server does; each batch costs what the latency model
says for its padded shape on the device (`cost_ms`, calibrated where rows exist), varied by a lognormal factor
of mean 1 (`Conditions.service_sigma`: a real batch never takes the same time twice, and that spread is what
drives a p95), and a request's reply leaves when the batch holding its last pair ends. The servers:

- `per-request`: one request at a time, its pairs in batches of `batch_size` as CrossEncoder.predict forms
  them (a plain Python service around the model).
- `infinity` (0.0.78): pairs from every queued request. Its publisher thread (inference/batch_handler.py,
  `_publish_towards_model`) pops up to 8 x batch_size of the oldest pairs, sorts them by length
  (`pop_optimal_batches`) and hands them on as batches of `batch_size`; it pops again as soon as its hand-off
  queue is empty, which happens while the model still has batches to run: a tokenizing thread and a
  3-batch feature queue sit between them. So batches are formed ahead of the model (up to
  INFINITY_AHEAD of them waiting), from whatever has arrived by then, and only a backlog makes them large:
  with the hand-off queue not yet full, a queue of 8 x batch_size pairs is popped at once.
- `tei`: pairs from every queued request, oldest first, while the batch stays within `max_batch_tokens`
  (text-embeddings-inference's core/src/queue.rs). Its batching task reserves the one slot of a channel of
  capacity 1 to the backend before it forms a batch (core/src/infer.rs, `batching_task`), so one batch is
  formed ahead: as soon as the model takes the last one, from whatever has arrived by then (`prefetch`; off,
  the next batch would wait for the model to finish, which makes batches larger than TEI's at moderate
  load). Its padded backends (CPU, and GPUs without flash attention) count the longest pair times the batch's
  size; the flash-attention ones count real tokens.

The simulation is pure and seeded: the same inputs give the same answer. The queue starts empty, so the
first requests wait less than the rest; how many to drop is decided per run by MSER-5 (White 1997: the
truncation that minimises the standard error of the remaining batch-of-5 means, at most half the run), not a
fixed fraction. Its p95 comes with a confidence interval by batch means (the latencies of a queue are
correlated, so a bootstrap over single requests would be too narrow): ten consecutive blocks, the p95 of each,
a t interval over the ten. A capacity is searched once per seed (SEEDS of them): the median is the figure,
the seeds' range its spread, and the search stops at the precision that spread allows.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import accumulate, repeat
from operator import itemgetter
from typing import Protocol

from rerank_bench.common.arrivals import unit_gaps
from rerank_bench.common.stats import batch_means_interval, percentile
from rerank_bench.common.vocab import ServerKind
from rerank_bench.willrun.latency_model import batches_of

SERVERS = (ServerKind.TEI, ServerKind.INFINITY, ServerKind.PER_REQUEST)  # the ones simulated
INFINITY_BATCHES_PER_POP = 8  # infinity's publisher pops 8 x batch_size items (max_n_batches = 8), sorted
INFINITY_AHEAD = 4  # batches held between infinity's publisher and the model: 1 tokenizing + a feature queue of 3
INFINITY_HANDOFF = 8  # its hand-off queue (Queue(8)): with a backlog it fills up to this many more
DEFAULT_REQUESTS = 3000  # simulated requests per rate: enough for a p95 with a tight interval
MSER_BATCH = 5  # MSER-5: the warm-up is chosen over means of 5 consecutive latencies
MIN_WARMUP_FRACTION = 0.02  # the very first requests meet an idle server whatever MSER says
# How fast a server left empty goes idle: a request arriving g ms after the server emptied waits
# idle_wake_ms * (1 - exp(-g / IDLE_WAKE_TAU_MS)) more. Measured against infinity (TinyBERT-L2, batch 8, one
# client pausing between requests, benchmarks/idle_wake_infinity.py, 2026-12-04 10:01, three rounds): p50 +0-1
# ms after pauses up to 5 ms, +2.5 after 10, +4.1 after 20, +5.7-6.7 after 50-200, +8.0 after 500; least squares
# over the pauses up to 200 ms: 6.5 ms x (1 - exp(-pause / 21 ms)). Closed x1 (no pause) never pays it, an open
# level at a light rate nearly always does: the wake time itself is fitted per server from such a level.
IDLE_WAKE_TAU_MS = 20.0
SEARCH_REQUESTS = 1200  # simulated requests per try of a capacity search, per seed
SEEDS = 5  # independent arrival streams per capacity: their median is the figure, their range its spread

CostFn = Callable[[tuple[int, ...]], float]  # a batch's pair token lengths -> milliseconds


@dataclass(frozen=True)
class ServerPolicy:
    kind: ServerKind  # one of SERVERS
    batch_size: int = 32  # per-request: CrossEncoder's batch; infinity: its --batch-size
    max_batch_tokens: int = 16384  # tei: --max-batch-tokens
    padded: bool = True  # tei: the budget counts padded tokens (longest x batch), as TEI's padded backends do
    prefetch: bool = True  # tei: one batch formed while the model runs the last (TEI's channel of 1)

    def batch_tokens(self, count: int, longest: int, total: int) -> int:
        """What TEI counts against max_batch_tokens for a batch of `count` pairs."""
        return count * longest if self.padded else total

    def setting(self) -> str:
        """The server's own knob as a short label (`batch 8`, `max-batch-tokens 4096`); empty for per-request."""
        if self.kind == ServerKind.INFINITY:
            return f"batch {self.batch_size}"
        return f"max-batch-tokens {self.max_batch_tokens}" if self.kind == ServerKind.TEI else ""

    def describe(self) -> str:
        if self.kind == ServerKind.TEI:
            counted = "padded" if self.padded else "real"
            return f"tei (batches across requests up to {self.max_batch_tokens} {counted} tokens)"
        if self.kind == ServerKind.INFINITY:
            return f"infinity (batches of {self.batch_size} pairs across requests, sorted by length)"
        return f"one request at a time (batches of {self.batch_size} of its pairs)"


@dataclass(frozen=True)
class Conditions:
    """What the simulated replica meets besides its rate: how requests arrive, and how much a batch's time
    varies around its modelled cost."""

    burstiness: float = 1.0  # gamma shape of the gaps (1: Poisson), as endpoint --burstiness
    trace_gaps: tuple[float, ...] | None = None  # a replayed trace's gaps scaled to mean 1 (overrides burstiness)
    service_sigma: float = 0.0  # lognormal sigma of a batch's time around its cost (mean kept; 0: fixed)
    request_overhead_ms: float = 0.0  # added to every reply outside the model (a server's HTTP and JSON)
    request_cpu_ms: float = 0.0  # a server's own work per request that keeps the model waiting (a shared CPU)
    # (fast end, slow end) where the spread is known only within a range (a served fit's levels disagreeing):
    # a plan's range ends are simulated at them, its central figures at service_sigma
    service_sigma_ends: tuple[float, float] | None = None
    # a request that finds the server empty waits this long, at most, before the server takes it up: its
    # threads and cores have gone idle (see IDLE_WAKE_TAU_MS); 0 for a server that is always ready
    idle_wake_ms: float = 0.0

    def ends(self) -> tuple[Conditions, Conditions]:
        """What a plan's fast and slow ends meet: these conditions at each end's spread, where they are given."""
        if self.service_sigma_ends is None:
            return self, self
        fast, slow = self.service_sigma_ends
        return (
            replace(self, service_sigma=fast, service_sigma_ends=None),
            replace(self, service_sigma=slow, service_sigma_ends=None),
        )

    def describe(self) -> str:
        parts = []
        if self.trace_gaps is not None:
            parts.append(f"arrivals replayed from a trace of {len(self.trace_gaps) + 1} timestamps")
        elif self.burstiness != 1.0:
            parts.append(f"arrivals of burstiness {self.burstiness:g}")
        if self.service_sigma > 0:
            parts.append(f"batch times varying by sigma {self.service_sigma:.2f}")
        if self.request_overhead_ms:
            parts.append(f"{self.request_overhead_ms:+.0f} ms a request outside the model")
        if self.request_cpu_ms:
            parts.append(f"{self.request_cpu_ms:.1f} ms a request of the server's own work beside the model")
        if self.idle_wake_ms:
            parts.append(f"up to {self.idle_wake_ms:.1f} ms more for a request that finds the server idle")
        return ", ".join(parts)

    def busy(self) -> Conditions:
        """These conditions for a closed loop of one client: the next request arrives as the last reply leaves,
        so it never finds the server gone idle."""
        return replace(self, idle_wake_ms=0.0)


PLAIN = Conditions()  # Poisson arrivals, fixed batch times: the defaults


def trace_gaps(timestamps_s: list[float]) -> tuple[float, ...]:
    """A trace's gaps between consecutive timestamps, scaled to mean 1, so any rate replays its shape. Needs two
    distinct timestamps; out-of-order lines are sorted (logs interleave)."""
    ordered = sorted(timestamps_s)
    span = ordered[-1] - ordered[0] if len(ordered) >= 2 else 0.0
    if span <= 0:
        raise ValueError("a trace needs at least two distinct timestamps")
    mean = span / (len(ordered) - 1)
    return tuple((b - a) / mean for a, b in zip(ordered, ordered[1:], strict=False))


@dataclass
class SimResult:
    rate_rps: float
    latencies_ms: list[float]  # after warm-up, in arrival order
    utilisation: float  # busy time / simulated time
    simulated_s: float
    stable: bool  # False: the queue grew through the run (the rate is above what the server holds)
    mean_batch_pairs: float
    warmup_requests: int = 0  # dropped from the start (MSER-5)
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p95_ci_ms: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        self.p50_ms = percentile(self.latencies_ms, 50)
        self.p95_ms = percentile(self.latencies_ms, 95)
        self.p95_ci_ms = p95_interval(self.latencies_ms)


def p95_interval(latencies: list[float]) -> tuple[float, float]:
    """The reported p95 with its batch-means interval (common/stats.py): a simulated queue's latencies are
    correlated, so a bootstrap over single requests would be too narrow. Fewer than 20 a block: no interval."""
    value = percentile(latencies, 95)
    return batch_means_interval(latencies, 95) or (value, value)


def _pairs_that_fit(
    policy: ServerPolicy, have: int, longest: int, total: int, widths: list[int], sums: list[int]
) -> int:
    """How many of a request's next pairs join a TEI batch of `have` pairs: widths and sums are the running
    max and sum of those pairs' lengths, so the batch's count grows with k and a binary search finds it."""

    def tokens(k: int) -> int:
        return policy.batch_tokens(have + k, max(longest, widths[k - 1]), total + sums[k - 1])

    return bisect_right(range(1, len(widths) + 1), policy.max_batch_tokens, key=tokens)


def one_request_ms(lengths: list[int], cost_ms: CostFn, batch_size: int) -> float:
    """One request served alone, its pairs batched as CrossEncoder.predict batches them (longest first)."""
    return sum(cost_ms(tuple(batch)) for batch in batches_of(lengths, batch_size))


Item = tuple[int, int]  # (pair length, request)
Batch = list[Item]


class PairQueue:
    """Requests waiting at the server, oldest first, each with how many of its pairs are already taken: pairs
    move in slices, not one by one (a capacity search runs a dozen simulations a device)."""

    def __init__(self, requests: list[list[int]]) -> None:
        self.requests = requests
        self.entries: deque[list[int]] = deque()  # [request, pairs already taken]
        self.queued = 0  # pairs waiting

    def own(self, request: int) -> list[int]:
        return self.requests[request % len(self.requests)]

    def admit(self, request: int) -> None:
        self.entries.append([request, 0])
        self.queued += len(self.own(request))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def take(self, limit: int) -> Batch:
        """Up to `limit` pairs, oldest request first, in each request's own order."""
        out: Batch = []
        while self.entries and len(out) < limit:
            entry = self.entries[0]
            request, offset = entry
            own = self.own(request)
            k = min(limit - len(out), len(own) - offset)
            out.extend(zip(own[offset : offset + k], repeat(request)))
            if offset + k == len(own):
                self.entries.popleft()
            else:
                entry[1] = offset + k
        self.queued -= len(out)
        return out

    def take_request(self) -> Batch:
        """The oldest request whole, longest pair first (CrossEncoder.predict's order)."""
        request, _ = self.entries.popleft()
        items = list(zip(sorted(self.own(request), reverse=True), repeat(request)))
        self.queued -= len(items)
        return items

    def take_within(self, policy: ServerPolicy) -> Batch:
        """Pairs in arrival order while the batch stays within TEI's token budget (the first always goes).
        Within a request, how many of its pairs still fit is a binary search over its running max and sum."""
        out: Batch = []
        longest = total = 0
        while self.entries:
            entry = self.entries[0]
            request, offset = entry
            rest = self.own(request)[offset:]
            widths, sums = list(accumulate(rest, max)), list(accumulate(rest))
            fits = _pairs_that_fit(policy, len(out), longest, total, widths, sums)
            if fits == 0 and not out:
                fits = 1
            if fits:
                out.extend(zip(rest[:fits], repeat(request)))
                longest, total = max(longest, widths[fits - 1]), total + sums[fits - 1]
            self.queued -= fits
            if fits < len(rest):
                entry[1] = offset + fits
                return out
            self.entries.popleft()
        return out


def _split(items: Batch, size: int) -> list[Batch]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Batcher(Protocol):
    """How one server turns its queue into batches, and when it may form more."""

    def form(self, queue: PairQueue) -> list[Batch]: ...

    def may_form(self, ahead: int, core_idle: bool, queue: PairQueue) -> bool: ...


@dataclass(frozen=True)
class PerRequestBatcher:
    batch_size: int

    def form(self, queue: PairQueue) -> list[Batch]:
        return _split(queue.take_request(), self.batch_size)

    def may_form(self, ahead: int, core_idle: bool, queue: PairQueue) -> bool:
        return ahead == 0 and core_idle  # the next request is taken when the last one is done


@dataclass(frozen=True)
class InfinityBatcher:
    batch_size: int

    def form(self, queue: PairQueue) -> list[Batch]:
        items = queue.take(INFINITY_BATCHES_PER_POP * self.batch_size)
        if len(items) > self.batch_size:
            items.sort(key=itemgetter(0))
        return _split(items, self.batch_size)

    def may_form(self, ahead: int, core_idle: bool, queue: PairQueue) -> bool:
        """Ahead of the model: up to INFINITY_AHEAD batches always, the hand-off queue's more on a backlog."""
        if ahead <= INFINITY_AHEAD:
            return True
        backlog = queue.queued >= INFINITY_BATCHES_PER_POP * self.batch_size
        return ahead < INFINITY_AHEAD + INFINITY_HANDOFF and backlog


@dataclass(frozen=True)
class TeiBatcher:
    policy: ServerPolicy

    def form(self, queue: PairQueue) -> list[Batch]:
        return [queue.take_within(self.policy)]

    def may_form(self, ahead: int, core_idle: bool, queue: PairQueue) -> bool:
        # with prefetch, as soon as the model has taken the last formed batch; without, once it is done with it
        return ahead == 0 and (core_idle or self.policy.prefetch)


def batcher_for(policy: ServerPolicy) -> Batcher:
    if policy.kind == ServerKind.PER_REQUEST:
        return PerRequestBatcher(policy.batch_size)
    if policy.kind == ServerKind.INFINITY:
        return InfinityBatcher(policy.batch_size)
    return TeiBatcher(policy)


class Replica:
    """One server and its model: requests arrive at given times, the batcher forms batches, the model runs
    them one at a time at what `cost_ms` says; a request is done when the batch holding its last pair ends."""

    def __init__(
        self,
        requests: list[list[int]],
        cost_ms: CostFn,
        batcher: Batcher,
        arrivals: list[float],
        service_sigma: float = 0.0,
        seed: int = 0,
        request_cpu_ms: float = 0.0,
        idle_wake_ms: float = 0.0,
    ) -> None:
        self.cost_ms = cost_ms
        self.request_cpu_ms = request_cpu_ms
        self.idle_wake_ms = idle_wake_ms
        self.active = 0  # requests arrived and not yet done
        self.empty_since = 0.0  # when the last of them was done
        self.sigma = service_sigma
        self.noise = random.Random(f"service-{seed}")  # its own stream: arrivals stay as they were
        self.batcher = batcher
        self.arrivals = arrivals
        self.queue = PairQueue(requests)
        self.remaining = [len(self.queue.own(i)) for i in range(len(arrivals))]
        self.done_ms = [0.0] * len(arrivals)
        self.busy_ms = 0.0
        self.batches = 0
        self.pairs = 0

    def run_batch(self, batch: Batch, start: float) -> float:
        """Runs a batch from `start`; returns when it ends."""
        cost = self.cost_ms(tuple(map(itemgetter(0), batch)))
        if self.sigma > 0:  # lognormal of mean 1: exp(N(-sigma^2/2, sigma))
            cost *= math.exp(self.noise.gauss(-self.sigma * self.sigma / 2, self.sigma))
        owners = list(map(itemgetter(1), batch))
        counts: dict[int, int]  # pairs of each request, in batch order (a plain dict: Counter costs more)
        if owners.count(owners[0]) == len(owners):  # most batches hold one request's pairs
            counts = {owners[0]: len(owners)}
        else:
            counts = {}
            for request in owners:
                counts[request] = counts.get(request, 0) + 1
        remaining = self.remaining
        if self.request_cpu_ms:  # the server's work for each request this batch completes, on the model's CPU
            cost += self.request_cpu_ms * sum(1 for r, c in counts.items() if remaining[r] == c)
        end = start + cost
        self.busy_ms += cost
        self.batches += 1
        self.pairs += len(batch)
        for request, count in counts.items():
            left = remaining[request] - count
            remaining[request] = left
            if left == 0:
                self.done_ms[request] = end
                self.active -= 1
                if self.active == 0:
                    self.empty_since = end
        return end

    def taken_up_at(self, arrived: float, pending: deque[tuple[float, int]]) -> float:
        """When the server takes up a request arriving now: at once while it is busy; after its wake time when
        the request finds it empty; never before a request that arrived earlier and is still being taken up."""
        if pending:
            return max(arrived, pending[-1][0])
        if self.active > 0 or not self.idle_wake_ms:
            return arrived
        idle = max(0.0, arrived - self.empty_since)
        return arrived + self.idle_wake_ms * (1.0 - math.exp(-idle / IDLE_WAKE_TAU_MS))

    def serve(self) -> float:
        """Every request through, event by event (arrivals and the model finishing a batch); returns the time
        the last batch ends."""
        formed: deque[Batch] = deque()  # batches formed, waiting for the model
        pending: deque[tuple[float, int]] = deque()  # (when the server takes it up, request) arrived, not yet queued
        core_free = 0.0  # when the model finishes its current batch
        now = 0.0
        next_arrival = 0
        # locals for the loop a capacity search runs a million times a fit (attribute lookups cost a third)
        arrivals, n_arrivals, queue = self.arrivals, len(self.arrivals), self.queue
        waiting = queue.entries  # the queue is non-empty while its entries are
        may_form, form, run_batch, taken_up_at = (
            self.batcher.may_form,
            self.batcher.form,
            self.run_batch,
            self.taken_up_at,
        )
        while True:
            while next_arrival < n_arrivals and arrivals[next_arrival] <= now:
                pending.append((taken_up_at(arrivals[next_arrival], pending), next_arrival))
                self.active += 1
                next_arrival += 1
            while pending and pending[0][0] <= now:
                queue.admit(pending.popleft()[1])
            while waiting and may_form(len(formed), core_free <= now, queue):
                formed.extend(b for b in form(queue) if b)
            if formed and core_free <= now:
                core_free = run_batch(formed.popleft(), now)
                continue
            upcoming = arrivals[next_arrival] if next_arrival < n_arrivals else math.inf
            if pending and pending[0][0] < upcoming:
                upcoming = pending[0][0]
            if now < core_free < upcoming:
                upcoming = core_free
            if upcoming == math.inf:
                return max(core_free, now)
            now = upcoming


def poisson_arrivals(rate_rps: float, n_requests: int, seed: int) -> list[float]:
    """Seeded Poisson arrival times, in milliseconds."""
    rng = random.Random(seed)
    arrivals: list[float] = []
    t = 0.0
    for _ in range(n_requests):
        t += rng.expovariate(rate_rps)
        arrivals.append(t * 1000.0)
    return arrivals


def arrivals_ms(rate_rps: float, n_requests: int, seed: int, conditions: Conditions = PLAIN) -> list[float]:
    """Arrival times in milliseconds: Poisson (burstiness 1, as before), gamma-distributed gaps of shape
    `burstiness`, as `endpoint --burstiness` sends them (common/arrivals.py), or a trace's gaps replayed at
    `rate_rps` (its own shape, sped up or slowed down), cycled from an offset that each seed moves."""
    if conditions.trace_gaps is not None:
        gaps = conditions.trace_gaps
        offset = (seed * 7919) % len(gaps)  # another seed replays another stretch of the trace
        unit = (gaps[(offset + i) % len(gaps)] for i in range(n_requests))
        return [t * 1000.0 / rate_rps for t in accumulate(unit)]
    if conditions.burstiness == 1.0:
        return poisson_arrivals(rate_rps, n_requests, seed)
    return [t * 1000.0 / rate_rps for t in accumulate(unit_gaps(n_requests, seed, conditions.burstiness))]


def mser_truncation(values: list[float], batch: int = MSER_BATCH) -> int:
    """MSER-k (White 1997; k = 5 is the usual choice): over means of `batch` consecutive values, the number of
    leading batches d whose removal minimises sum((b_i - mean)^2) / (m - d)^2 over the m - d left, with d at
    most half of them. Returns how many values to drop (a multiple of `batch`). Suffix sums keep it linear."""
    m = len(values) // batch
    if m < 4:
        return 0
    means = [sum(values[i * batch : (i + 1) * batch]) / batch for i in range(m)]
    total = total_sq = 0.0
    suffix: list[tuple[float, float]] = [(0.0, 0.0)] * (m + 1)
    for i in range(m - 1, -1, -1):
        total += means[i]
        total_sq += means[i] * means[i]
        suffix[i] = (total, total_sq)
    best, best_d = math.inf, 0
    for d in range(m // 2 + 1):
        n = m - d
        s1, s2 = suffix[d]
        statistic = (s2 - s1 * s1 / n) / (n * n)
        if statistic < best:
            best, best_d = statistic, d
    return best_d * batch


def replica_run(
    rate_rps: float,
    n_requests: int,
    requests: list[list[int]],
    cost_ms: CostFn,
    policy: ServerPolicy,
    seed: int,
    conditions: Conditions = PLAIN,
) -> tuple[list[float], list[float], Replica, float]:
    """`n_requests` arrivals at `rate_rps` through one replica from an empty queue: their arrival times and
    latencies (ms, every request, warm-up included), the replica, and when its last batch ended."""
    arrivals = arrivals_ms(rate_rps, n_requests, seed, conditions)
    replica = Replica(
        requests,
        cost_ms,
        batcher_for(policy),
        arrivals,
        conditions.service_sigma,
        seed,
        conditions.request_cpu_ms,
        conditions.idle_wake_ms,
    )
    end = replica.serve()
    extra = conditions.request_overhead_ms
    return arrivals, [replica.done_ms[i] - arrivals[i] + extra for i in range(n_requests)], replica, end


def simulate(
    rate_rps: float,
    requests: list[list[int]],
    cost_ms: CostFn,
    policy: ServerPolicy,
    n_requests: int = DEFAULT_REQUESTS,
    seed: int = 0,
    conditions: Conditions = PLAIN,
) -> SimResult:
    """One replica at `rate_rps`; request i carries the pair lengths of requests[i % len(requests)]. The
    warm-up dropped is MSER-5's (at least MIN_WARMUP_FRACTION, at most half the run)."""
    if rate_rps <= 0 or not requests:
        raise ValueError("need a positive rate and at least one request")
    _, every, replica, end = replica_run(rate_rps, n_requests, requests, cost_ms, policy, seed, conditions)
    start = max(int(n_requests * MIN_WARMUP_FRACTION), mser_truncation(every))
    latencies = every[start:]
    utilisation = replica.busy_ms / end if end > 0 else 0.0
    return SimResult(
        rate_rps=rate_rps,
        latencies_ms=latencies,
        utilisation=utilisation,
        simulated_s=end / 1000.0,
        stable=_stable(latencies, utilisation),
        mean_batch_pairs=replica.pairs / replica.batches if replica.batches else 0.0,
        warmup_requests=start,
    )


def _stable(latencies: list[float], utilisation: float) -> bool:
    """False for a queue that grows through the run: the last quarter waits far longer than the first (a
    stable queue's quarters differ by noise), and the server was busy nearly all the time."""
    quarter = max(1, len(latencies) // 4)
    early, late = latencies[:quarter], latencies[-quarter:]
    return not (utilisation > 0.97 and sum(late) / len(late) > 1.5 * sum(early) / len(early))


def service_bound_rps(requests: list[list[int]], cost_ms: CostFn, policy: ServerPolicy) -> float:
    """The rate at which the server would be busy all the time with its fullest batches: no replica holds
    more. Requests per second."""
    all_pairs = sorted(n for r in requests for n in r)
    if policy.kind == ServerKind.PER_REQUEST:
        total = sum(one_request_ms(r, cost_ms, policy.batch_size) for r in requests)
        return 1000.0 * len(requests) / total
    size = policy.batch_size if policy.kind == ServerKind.INFINITY else None
    total = 0.0
    i = 0
    while i < len(all_pairs):
        if size is not None:
            batch = all_pairs[i : i + size]
        else:
            batch, tokens = [], 0
            for n in all_pairs[i:]:
                if batch and policy.batch_tokens(len(batch) + 1, n, tokens + n) > policy.max_batch_tokens:
                    break
                batch.append(n)
                tokens += n
        total += cost_ms(tuple(batch))
        i += len(batch)
    return 1000.0 * len(requests) / total


@dataclass
class Capacity:
    rate_rps: float | None  # the seeds' median of the highest rate whose percentile meets the budget (None: not
    #   even unloaded)
    unloaded_ms: float  # the percentile at 1% of the service bound: an idle server
    bound_rps: float
    trials: list[tuple[float, float, bool]] = field(default_factory=list)  # (rate, the percentile, stable)
    run_s: float = 0.0
    seed_rates_rps: list[float] = field(default_factory=list)  # each seed's capacity
    precision: float = 0.0  # the relative step each seed's search stopped at

    @property
    def spread_rps(self) -> tuple[float, float] | None:
        """The seeds' lowest and highest capacity: how much one simulated run of this length moves the figure."""
        return (min(self.seed_rates_rps), max(self.seed_rates_rps)) if len(self.seed_rates_rps) > 1 else None


def find_capacity(
    requests: list[list[int]],
    cost_ms: CostFn,
    policy: ServerPolicy,
    budget_ms: float,
    n_requests: int = SEARCH_REQUESTS,
    quantile: float = 95.0,
    conditions: Conditions = PLAIN,
    seeds: int = SEEDS,
    guess_rps: float | None = None,
) -> Capacity:
    """The highest rate one replica holds: a queue that stays stable with its `quantile` latency within the
    budget. Searched once per seed (each seed a fresh arrival stream, the same at every rate of its search:
    common random numbers, so the percentile rises smoothly with the rate), by geometric bisection: the first
    seed between nearly idle (1% of the service bound) and the bound to 3%, each later one in a bracket around
    it (widened until it brackets) to a step of a quarter of the seeds' spread so far, between 1% and 5%:
    searching finer than the seeds disagree buys nothing. With `guess_rps`, the first seed also starts in a
    bracket around it. A bracket is widened while every try falls on one side. The figure is the seeds'
    median."""
    started = time.perf_counter()
    seed = 0  # seeds 0 .. seeds - 1: every device and every end of a range meets the same arrival streams
    bound = service_bound_rps(requests, cost_ms, policy)
    idle = simulate(bound * 0.01, requests, cost_ms, policy, n_requests, seed, conditions)
    capacity = Capacity(None, percentile(idle.latencies_ms, quantile), bound)
    if capacity.unloaded_ms > budget_ms:
        capacity.run_s = time.perf_counter() - started
        return capacity

    def passes(rate: float, s: int) -> bool:
        result = simulate(rate, requests, cost_ms, policy, n_requests, s, conditions)
        value = percentile(result.latencies_ms, quantile)
        capacity.trials.append((rate, value, result.stable))
        return result.stable and value <= budget_ms

    floor = bound * 0.01

    def search(low: float, high: float, s: int, step: float) -> float:
        """Geometric bisection in [low, high], widened by 1.25x at a time where every try fell on one side."""
        passed = failed = False
        for _ in range(60):
            if high / low <= 1 + step:
                if not passed and low > floor:  # never passed: the answer lies below the bracket
                    low, high = max(floor, low / 1.25), low
                elif not failed and high < bound:  # never failed: above it
                    low, high = high, min(bound, high * 1.25)
                else:
                    break
                continue
            middle = math.sqrt(low * high)
            if passes(middle, s):
                low, passed = middle, True
            else:
                high, failed = middle, True
        return low

    def bracket(centre: float) -> tuple[float, float]:
        return max(floor, centre / 1.25), min(bound, centre * 1.25)

    step = 0.03
    found = [search(*(bracket(guess_rps) if guess_rps else (floor, bound)), seed, step)]
    for s in range(seed + 1, seed + seeds):
        spread = (max(found) - min(found)) / statistics.median(found) if len(found) > 1 else 0.1
        step = min(0.05, max(0.01, spread / 4))
        found.append(search(*bracket(statistics.median(found)), s, step))
    capacity.seed_rates_rps = found
    capacity.precision = step
    capacity.rate_rps = statistics.median(found)
    capacity.run_s = time.perf_counter() - started
    return capacity
