"""`will-it-run --rate`: from one device's batch latency to requests per second under load, replicas and cost.

The latency model prices one batch of pairs on the device (calibrated where this machine's rows exist, else
the class defaults with their range); serving_sim.py's simulation turns those prices into a replica's
latencies under the given arrivals for the chosen server's batching. From that:

- capacity: the highest rate one replica holds with its p95 (or p50) within the budget, the median over
  SEEDS arrival streams (their range is the figure's spread), for the central rates, and for the fast and
  slow ends of the estimate's range (the capacity's range);
- replicas for the asked rate: enough for the range's slow end, ceil(rate / slow capacity), so a slow
  device still meets the budget (`replicas_central` says what the central figure needs), and with
  `headroom` U, enough that each runs at utilisation U at most. Each replica then takes a Poisson stream of
  rate / replicas, which is what random (or least-loaded) routing gives it at worst, so the count holds
  without assuming a clever load balancer; the replicas' p50/p95 and utilisation at that share are the
  means over SEEDS independent runs, the p95 with a t interval over them (independent replications);
- cost: replicas x the profile's TDP (board power as the stand-in), or x `price_per_hour` where the profile
  gives one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from rerank_bench.common.stats import T_975
from rerank_bench.common.vocab import ServerKind
from rerank_bench.errors import UsageError
from rerank_bench.models.flops import EncoderShape, pair_flops
from rerank_bench.willrun.latency_model import Rates, host_ms
from rerank_bench.willrun.memory_model import BYTES, ArchShape, weights_bytes
from rerank_bench.willrun.serving_sim import (
    PLAIN,
    SEEDS,
    SERVERS,
    Conditions,
    CostFn,
    ServerPolicy,
    find_capacity,
    service_bound_rps,
    simulate,
)

TEI_MAX_BATCH_TOKENS = 16384  # TEI's default --max-batch-tokens
INFINITY_BATCH_SIZE = 32  # infinity's default --batch-size
END_SEEDS = 2  # seeds for the range's ends: its width dwarfs their spread
RATE_REQUESTS = 1500  # simulated requests per seed at the asked rate


def batch_cost(arch: ArchShape, shape: EncoderShape, rates: Rates, dtype: str, padded: bool = True) -> CostFn:
    """Milliseconds for one batch of pairs with these token lengths: the latency model's per-batch time
    (latency_model.batch_ms), over the padded shape, or over the real tokens where the server runs without
    padding (TEI's flash-attention backends), plus the tokenizer's share per pair."""
    table: list[float] = []  # FLOPs of one pair by its token count, grown on demand: sums stay in C

    def flops(lengths: tuple[int, ...], width: int) -> float:
        if width >= len(table):
            table.extend(pair_flops(shape, n) for n in range(len(table), width + 1))
        return len(lengths) * table[width] if padded else sum(map(table.__getitem__, lengths))

    flop_rate = rates.peak_tflops * 1e12 * rates.efficiency
    weights = weights_bytes(arch, dtype)
    per_token_bytes = arch.layers * (12 * arch.hidden + 4 * arch.intermediate) * BYTES.get(dtype, 4)

    def cost(lengths: tuple[int, ...]) -> float:
        width = max(lengths)
        tokens = len(lengths) * width if padded else sum(lengths)
        memory_s = (weights + per_token_bytes * tokens) / (rates.bandwidth_gbs * 1e9)
        compute_s = flops(lengths, width) / flop_rate
        return max(compute_s, memory_s) * 1000.0 + rates.overhead_ms + host_ms(rates, lengths)

    return cost


def scaled(cost: CostFn, factor: float) -> CostFn:
    return lambda lengths: cost(lengths) * factor


def server_policy(
    server: str, batch_size: int, max_batch_tokens: int | None, kind: str, fixed_batch: bool = False
) -> ServerPolicy:
    """The server's batching. TEI pads batches on CPU, Apple and AMD (its padded backends), so its token budget
    counts the longest pair times the batch; on NVIDIA GPUs its flash-attention backends count real tokens.
    infinity batches `batch_size` pairs when --batch-size was given (its own --batch-size), else its default
    32; one request at a time uses the batch will-it-run chose (or was given)."""
    if server not in SERVERS:
        raise UsageError(f"--server {server!r} is not one of {', '.join(SERVERS)}")
    if max_batch_tokens is not None and max_batch_tokens < 1:
        raise UsageError("--max-batch-tokens must be a positive number of tokens")
    if server == ServerKind.TEI:
        tokens = max_batch_tokens or TEI_MAX_BATCH_TOKENS
        return ServerPolicy(ServerKind.TEI, max_batch_tokens=tokens, padded=kind != "nvidia")
    if server == ServerKind.INFINITY:
        return ServerPolicy(ServerKind.INFINITY, batch_size=batch_size if fixed_batch else INFINITY_BATCH_SIZE)
    return ServerPolicy(ServerKind.PER_REQUEST, batch_size=batch_size)


@dataclass
class AtRate:
    """A replica at one rate, simulated once per seed: means over the seeds; the p95 with a t interval over
    the seeds' p95s (independent replications, so the interval needs no correlation correction)."""

    p50_ms: float
    p95_ms: float
    p95_ci_ms: tuple[float, float]
    utilisation: float
    mean_batch_pairs: float
    simulated_s: float  # all seeds together


def at_rate(
    rate_rps: float,
    requests: list[list[int]],
    cost: CostFn,
    policy: ServerPolicy,
    conditions: Conditions,
    seeds: int = SEEDS,
    n_requests: int = RATE_REQUESTS,
    seed: int = 0,
) -> AtRate:
    runs = [simulate(rate_rps, requests, cost, policy, n_requests, s, conditions) for s in range(seed, seed + seeds)]
    p95s = [r.p95_ms for r in runs]
    mean95 = sum(p95s) / len(p95s)
    if len(runs) > 1:
        sd = math.sqrt(sum((v - mean95) ** 2 for v in p95s) / (len(p95s) - 1))
        half = T_975.get(len(runs), 1.96) * sd / math.sqrt(len(runs))
    else:
        low, high = runs[0].p95_ci_ms
        half = (high - low) / 2
    p50 = sum(r.p50_ms for r in runs) / len(runs)
    return AtRate(
        p50_ms=p50,
        p95_ms=mean95,
        # a p95 is never below the p50: with two seeds (t = 12.7) and a wide spread the symmetric interval went
        # below zero
        p95_ci_ms=(max(mean95 - half, p50), mean95 + half),
        utilisation=sum(r.utilisation for r in runs) / len(runs),
        mean_batch_pairs=sum(r.mean_batch_pairs for r in runs) / len(runs),
        simulated_s=sum(r.simulated_s for r in runs),
    )


@dataclass
class RatePlan:
    rate_rps: float
    server: str
    capacity_rps: float | None  # one replica, central estimate (seeds' median); None: over budget even unloaded
    capacity_rps_low: float | None  # the slow end of the estimate's range
    capacity_rps_high: float | None  # the fast end
    unloaded_ms: float  # the budget's percentile with an idle server (rate near zero)
    replicas: int | None  # planned: covers the slow end (and the headroom); None when no replica meets it
    replicas_central: int | None  # what the central capacity alone would need
    utilisation: float | None  # each replica's busy fraction at its share of the rate
    p50_at_rate_ms: float | None
    p95_at_rate_ms: float | None
    p95_at_rate_ci_ms: tuple[float, float] | None  # t interval over the seeds' runs
    # the p95 at the same share with the estimate's fast and slow costs (END_SEEDS seeds each): the range a
    # measurement should fall in, as the capacity's range is; the interval above is the simulation's alone
    p95_at_rate_range_ms: tuple[float, float] | None
    simulated_seconds: float  # simulated time at the asked rate's share
    run_s: float  # wall time of every simulation behind this plan
    mean_batch_pairs: float | None
    capacity_spread_rps: tuple[float, float] | None = None  # the central capacity's seeds, lowest and highest
    headroom: float | None = None  # the utilisation each replica was planned to stay under
    headroom_bound: bool = False  # True: the headroom, not the budget, set the replica count


INFINITY_BATCH_CANDIDATES = (4, 8, 16, 32, 64, 128)  # --server infinity --batch-size auto
TEI_TOKEN_CANDIDATES = (2048, 4096, 8192, 16384, 32768)  # --server tei --max-batch-tokens auto
SETTING_SEEDS = 2  # seeds per candidate setting: enough to rank them; the chosen one is then planned with SEEDS


@dataclass(frozen=True)
class PairKnown:
    """How well the measured rows tell two settings' costs apart: the relative half-width (95%) of their ratio,
    what it comes from in words, and how many sweeps measured both (one: their drift between sweeps is unknown)."""

    half_width: float
    why: str
    sweeps: int = 1


# the best setting from one sweep's rows: said, as its cases minutes apart drift beyond their own intervals
ONE_SWEEP = (
    "from one sweep, whose batch sizes ran minutes apart: a host's drift between them is not in their intervals; "
    "sweep again and pass both files, or measure both"
)


@dataclass
class SettingChoice:
    """The server setting with the most capacity at the budget, beside the runner-up."""

    policy: ServerPolicy
    label: str  # e.g. "batch 16" or "max-batch-tokens 8192"
    tried: list[tuple[str, float | None, float]]  # (label, capacity, the seeds' relative spread) per candidate
    note: str


def best_setting(
    requests: list[list[int]],
    cost: CostFn,
    candidates: list[tuple[str, ServerPolicy]],
    budget_ms: float,
    quantile: float,
    conditions: Conditions = PLAIN,
    calibration: Callable[[str, str], PairKnown | None] | None = None,
) -> SettingChoice:
    """Each candidate's capacity (SETTING_SEEDS seeds), the best, the runner-up and the margin between them,
    said to be within the seeds' spread when it is: then either setting would do, as far as the model knows.
    `calibration(best, runner_up)`: how well the measured rows the costs are priced by know the two settings'
    costs apart (PairKnown); a margin beyond the seeds' spread but within it and that uncertainty together (root
    sum of squares: independent sources) is said to be so, with what settles it (measuring both): the
    simulation's seeds agree, but the rows it stands on do not tell the two apart. A choice the rows do tell
    apart but from one sweep says so (ONE_SWEEP)."""
    tried: list[tuple[str, float | None, float]] = []
    policies = dict(candidates)
    for label, policy in candidates:
        found = find_capacity(
            requests, cost, policy, budget_ms, quantile=quantile, conditions=conditions, seeds=SETTING_SEEDS
        )
        spread = found.spread_rps
        relative = (spread[1] - spread[0]) / found.rate_rps if spread and found.rate_rps else 0.0
        tried.append((label, found.rate_rps, relative))
    ranked = sorted(tried, key=lambda t: -(t[1] or 0.0))
    best_label, best_rate, best_spread = ranked[0]
    if not best_rate:
        return SettingChoice(policies[best_label], best_label, tried, "no setting meets the budget")
    note = f"{best_label}: {best_rate:.3g}/s"
    if len(ranked) > 1 and ranked[1][1]:
        runner_label, runner_rate, runner_spread = ranked[1]
        assert runner_rate is not None
        margin = best_rate / runner_rate - 1
        widest = max(best_spread, runner_spread)
        where = "within" if margin <= widest else "beyond"
        note += (
            f"; runner-up {runner_label}: {runner_rate:.3g}/s ({margin:+.0%}, {where} the seeds' spread of {widest:.0%}"
        )
        known = calibration(best_label, runner_label) if calibration is not None else None
        if margin > widest and known is not None:
            both = math.hypot(widest, known.half_width)
            if margin <= both:
                note += (
                    f", but within {both:.0%} with the in-process rows' own uncertainty ({known.why}): measure both "
                    "to choose"
                )
            elif known.sweeps < 2:
                note += f"; {ONE_SWEEP}"
        note += ")"
    return SettingChoice(policies[best_label], best_label, tried, note)


def quantile_of(percentile: str) -> float:
    """--percentile's name as the quantile the simulation judges by: p50 -> 50, p95 -> 95."""
    return 50.0 if percentile == "p50" else 95.0


def replicas_for(rate_rps: float, capacity_rps: float | None) -> int | None:
    return max(1, math.ceil(rate_rps / capacity_rps - 1e-9)) if capacity_rps else None


def plan_rate(
    rate_rps: float,
    budget_ms: float,
    percentile: str,
    requests: list[list[int]],
    policy: ServerPolicy,
    costs: tuple[CostFn, CostFn, CostFn],
    conditions: Conditions = PLAIN,
    headroom: float | None = None,
    seeds: int = SEEDS,
) -> RatePlan:
    """Capacity (with its range and its seeds' spread), replicas and the replicas' latencies at `rate_rps`.
    costs: the batch cost at the estimate's central, fast and slow rates. The range's ends are searched with
    fewer seeds (END_SEEDS): the latency estimate's range is far wider than their spread. The ends meet the
    conditions' own ends where they have some (a served spread known within a range)."""
    started = time.perf_counter()
    seed = 0  # the seeds are 0 .. seeds - 1: every device meets the same arrival streams
    cost, fast, slow = costs
    which = quantile_of(percentile)

    def capacity(c: CostFn, n: int, guess: float | None = None, met: Conditions = conditions):
        return find_capacity(requests, c, policy, budget_ms, quantile=which, conditions=met, seeds=n, guess_rps=guess)

    central = capacity(cost, seeds)

    def guess(c: CostFn) -> float | None:
        # an end's capacity sits about where the central one does, scaled by the ratio of their service bounds
        if central.rate_rps is None:
            return None
        return central.rate_rps * service_bound_rps(requests, c, policy) / central.bound_rps

    ended = min(END_SEEDS, seeds)
    at_fast, at_slow = conditions.ends()
    low, high = capacity(slow, ended, guess(slow), at_slow), capacity(fast, ended, guess(fast), at_fast)
    described = conditions.describe()
    plan = RatePlan(
        rate_rps=rate_rps,
        server=policy.describe() + (f", {described}" if described else ""),
        capacity_rps=central.rate_rps,
        capacity_rps_low=low.rate_rps,
        capacity_rps_high=high.rate_rps,
        unloaded_ms=central.unloaded_ms,
        replicas=None,
        replicas_central=replicas_for(rate_rps, central.rate_rps),
        utilisation=None,
        p50_at_rate_ms=None,
        p95_at_rate_ms=None,
        p95_at_rate_ci_ms=None,
        p95_at_rate_range_ms=None,
        simulated_seconds=0.0,
        run_s=0.0,
        mean_batch_pairs=None,
        capacity_spread_rps=central.spread_rps,
        headroom=headroom,
    )
    # the slow end's count where the slow end meets the budget at all, else the central one (TIGHT says so)
    replicas = replicas_for(rate_rps, low.rate_rps) or plan.replicas_central
    if replicas is not None:
        at = at_rate(rate_rps / replicas, requests, cost, policy, conditions, seeds, seed=seed)
        while headroom is not None and at.utilisation > headroom:
            # utilisation falls about in proportion to each replica's share: aim there, then check by simulating
            replicas = max(replicas + 1, math.ceil(replicas * at.utilisation / headroom - 1e-9))
            at = at_rate(rate_rps / replicas, requests, cost, policy, conditions, seeds, seed=seed)
            plan.headroom_bound = True
        plan.replicas = replicas
        plan.utilisation = at.utilisation
        plan.p50_at_rate_ms, plan.p95_at_rate_ms, plan.p95_at_rate_ci_ms = at.p50_ms, at.p95_ms, at.p95_ci_ms
        plan.simulated_seconds = at.simulated_s
        plan.mean_batch_pairs = at.mean_batch_pairs
        share = rate_rps / replicas
        ends = [at_rate(share, requests, c, policy, m, ended, seed=seed) for c, m in ((fast, at_fast), (slow, at_slow))]
        plan.p95_at_rate_range_ms = (
            min(ends[0].p95_ci_ms[0], at.p95_ci_ms[0]),
            max(ends[1].p95_ci_ms[1], at.p95_ci_ms[1]),
        )
    plan.run_s = time.perf_counter() - started
    return plan
