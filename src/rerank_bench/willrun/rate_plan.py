"""`will-it-run --rate`: from one device's batch latency to requests per second under load, replicas and cost.

The latency model prices one batch of pairs on the device (calibrated where this machine's rows exist, else
the class defaults with their range); serving.py's simulation turns those prices into a replica's latencies
under Poisson arrivals for the chosen server's batching. From that:

- capacity: the highest rate one replica holds with its p95 (or p50) within the budget, for the central
  rates, and for the fast and slow ends of the estimate's range (the capacity's range);
- replicas for the asked rate: ceil(rate / capacity). Each replica then takes a Poisson stream of
  rate / replicas, which is what random (or least-loaded) routing gives it at worst, so the count holds
  without assuming a clever load balancer; the replicas' p50/p95 and utilisation at that share are simulated;
- cost: replicas x the profile's TDP (board power as the stand-in), or x `price_per_hour` where the profile
  gives one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rerank_bench.common.vocab import ServerKind
from rerank_bench.errors import UsageError
from rerank_bench.models.flops import EncoderShape, pair_flops
from rerank_bench.willrun.latency_model import Rates
from rerank_bench.willrun.memory_model import BYTES, ArchShape, weights_bytes
from rerank_bench.willrun.serving_sim import SERVERS, CostFn, ServerPolicy, find_capacity, simulate

TEI_MAX_BATCH_TOKENS = 16384  # TEI's default --max-batch-tokens
INFINITY_BATCH_SIZE = 32  # infinity's default --batch-size
RATE_REQUESTS = 3000  # simulated requests at the asked rate (p95's interval by batch means over ten blocks)


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
        return max(compute_s, memory_s) * 1000.0 + rates.overhead_ms + rates.tokenize_ms_per_pair * len(lengths)

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
class RatePlan:
    rate_rps: float
    server: str
    capacity_rps: float | None  # one replica, central estimate; None: the budget is missed even unloaded
    capacity_rps_low: float | None  # the slow end of the estimate's range
    capacity_rps_high: float | None  # the fast end
    unloaded_ms: float  # the budget's percentile with an idle server (rate near zero)
    replicas: int | None  # for rate_rps within the budget (central); None when no replica meets it
    replicas_high: int | None  # at the slow end of the range
    utilisation: float | None  # each replica's busy fraction at its share of the rate
    p50_at_rate_ms: float | None
    p95_at_rate_ms: float | None
    p95_at_rate_ci_ms: tuple[float, float] | None  # the simulation's own 95% interval (batch means)
    simulated_seconds: float  # simulated time at the asked rate's share
    run_s: float  # wall time of every simulation behind this plan
    mean_batch_pairs: float | None


def plan_rate(
    rate_rps: float,
    budget_ms: float,
    percentile: str,
    requests: list[list[int]],
    policy: ServerPolicy,
    costs: tuple[CostFn, CostFn, CostFn],
    seed: int = 0,
    burstiness: float = 1.0,
) -> RatePlan:
    """Capacity (with its range), replicas and the replicas' latencies at `rate_rps`. costs: the batch cost
    at the estimate's central, fast and slow rates."""
    started = time.perf_counter()
    cost, fast, slow = costs
    which = 50.0 if percentile == "p50" else 95.0
    central = find_capacity(requests, cost, policy, budget_ms, seed=seed, quantile=which, burstiness=burstiness)
    low = find_capacity(requests, slow, policy, budget_ms, seed=seed, quantile=which, burstiness=burstiness)
    high = find_capacity(requests, fast, policy, budget_ms, seed=seed, quantile=which, burstiness=burstiness)
    plan = RatePlan(
        rate_rps=rate_rps,
        server=policy.describe() + (f", arrivals of burstiness {burstiness:g}" if burstiness != 1.0 else ""),
        capacity_rps=central.rate_rps,
        capacity_rps_low=low.rate_rps,
        capacity_rps_high=high.rate_rps,
        unloaded_ms=central.unloaded_ms,
        replicas=None,
        replicas_high=None,
        utilisation=None,
        p50_at_rate_ms=None,
        p95_at_rate_ms=None,
        p95_at_rate_ci_ms=None,
        simulated_seconds=0.0,
        run_s=0.0,
        mean_batch_pairs=None,
    )
    if central.rate_rps:
        plan.replicas = max(1, math.ceil(rate_rps / central.rate_rps - 1e-9))
        at = simulate(rate_rps / plan.replicas, requests, cost, policy, RATE_REQUESTS, seed, burstiness)
        plan.utilisation = at.utilisation
        plan.p50_at_rate_ms, plan.p95_at_rate_ms, plan.p95_at_rate_ci_ms = at.p50_ms, at.p95_ms, at.p95_ci_ms
        plan.simulated_seconds = at.simulated_s
        plan.mean_batch_pairs = at.mean_batch_pairs
    if low.rate_rps:
        plan.replicas_high = max(1, math.ceil(rate_rps / low.rate_rps - 1e-9))
    plan.run_s = time.perf_counter() - started
    return plan
