"""What a served endpoint adds to the model's own time, fitted from `endpoint` rows, for `will-it-run --rate`.

The in-process rows calibrate what the model costs; a server adds its own: HTTP, JSON and queue hand-offs on
every request (time the client waits but the model does not spend), and work the server does around each batch
(tokenizing, moving tensors, its threads taking turns with the model's on a small CPU) that does keep the model
from its next batch. One short measured level fits both, so every other prediction for that server sharpens:

- per request: a closed loop of one client (`--concurrency 1`) waits for each request alone, so its p50 minus
  the simulated p50 of an idle replica is what the server adds outside the model;
- what a request pays for finding the server idle: a closed loop of one client sends the next request as the
  last reply leaves, so the server never goes idle, while open-loop requests at a light rate nearly all find it
  so, and take longer (infinity here: p50 22 ms closed x1, 30 ms open at 3, 10 and 20/s, flat: it is not
  queueing). An open level at a light rate (at most LIGHT_SHARE of the closed x1 rate; `endpoint --capacity`
  measures one) fits that wake time, the one at which the simulated p50 at its rate is the measured one. Without
  such a level the one-client figure stands for every request, and the p50 at a moderate load reads low;
- how much of that keeps the model waiting: an open-loop level at a real load queues, and the share of the
  per-request time spent on the model's own CPU (tokenizing, JSON, the server's threads taking turns with
  the model's on a small machine) is the one that makes the simulated p50s at the levels' rates equal the
  measured ones on geometric average: found by bisection, the simulated p50s rising with it. Where even all of
  it is not enough, the rest is put on every batch (a per-batch time, bisected the same way). Where the rows
  carry the server's own x-tokenization-time (TEI), that measured time is the share beside the model, and the
  open levels fit only the per-batch rest;
- how fast the model ran while the levels did: where the loaded levels' p50s are below what the sweep's speed
  gives even with none of the per-request time on the model's CPU, the host was faster than during the sweep
  (here its speed moves 1.3-1.5x within minutes), and the model's own time is scaled to the speed that meets
  them (at most 1 / MIN_SPEED faster), the one-client per-request time refitted at it. Where the one-client
  level alone took less than the model does at the sweep's speed (a server cannot add negative time), the
  model's time is first put at the speed at which nothing is left outside it (MiniLM b32 here: 29 ms under the
  sweep's 480, 2026-12-04; before this the fit stopped there and simulated -29 ms a request);
- how much more a batch's time varies when served: where the open levels' p95s are above what the replica
  gives with the in-process spread, the lognormal sigma of a batch's time whose simulated p95s fit them with the
  least squared log error (golden-section search; the CPU share refitted under each sigma tried). On a small
  machine the server's threads and the client take turns with the model, so served times vary more than the
  in-process rows show, and the p95, and the capacity at a p95 budget, follow the spread more than the mean.

Every steady open level is fitted (the MAX_LEVELS of most requests): a level of a few hundred requests has a
p95 that one run of slow replies moves by nearly half (infinity here: 231 ms on 258 requests and 143 ms on 774
at one rate, minutes apart), and a fit on one such level carries that into every plan.

A level that failed its SLO for certain bounds the fit from above: its rate is past the server's capacity, so
the fitted server must not pass it. Where the simulation at that rate, under everything fitted, still meets the
SLO, the model's own time is slowed (at most MAX_SLOWDOWN) until its simulated p95 there reaches the SLO, the
one-client per-request time refitted at each speed tried. The levels below the knee say how the server queues;
only one past it says where it stops holding (the AVX2 host, 2026-12-04: every search level above the capacity
was stopped early with requests abandoned and fitted nothing, and the fit planned b32 at 18.5/s against 5.6/s).

Rows are this machine's `endpoint` rows (backend `endpoint`) for the same server kind (`api`), model name,
depth and workload as the plan, status ok; those with a failed request only as such bounds (their p50s and
p95s are cut short by the stop). Which rows fed the fit is said in its source.
Each row is simulated under the server setting it was measured with where the row says it (infinity's batch
size, TEI's max batch tokens: `server_batch_size`, `server_max_batch_tokens`), so rows of one setting fit the
overhead for every other (`--batch-size auto` tries several); rows of the plan's own setting are used first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rerank_bench.common.slo import Verdict
from rerank_bench.common.vocab import ServerKind, Status
from rerank_bench.results.schema import ResultRow
from rerank_bench.results.store import find_result_files, read_rows
from rerank_bench.willrun.rate_plan import scaled
from rerank_bench.willrun.serving_sim import Conditions, CostFn, ServerPolicy, simulate

SIM_REQUESTS = 1500  # simulated requests behind each fitted figure
SEEDS = 3
MAX_SERVED_SIGMA = 1.0  # a lognormal of mean 1 and sigma 1 has its p95 at 3.1x the mean
LIGHT_SHARE = 0.35  # an open level at most this share of the closed x1 rate is light: it fits the wake time
MIN_SPEED = 0.5  # the served levels may say the model ran at most 2x faster than its sweep did
MAX_SLOWDOWN = 3.0  # a level that failed its SLO may say the model ran at most 3x slower than its sweep did
MAX_LEVELS = 3  # open levels fitted together: each costs SEEDS simulations at every step (3: about 20 s here)
UNSTEADY = ("not steady", "saturated")  # endpoint's level_state for figures that grow with the level's length
SHARE_STEPS = 1024  # the CPU share is bisected to 1/1024 of the per-request time (10 steps over all of it)


@dataclass(frozen=True)
class ServedOverhead:
    per_request_ms: float  # added to every reply, outside the model
    per_batch_ms: float  # added to every batch's cost, keeping the model from its next batch
    source: str  # which rows fed it
    request_cpu_ms: float = 0.0  # of each request's overhead, the part that keeps the model waiting
    service_sigma: float = 0.0  # batch times' spread as served: the in-process one, or more as the level's p95 says
    # (fast end, slow end): the spreads that meet the level the fit overshoots most and the one it misses most,
    # each alone (one level: its p95's interval); a plan's range ends are simulated with them (None: no range)
    sigma_range: tuple[float, float] | None = None
    idle_wake_ms: float = 0.0  # what a request that finds the server idle waits more (a light open level's fit)
    model_speed: float = 1.0  # factor on the model's own time: below 1 where the levels ran faster than the sweep


def endpoint_rows(results: tuple[Path, ...], fingerprint: str) -> list[ResultRow]:
    """This machine's endpoint rows (one per measured level), status ok: those with no failed request, and open
    levels that failed their SLO (with or without failed requests: the fit's upper bounds)."""
    rows: list[ResultRow] = []
    for path in find_result_files(list(results)).files:
        try:
            for r in read_rows(path):
                ours = r.get("hardware_fingerprint") == fingerprint and r.get("backend") == "endpoint"
                if ours and r.get("status") == Status.OK and (not r.get("requests_failed") or _bounds(r)):
                    rows.append({**r, "_file": path.name})
        except Exception:  # noqa: BLE001 - an unreadable file only means fewer measurements
            continue
    return rows


def matching(rows: list[ResultRow], server: str, names: set[str], depth: int, workload: str) -> list[ResultRow]:
    """Rows of this server kind serving this model (its name is the served name's last part) at this depth and
    workload."""

    def served(r: ResultRow) -> bool:
        return str(r.get("model") or "").rstrip("/").split("/")[-1] in names

    return [
        r
        for r in rows
        if r.get("api") == server and served(r) and r.get("depth") == depth and r.get("workload") == workload
    ]


def _bounds(row: ResultRow) -> bool:
    """An open level that failed its p95 SLO for certain: its rate is past the server's capacity."""
    return (
        row.get("load_mode") == "open"
        and row.get("slo_verdict") == Verdict.FAIL
        and bool(row.get("offered_rps"))
        and bool(row.get("slo_ms"))
        and float(row.get("slo_percentile") or 95.0) == 95.0
    )


def failed_levels(rows: list[ResultRow]) -> list[ResultRow]:
    """The open levels that bound the fit from above (`_bounds`)."""
    return [r for r in rows if _bounds(r)]


def row_policy(policy: ServerPolicy, row: ResultRow) -> ServerPolicy:
    """The plan's server policy with the setting this row's server ran (where the row says it)."""
    if policy.kind == ServerKind.INFINITY and row.get("server_batch_size"):
        return replace(policy, batch_size=int(row["server_batch_size"]))
    if policy.kind == ServerKind.TEI and row.get("server_max_batch_tokens"):
        return replace(policy, max_batch_tokens=int(row["server_max_batch_tokens"]))
    return policy


def same_setting_first(rows: list[ResultRow], policy: ServerPolicy) -> list[ResultRow]:
    """The rows measured with the plan's own server setting where there are any; else every row (each then
    simulated under its own setting)."""
    own = [r for r in rows if row_policy(policy, r) == policy]
    return own or rows


def _simulated(
    which: str, rate: float, requests: list[list[int]], cost: CostFn, policy: ServerPolicy, conditions: Conditions
) -> float:
    """The mean over SEEDS simulated runs of one figure (`p50_ms` or `p95_ms`)."""
    runs = [simulate(rate, requests, cost, policy, SIM_REQUESTS, seed, conditions) for seed in range(SEEDS)]
    return sum(getattr(r, which) for r in runs) / len(runs)


def _p50(rate: float, requests: list[list[int]], cost: CostFn, policy: ServerPolicy, conditions: Conditions) -> float:
    return _simulated("p50_ms", rate, requests, cost, policy, conditions)


def _p95(rate: float, requests: list[list[int]], cost: CostFn, policy: ServerPolicy, conditions: Conditions) -> float:
    return _simulated("p95_ms", rate, requests, cost, policy, conditions)


def with_batch_overhead(cost: CostFn, per_batch_ms: float) -> CostFn:
    return lambda lengths: cost(lengths) + per_batch_ms


def _bisect(error_of: Callable[[float], float], low: float, high: float, steps: int) -> float:
    """The value within [low, high] at which a simulated figure's error against the measured one, rising with
    it, crosses zero."""
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if error_of(middle) < 0 else (low, middle)
    return (low + high) / 2


def _batch_overhead(p50_error: Callable[[float], float], batch_ms: float) -> float:
    """The time a batch must gain for the simulated p50s to reach the measured ones: a bracket grown from one
    batch's cost until it holds them, then bisected."""
    low, high = 0.0, max(1.0, batch_ms)
    for _ in range(8):
        if p50_error(high) >= 0:
            break
        low, high = high, high * 2
    return _bisect(p50_error, low, high, 10)


def _minimise(misfit: Callable[[float], float], low: float, high: float, steps: int) -> float:
    """The value within [low, high] where a misfit (taken to have one minimum there) is least: golden-section
    search, the bracket shrinking by 0.618 a step."""
    shrink = (math.sqrt(5.0) - 1.0) / 2.0
    left, right = high - shrink * (high - low), low + shrink * (high - low)
    at_left, at_right = misfit(left), misfit(right)
    for _ in range(steps):
        if at_left <= at_right:
            high, right, at_right = right, left, at_left
            left = high - shrink * (high - low)
            at_left = misfit(left)
        else:
            low, left, at_left = left, right, at_right
            right = low + shrink * (high - low)
            at_right = misfit(right)
    return (low + high) / 2


def light_levels(rows: list[ResultRow], idle: ResultRow) -> list[ResultRow]:
    """The open levels at a light rate: at most LIGHT_SHARE of the closed x1 level's rate, where nearly every
    request finds the server idle and hardly any waits behind another."""
    unloaded = float(idle.get("achieved_rps") or 0.0)
    return [
        r
        for r in rows
        if r.get("load_mode") == "open"
        and r.get("offered_rps")
        and r.get("p50_ms")
        and unloaded > 0
        and float(r["offered_rps"]) <= LIGHT_SHARE * unloaded
    ]


def _steady(rows: list[ResultRow]) -> list[ResultRow]:
    """The open levels with a p50 whose latency was neither still rising nor piling up."""
    return [
        r
        for r in rows
        if r.get("load_mode") == "open"
        and r.get("offered_rps")
        and r.get("p50_ms")
        and r.get("level_state") not in UNSTEADY
    ]


def steady_levels(rows: list[ResultRow]) -> list[ResultRow]:
    """The open levels whose p50 (and p95) describe a queue at rest at their rate: not one whose latency was
    still rising or whose requests were piling up (those figures grow with the level's length, not the rate);
    of those, the ones shown to meet their SLO where any were (below the server's knee, where a plan runs it:
    a level left undecided sits at the knee, where the p95 follows every drift of the host's speed); the most
    precise MAX_LEVELS of them (most requests; in measured order among equals)."""
    levels = _steady(rows)
    levels = [r for r in levels if r.get("slo_verdict") == Verdict.PASS] or levels
    chosen = sorted(levels, key=lambda r: -int(r.get("requests_sent") or 0))[:MAX_LEVELS]
    return sorted(chosen, key=lambda r: str(r.get("utc_time")))


@dataclass(frozen=True)
class _LevelFit:
    """The open levels' p50s and p95s against the simulation under a served overhead. The p50s' mean over levels
    of log(simulated / measured) is zero where the simulation meets them on (geometric) average and rises with
    the CPU share and the per-batch time, so those are found by bisection; the spread is the one of least
    squared log error over the levels' p95s (golden-section search)."""

    levels: list[ResultRow]
    requests: list[list[int]]
    cost: CostFn
    policy: ServerPolicy
    conditions: Conditions
    per_request_ms: float
    measured_cpu_ms: float  # TEI's x-tokenization-time where the rows have it, else 0
    cpu_measured: bool
    # spread -> the share bisected for it: the share falls as the spread rises (a wider spread raises the p50s),
    # so two spreads already fitted bracket the share of any spread between them, and the search over spreads
    # bisects that bracket instead of the whole per-request time (about half the simulations here)
    shares: dict[float, float] = field(default_factory=dict, compare=False)

    def logs(self, which: str, share: float, spread: float, extra: float, at: list[ResultRow]) -> list[float]:
        """log(simulated / measured) of one figure at each level."""
        priced = with_batch_overhead(self.cost, extra)
        served = replace(
            self.conditions,
            request_overhead_ms=self.per_request_ms - share,
            request_cpu_ms=share,
            service_sigma=spread,
        )

        def simulated(r: ResultRow) -> float:
            return _simulated(which, float(r["offered_rps"]), self.requests, priced, row_policy(self.policy, r), served)

        return [math.log(simulated(r) / float(r[which])) for r in at]

    def p50_error(self, share: float, spread: float, extra: float = 0.0) -> float:
        """The levels' mean log(simulated / measured p50): zero where the simulation meets them on average."""
        logs = self.logs("p50_ms", share, spread, extra, self.levels)
        return sum(logs) / len(logs)

    def share(self, spread: float) -> tuple[float, float]:
        """(CPU share, per-batch time) that make the simulated p50s at the levels' rates the measured ones: a
        share of the per-request time first, and where even all of it is not enough (or TEI measured it), the
        rest on each batch."""
        batch_ms = self.cost(tuple(self.requests[0]))

        def p50_error(share: float, extra: float = 0.0) -> float:
            return self.p50_error(share, spread, extra)

        share, extra = self.measured_cpu_ms, 0.0
        known = self._bracket(spread)
        if known is not None:
            low, high = known
            steps = max(0, math.ceil(math.log2(max(high - low, 1e-12) * SHARE_STEPS / self.per_request_ms)))
            share = self.shares[spread] = _bisect(p50_error, low, high, steps)
        elif self.cpu_measured:
            if p50_error(share) < 0:
                extra = _batch_overhead(lambda e: p50_error(share, e), batch_ms)
        elif p50_error(0.0) < 0:
            if p50_error(self.per_request_ms) >= 0:
                share = self.shares[spread] = _bisect(p50_error, 0.0, self.per_request_ms, 10)
            else:
                share = self.per_request_ms
                extra = _batch_overhead(lambda e: p50_error(share, e), batch_ms)
        return share, extra

    def _bracket(self, spread: float) -> tuple[float, float] | None:
        """The shares of the nearest spreads fitted on either side of this one (None without both)."""
        below = [s for s in self.shares if s <= spread]
        above = [s for s in self.shares if s >= spread]
        if not below or not above:
            return None
        low, high = self.shares[min(above)], self.shares[max(below)]
        return (low, high) if low <= high else None

    def p95_misfit(self, spread: float, fitted: tuple[float, float], tails: list[ResultRow]) -> float:
        """The sum over levels of log(simulated / measured p95) squared, under a share and per-batch time."""
        share, extra = fitted
        return _squared(self.logs("p95_ms", share, spread, extra, tails))

    def spread(self, sigma: float, fitted: tuple[float, float], tails: list[ResultRow]) -> tuple[float, float, float]:
        """(spread, share, per-batch time) that fit the levels' p95s best, the spread from the in-process one
        (`sigma`, its share and time `fitted`) up: the in-process one where every level's p95 is already reached
        with it or nothing wider fits better. A wider spread also raises the p50s, so each spread tried has its
        own share fitted to them first. With several levels that share falls as the spread rises, and a high
        share with a narrow spread can meet the p95s at high rates while missing them at low ones: the spread is
        the one of least squared error over the levels, not a root, and it is not found by fitting the two in
        turns (which settles on the first share's side)."""
        narrow = self.logs("p95_ms", fitted[0], sigma, fitted[1], tails)
        if not tails or min(narrow) >= 0:
            return sigma, *fitted
        spread = _minimise(lambda s: self.p95_misfit(s, self.share(s), tails), sigma, MAX_SERVED_SIGMA, 10)
        shared = self.share(spread)
        if self.p95_misfit(spread, shared, tails) >= _squared(narrow):
            return sigma, *fitted
        return spread, *shared

    def spread_ends(
        self, sigma: float, fitted: tuple[float, float, float], tails: list[ResultRow]
    ) -> tuple[tuple[float, float], str] | None:
        """(fast end, slow end) of the served spread and what set them: with several levels, the spreads that
        meet, each alone and under the fit's share, the level whose p95 the fit overshoots most and the one it
        misses most (how far the levels disagree is how well the spread is known: one server's levels minutes
        apart measured 91, 179 and 219 ms at 45, 54 and 45/s, TinyBERT b32 2026-12-03); with one level, the ends
        of its p95's interval. Never below the in-process spread `sigma`; None without a p95 to go by."""
        spread, share, extra = fitted
        logs = self.logs("p95_ms", share, spread, extra, tails)  # each level's log(simulated / measured p95)

        def meeting(row: ResultRow, target_ms: float) -> float:
            # the spread within [sigma, MAX_SERVED_SIGMA] at which this level's simulated p95 is the target; its
            # error at the fit's own spread is known already
            def error(s: float) -> float:
                return self.logs("p95_ms", share, s, extra, [row])[0] + math.log(float(row["p95_ms"]) / target_ms)

            if logs[tails.index(row)] + math.log(float(row["p95_ms"]) / target_ms) >= 0:
                return _bisect(error, sigma, spread, 8) if spread > sigma else sigma
            if error(MAX_SERVED_SIGMA) < 0:
                return MAX_SERVED_SIGMA
            return _bisect(error, spread, MAX_SERVED_SIGMA, 8)

        if len(tails) >= 2:
            over, under = tails[logs.index(max(logs))], tails[logs.index(min(logs))]
            fast = meeting(over, float(over["p95_ms"])) if max(logs) > 0 else spread
            slow = meeting(under, float(under["p95_ms"])) if min(logs) < 0 else spread
            said = f"{_rate(over)} alone {fast:.2f}, {_rate(under)} alone {slow:.2f}"
            return (min(fast, spread), max(slow, spread)), said
        if tails and tails[0].get("p95_ci_low_ms") and tails[0].get("p95_ci_high_ms"):
            row = tails[0]
            low_ms, high_ms = float(row["p95_ci_low_ms"]), float(row["p95_ci_high_ms"])
            fast, slow = meeting(row, low_ms), meeting(row, high_ms)
            return (min(fast, spread), max(slow, spread)), f"its p95's interval {low_ms:.0f}-{high_ms:.0f} ms"
        return None


def fit_overhead(
    rows: list[ResultRow],
    requests: list[list[int]],
    cost: CostFn,
    policy: ServerPolicy,
    conditions: Conditions,
    bound_rps: Callable[[CostFn], float],
) -> ServedOverhead | None:
    """The per-request and per-batch figures from these rows (see the module's note); None without a
    one-client closed-loop row. `bound_rps(cost)`: the replica's service bound for a cost, to pick an idle rate."""
    rows, ceilings = _split(same_setting_first(rows, policy))
    idle_rows = [r for r in rows if r.get("load_mode") == "closed" and r.get("concurrency") == 1 and r.get("p50_ms")]
    if not idle_rows:
        return None
    idle = min(idle_rows, key=lambda r: str(r.get("utc_time")))  # the first: later ones may share a busier server
    idle_rate = bound_rps(cost) * 0.01
    idle_policy = row_policy(policy, idle)
    conditions = conditions.busy()  # no wake time fitted yet: the rows give it below, from a light level
    per_request = _outside_model(idle, idle_rate, requests, cost, idle_policy, conditions)
    used = [f"{idle['_file']} closed x1" + (f" ({idle_policy.setting()})" if idle_policy != policy else "")]
    speed = 1.0
    if per_request < 0:  # one client alone beat the model at the sweep's speed: the host ran faster then
        speed = _unloaded_speed(idle, idle_rate, requests, cost, idle_policy, conditions)
        cost = scaled(cost, speed)
        per_request = max(0.0, _outside_model(idle, idle_rate, requests, cost, idle_policy, conditions))
        used.append(f"the model's own time x{speed:.2f} (closed x1 faster than the sweep)")
    wake, light = 0.0, light_levels(rows, idle)
    if light:
        level = max(light, key=lambda r: int(r.get("requests_sent") or 0))
        outside = replace(conditions, request_overhead_ms=per_request)
        wake = _wake(level, requests, cost, row_policy(policy, level), outside)
        conditions = replace(conditions, idle_wake_ms=wake)
        used.append(f"open {_rate(level)} (light) p50 {float(level['p50_ms']):.0f} ms")
    # TEI says how long it tokenized each request (x-tokenization-time): work on the model's CPU beside it,
    # measured rather than fitted
    per_batch = cpu = 0.0
    sigma, used_spread = conditions.service_sigma, ""
    sigma_range: tuple[float, float] | None = None
    tokenized = idle.get("server_tokenization_p50_ms")
    if tokenized is not None:
        cpu = min(max(float(tokenized), 0.0), max(per_request, 0.0))
        used.append(f"its x-tokenization-time {float(tokenized):.1f} ms")
    levels = steady_levels([r for r in rows if r not in light])
    if levels and tokenized is None:
        # the levels may put it faster still, the whole at most 1 / MIN_SPEED faster than the sweep
        # on every steady loaded level, not only the ones shown to pass (`steady_levels`): near a knee a level
        # passes in the host's fast minutes and its long confirmations run in the slow ones, so the passed ones
        # alone put the model too fast (MiniLM b32: x0.91 from one passed level; capacity as endpoint +17%, +13%
        # on every level; MiniLM b8 +23% -> +10%, TinyBERT b8 -4% -> -1%, the other three within 1%)
        every = _steady([r for r in rows if r not in light])
        more = _speed(every, idle, idle_rate, requests, cost, policy, conditions, sigma, MIN_SPEED / speed)
        if more < 1.0:
            cost, speed = scaled(cost, more), speed * more
            per_request = _outside_model(idle, idle_rate, requests, cost, idle_policy, conditions)
            used.append(f"the model's own time x{speed:.2f}")
    if levels:
        fit = _LevelFit(levels, requests, cost, policy, conditions, per_request, cpu, tokenized is not None)
        cpu, per_batch = fit.share(sigma)
        tails = [r for r in levels if _has_p95(r)]
        # the levels' p95s fit how much more a served batch's time varies than the in-process rows showed (the
        # server's threads and the client taking turns with the model). Several levels, each of a few hundred
        # requests whose slow ones come in runs, give the spread together: TinyBERT b32's first level alone set
        # it at 0.53 and the plan's capacity 29% low (2026-12-03); its search's first three levels widen nothing
        # and give 14% low
        fitted, cpu, per_batch = fit.spread(sigma, (cpu, per_batch), tails)
        ends = fit.spread_ends(sigma, (fitted, cpu, per_batch), tails)
        if fitted != sigma:
            used_spread = f"{_p95s_named(tails)}: batch times varying by sigma {sigma:.2f} -> {fitted:.2f}"
        if ends is not None and ends[0] != (fitted, fitted):
            sigma_range, said = ends
            ranged = f"the range's ends simulated at sigma {sigma_range[0]:.2f}-{sigma_range[1]:.2f} ({said})"
            used_spread = f"{used_spread}; {ranged}" if used_spread else ranged
        sigma = fitted
        used.append(_levels_named(levels, policy))
    source = (
        f"served overhead from endpoint rows ({', '.join(used)}): {per_request:+.0f} ms a request, {cpu:.1f} ms "
        f"of it beside the model"
        + (f", {per_batch:+.1f} ms a batch" if per_batch else "")
        + (f", up to {wake:.1f} ms more for a request that finds it idle" if wake else "")
        + (f"; {used_spread}" if used_spread else "")
    )
    overhead = ServedOverhead(per_request - cpu, per_batch, source, cpu, sigma, sigma_range, wake, speed)
    if not ceilings:
        return overhead
    return _Bound(ceilings, idle, idle_rate, requests, cost, policy, conditions, overhead).bounded()


def _outside_model(
    idle: ResultRow,
    idle_rate: float,
    requests: list[list[int]],
    cost: CostFn,
    policy: ServerPolicy,
    conditions: Conditions,
) -> float:
    """What the one-client level's p50 adds to an idle replica's simulated p50: the server's time outside the
    model. One client at a time never leaves the server idle long, so no wake time is in it (`busy()`)."""
    return float(idle["p50_ms"]) - _p50(idle_rate, requests, cost, policy, conditions.busy())


def _unloaded_speed(
    idle: ResultRow,
    idle_rate: float,
    requests: list[list[int]],
    cost: CostFn,
    policy: ServerPolicy,
    conditions: Conditions,
) -> float:
    """The factor on the model's own time (below 1, at least MIN_SPEED) at which the one-client level's p50 is
    the model's alone: nothing outside it. The lower end of the last bracket, where the time left outside is not
    negative."""

    def left(factor: float) -> float:  # falls as the factor rises: the model takes more of the p50
        return _outside_model(idle, idle_rate, requests, scaled(cost, factor), policy, conditions)

    if left(MIN_SPEED) < 0:
        return MIN_SPEED
    low, high = MIN_SPEED, 1.0
    for _ in range(10):
        middle = (low + high) / 2
        low, high = (middle, high) if left(middle) >= 0 else (low, middle)
    return low


def _speed(
    levels: list[ResultRow],
    idle: ResultRow,
    idle_rate: float,
    requests: list[list[int]],
    cost: CostFn,
    policy: ServerPolicy,
    conditions: Conditions,
    sigma: float,
    floor: float = MIN_SPEED,
) -> float:
    """The factor on the model's own time (at most 1, at least MIN_SPEED) at which the loaded levels' simulated
    p50s, with none of the server's work on the model's CPU and the one-client level's per-request time refitted
    at that speed, are the measured ones; 1 where they are not below what the sweep's speed gives. A p50 below
    even that says the model ran faster while the levels ran than while the sweep did (the host's speed moves
    1.3-1.5x within minutes here: TinyBERT's sweeps at 09:45 and 09:49 gave 1,051 and 1,413 pairs a second at
    batch 8, and b8's served fit then planned 22% under its measured capacity). `floor`: the least factor
    allowed, where the one-client level has already put the model's time below the sweep's."""
    idle_policy = row_policy(policy, idle)

    def error(factor: float) -> float:
        # a faster model leaves more of the one-client level's time to the server: refitted at each factor
        faster = scaled(cost, factor)
        per_request = _outside_model(idle, idle_rate, requests, faster, idle_policy, conditions)
        return _LevelFit(levels, requests, faster, policy, conditions, per_request, 0.0, False).p50_error(0.0, sigma)

    if error(1.0) <= 0 or floor >= 1.0:
        return 1.0
    return _bisect(error, floor, 1.0, 8) if error(floor) < 0 else floor


def _split(rows: list[ResultRow]) -> tuple[list[ResultRow], list[ResultRow]]:
    """(the rows to fit: no failed request, for a level cut short has the stop's figures; the failed levels that
    bound the fit from above)."""
    return [r for r in rows if not r.get("requests_failed")], failed_levels(rows)


@dataclass(frozen=True)
class _Bound:
    """The failed levels against the fit, the model's own time slowed by a factor."""

    ceilings: list[ResultRow]
    idle: ResultRow
    idle_rate: float
    requests: list[list[int]]
    cost: CostFn
    policy: ServerPolicy
    conditions: Conditions
    fitted: ServedOverhead

    def bounded(self) -> ServedOverhead:
        """The fit slowed until no failed level meets its SLO in the simulation (`slowdown`), or as it was.
        `cost`: the model's time at the fit's speed; `conditions`: the fit's before its per-request figures
        (wake time in)."""
        slower = self.slowdown()
        if slower <= 1.0:
            return self.fitted
        outside, cpu = self.per_request(slower)
        speed = self.fitted.model_speed * slower
        failed = ", ".join(f"{_rate(r)} (p95 over {float(r['slo_ms']):g} ms)" for r in self.ceilings)
        said = f"; the model's own time x{speed:.2f}: open {failed} failed the SLO where the fit met it"
        return replace(
            self.fitted,
            per_request_ms=outside - cpu,
            request_cpu_ms=cpu,
            model_speed=speed,
            source=self.fitted.source + said,
        )

    def per_request(self, factor: float) -> tuple[float, float]:
        """(the one-client level's time outside the model, the part of it beside the model) at this factor: a
        slower model leaves less outside it, and the share beside it is at most the fit's."""
        slower = scaled(self.cost, factor)
        outside = _outside_model(
            self.idle, self.idle_rate, self.requests, slower, row_policy(self.policy, self.idle), self.conditions
        )
        outside = max(0.0, outside)
        return outside, min(self.fitted.request_cpu_ms, outside)

    def error(self, factor: float) -> float:
        """The largest log(SLO / simulated p95) over the failed levels: above 0 while one still meets its SLO."""
        outside, cpu = self.per_request(factor)
        priced = with_batch_overhead(scaled(self.cost, factor), self.fitted.per_batch_ms)
        served = replace(
            self.conditions,
            request_overhead_ms=outside - cpu,
            request_cpu_ms=cpu,
            service_sigma=self.fitted.service_sigma,
        )
        errors = []
        for r in self.ceilings:
            p95 = _p95(float(r["offered_rps"]), self.requests, priced, row_policy(self.policy, r), served)
            errors.append(math.log(float(r["slo_ms"]) / p95))
        return max(errors)

    def slowdown(self) -> float:
        """The least factor on the model's own time (1 to MAX_SLOWDOWN, to 1/256 of that bracket: finer than the
        seeds' spread at a knee) at which every failed level's simulated p95 reaches its SLO; 1 where the fit
        already fails them all."""
        if self.error(1.0) <= 0:
            return 1.0
        if self.error(MAX_SLOWDOWN) > 0:
            return MAX_SLOWDOWN
        low, high = 1.0, MAX_SLOWDOWN
        for _ in range(8):
            middle = (low + high) / 2
            low, high = (middle, high) if self.error(middle) > 0 else (low, middle)
        return high


def _wake(
    level: ResultRow, requests: list[list[int]], cost: CostFn, policy: ServerPolicy, conditions: Conditions
) -> float:
    """The wake time at which the simulated p50 at a light level's rate is its measured one (0 where the
    simulation meets it without one): a bracket grown from the gap until it holds it, then bisected."""
    rate, measured = float(level["offered_rps"]), float(level["p50_ms"])

    def error(wake: float) -> float:
        return math.log(_p50(rate, requests, cost, policy, replace(conditions, idle_wake_ms=wake)) / measured)

    if error(0.0) >= 0:
        return 0.0
    low, high = 0.0, max(1.0, 2.0 * (measured - _p50(rate, requests, cost, policy, conditions)))
    for _ in range(6):
        if error(high) >= 0:
            break
        low, high = high, high * 2
    return _bisect(error, low, high, 10)


def _levels_named(levels: list[ResultRow], policy: ServerPolicy) -> str:
    """`open 38.2/s, 45.6/s (batch 8)`: the fitted levels, with the server setting they ran where not the plan's."""
    settings = {row_policy(policy, r) for r in levels} - {policy}
    named = f" ({', '.join(sorted(p.setting() for p in settings))})" if settings else ""
    return "open " + ", ".join(_rate(r) for r in levels) + named


def _rate(row: ResultRow) -> str:
    return f"{float(row['offered_rps']):.3g}/s"


def _p95s_named(tails: list[ResultRow]) -> str:
    shown = ", ".join(f"{float(r['p95_ms']):.0f}" for r in tails)
    return f"its p95 {shown} ms" if len(tails) == 1 else f"their p95s {shown} ms"


def _squared(logs: list[float]) -> float:
    return sum(e * e for e in logs)


def _has_p95(row: ResultRow) -> bool:
    return row.get("p95_ms") is not None and math.isfinite(float(row["p95_ms"]))
