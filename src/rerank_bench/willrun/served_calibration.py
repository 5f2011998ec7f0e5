"""What a served endpoint adds to the model's own time, fitted from `endpoint` rows, for `will-it-run --rate`.

The in-process rows calibrate what the model costs; a server adds its own: HTTP, JSON and queue hand-offs on
every request (time the client waits but the model does not spend), and work the server does around each batch
(tokenizing, moving tensors, its threads taking turns with the model's on a small CPU) that does keep the model
from its next batch. One short measured level fits both, so every other prediction for that server sharpens:

- per request: a closed loop of one client (`--concurrency 1`) waits for each request alone, so its p50 minus
  the simulated p50 of an idle replica is what the server adds outside the model;
- how much of that keeps the model waiting: an open-loop level at a real load queues, and the share of the
  per-request time spent on the model's own CPU (tokenizing, JSON, the server's threads taking turns with
  the model's on a small machine) is the one that makes the simulated p50 at that rate equal the measured
  one: found by bisection, the simulated p50 rising with it. Where even all of it is not enough, the rest is
  put on every batch (a per-batch time, bisected the same way). Where the rows carry the server's own
  x-tokenization-time (TEI), that measured time is the share beside the model, and the open level fits only the
  per-batch rest;
- how much more a batch's time varies when served: where the open level's p95 is above what the replica gives
  with the in-process spread, the lognormal sigma of a batch's time that makes the simulated p95 match (found by
  bisection; the CPU share refitted under it). On a small machine the server's threads and the client take
  turns with the model, so served times vary more than the in-process rows show, and the p95, and the capacity
  at a p95 budget, follow the spread more than the mean.

Rows are this machine's `endpoint` rows (backend `endpoint`) for the same server kind (`api`), model name,
depth and workload as the plan, status ok, no failed request. Which rows fed the fit is said in its source.
Each row is simulated under the server setting it was measured with where the row says it (infinity's batch
size, TEI's max batch tokens: `server_batch_size`, `server_max_batch_tokens`), so rows of one setting fit the
overhead for every other (`--batch-size auto` tries several); rows of the plan's own setting are used first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from rerank_bench.common.vocab import ServerKind, Status
from rerank_bench.results.schema import ResultRow
from rerank_bench.results.store import find_result_files, read_rows
from rerank_bench.willrun.serving_sim import Conditions, CostFn, ServerPolicy, simulate

SIM_REQUESTS = 1500  # simulated requests behind each fitted figure
SEEDS = 3
MAX_SERVED_SIGMA = 1.0  # a lognormal of mean 1 and sigma 1 has its p95 at 3.1x the mean


@dataclass(frozen=True)
class ServedOverhead:
    per_request_ms: float  # added to every reply, outside the model
    per_batch_ms: float  # added to every batch's cost, keeping the model from its next batch
    source: str  # which rows fed it
    request_cpu_ms: float = 0.0  # of each request's overhead, the part that keeps the model waiting
    service_sigma: float = 0.0  # batch times' spread as served: the in-process one, or more as the level's p95 says


def endpoint_rows(results: tuple[Path, ...], fingerprint: str) -> list[ResultRow]:
    """This machine's endpoint rows (one per measured level), status ok."""
    rows: list[ResultRow] = []
    for path in find_result_files(list(results)).files:
        try:
            for r in read_rows(path):
                ours = r.get("hardware_fingerprint") == fingerprint and r.get("backend") == "endpoint"
                if ours and r.get("status") == Status.OK and not r.get("requests_failed"):
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


def _bisect(figure_of: Callable[[float], float], target: float, low: float, high: float, steps: int) -> float:
    """The value within [low, high] at which a simulated figure (a p50 or p95), rising with it, reaches the
    measured one."""
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if figure_of(middle) < target else (low, middle)
    return (low + high) / 2


def _batch_overhead(p50_with: Callable[[float], float], target: float, batch_ms: float) -> float:
    """The time a batch must gain for the simulated p50 to reach the measured one: a bracket grown from one
    batch's cost until it holds the target, then bisected."""
    low, high = 0.0, max(1.0, batch_ms)
    for _ in range(8):
        if p50_with(high) >= target:
            break
        low, high = high, high * 2
    return _bisect(p50_with, target, low, high, 10)


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
    rows = same_setting_first(rows, policy)
    idle_rows = [r for r in rows if r.get("load_mode") == "closed" and r.get("concurrency") == 1 and r.get("p50_ms")]
    if not idle_rows:
        return None
    idle = min(idle_rows, key=lambda r: str(r.get("utc_time")))  # the first: later ones may share a busier server
    idle_rate = bound_rps(cost) * 0.01
    idle_policy = row_policy(policy, idle)
    per_request = float(idle["p50_ms"]) - _p50(idle_rate, requests, cost, idle_policy, conditions)
    used = [f"{idle['_file']} closed x1" + (f" ({idle_policy.setting()})" if idle_policy != policy else "")]
    # TEI says how long it tokenized each request (x-tokenization-time): work on the model's CPU beside it,
    # measured rather than fitted
    per_batch = cpu = 0.0
    sigma, used_spread = conditions.service_sigma, ""
    tokenized = idle.get("server_tokenization_p50_ms")
    if tokenized is not None:
        cpu = min(max(float(tokenized), 0.0), max(per_request, 0.0))
        used.append(f"its x-tokenization-time {float(tokenized):.1f} ms")
    loaded = [r for r in rows if r.get("load_mode") == "open" and r.get("offered_rps") and r.get("p50_ms")]
    if loaded and per_request > 0:
        level = max(loaded, key=lambda r: float(r["offered_rps"]))
        rate, target = float(level["offered_rps"]), float(level["p50_ms"])
        level_policy = row_policy(policy, level)
        measured_cpu = cpu

        def moved(share: float, spread: float) -> Conditions:
            return replace(
                conditions, request_overhead_ms=per_request - share, request_cpu_ms=share, service_sigma=spread
            )

        def fit_share(spread: float) -> tuple[float, float]:
            """(CPU share, per-batch time) that make the simulated p50 at the level's rate the measured one."""

            def p50_with(share: float, extra: float = 0.0) -> float:
                return _p50(rate, requests, with_batch_overhead(cost, extra), level_policy, moved(share, spread))

            share, extra = measured_cpu, 0.0
            if tokenized is not None:
                if p50_with(share) < target:  # what the measured share leaves unexplained goes on each batch
                    extra = _batch_overhead(lambda e: p50_with(share, e), target, cost(tuple(requests[0])))
            elif p50_with(0.0) < target:
                if p50_with(per_request) >= target:
                    share = _bisect(p50_with, target, 0.0, per_request, 12)
                else:
                    share = per_request
                    extra = _batch_overhead(lambda e: p50_with(share, e), target, cost(tuple(requests[0])))
            return share, extra

        cpu, per_batch = fit_share(sigma)
        p95 = level.get("p95_ms")
        if p95 is not None and math.isfinite(float(p95)):
            # the level's p95 fits how much more a served batch's time varies than the in-process rows showed
            # (the server's threads and the client taking turns with the model). A wider spread also raises the
            # p50, so each spread tried has its own CPU share fitted to the p50 first: the p95 then rises with it
            def p95_with(spread: float, fitted: tuple[float, float] | None = None) -> float:
                share, extra = fitted or fit_share(spread)
                return _p95(rate, requests, with_batch_overhead(cost, extra), level_policy, moved(share, spread))

            if p95_with(sigma, (cpu, per_batch)) < float(p95):
                fitted = _bisect(p95_with, float(p95), sigma, MAX_SERVED_SIGMA, 8)
                used_spread = f"its p95 {float(p95):.0f} ms: batch times varying by sigma {sigma:.2f} -> {fitted:.2f}"
                sigma = fitted
                cpu, per_batch = fit_share(sigma)
        used.append(f"open {rate:.3g}/s" + (f" ({level_policy.setting()})" if level_policy != policy else ""))
    source = (
        f"served overhead from endpoint rows ({', '.join(used)}): {per_request:+.0f} ms a request, {cpu:.1f} ms "
        f"of it beside the model"
        + (f", {per_batch:+.1f} ms a batch" if per_batch else "")
        + (f"; {used_spread}" if used_spread else "")
    )
    return ServedOverhead(per_request - cpu, per_batch, source, cpu, sigma)
