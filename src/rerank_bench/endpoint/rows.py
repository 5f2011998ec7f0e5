"""One load level as a result row (schema in results/schema.py): the sweep's columns where they mean the same
thing (latency percentiles, pairs/s, tokens), the endpoint columns for the rest."""

from __future__ import annotations

from typing import Any

from rerank_bench.common.capacity_search import CapacityResult
from rerank_bench.common.case_key import case_id_for
from rerank_bench.common.stats import distribution
from rerank_bench.common.vocab import Status
from rerank_bench.endpoint.summary import LevelSummary
from rerank_bench.results.provenance import utc_now

COMPLETED_COLUMNS = ("completed_p50_ms", "completed_p95_ms", "completed_p99_ms")


def level_key(summary: LevelSummary, context: dict[str, Any]) -> dict[str, Any]:
    level = summary.level
    return {
        **level_key_for(context["request"], context["run"], summary.depth, context["workload"]),
        "load_mode": level.mode,
        "concurrency": level.concurrency if level.mode == "closed" else None,
        "offered_rps": float(level.rate_rps) if level.mode == "open" and level.rate_rps else None,
        "burstiness": float(level.burstiness) if level.mode == "open" else None,
    }


def level_key_for(request: Any, run: Any, depth: int, workload: str) -> dict[str, Any]:
    """The key fields every row of one endpoint and depth shares."""
    return {
        "model": request.model or run.server.model_id or "served",
        "model_id": run.server.model_id or "",
        "revision": "",
        "weights": "served",
        "backend": "endpoint",
        "dtype": "",
        "device": "remote",
        "batch_size": "",
        "depth": depth,
        "max_length": "",
        "order": "given",
        "threads": "",
        "workload": workload,
        "seed": request.seed,
        "endpoint": run.url,
        "api": run.api,
    }


def _row_head(key: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """What every endpoint row of a run starts with: the run's stamp, the key and its id, the server's identity;
    the in-process columns that mean nothing for a served model left empty."""
    run = context["run"]
    return {
        **context["meta"],
        **key,
        "case_id": case_id_for(key),
        "utc_time": utc_now(),
        "batch_size": None,
        "max_length": None,
        "threads": None,
        "tokenizer": run.tokenizer,
        "backend_options": run.server.identity,
        "server": run.server.identity,
        "server_batch_size": run.server.batch_size,
        "server_max_batch_tokens": run.server.max_batch_tokens,
    }


def level_row(summary: LevelSummary, context: dict[str, Any]) -> dict[str, Any]:
    row = _row_head(level_key(summary, context), context)
    server = summary.server
    row.update(
        status=Status.OK if summary.completed else Status.ERROR,
        status_reason=_reason(summary),
        n_queries=summary.completed,
        warmup_queries=context.get("warmup", context["request"].warmup_requests),
        measure_s=summary.window.length_s,
        window_s=summary.window.length_s,
        stop_reason=summary.state,
        level_state=summary.state,
        pairs_per_s=summary.pairs_per_s,
        queries_per_s=summary.achieved_rps,
        scheduled_rps=summary.scheduled_rps,
        achieved_rps=summary.achieved_rps,
        requests_sent=summary.sent,
        requests_completed=summary.completed,
        requests_failed=summary.failed,
        errors=summary.errors_text(),
        slo_ms=summary.slo_ms,
        goodput_rps=summary.goodput_rps,
        mean_in_flight=summary.mean_in_flight,
        send_lag_p99_ms=summary.send_lag_p99_ms,
        behind_schedule=summary.behind_schedule if summary.level.mode == "open" else None,
        connections_opened=summary.connections_opened,
        connect_mean_ms=summary.connect_mean_ms,
        server_mean_ms=server.mean_ms,
        server_batch_mean=server.batch_mean,
        server_cpu_cores=server.cpu_cores,
        server_cpu_ms_per_request=server.cpu_ms_per_request,
        loadgen_cpu_cores=summary.loadgen_cpu_cores,
        idle_before_ms=summary.settle.idle_ms if summary.settle else None,
        settle_s=summary.settle.waited_s if summary.settle else None,
    )
    if summary.slo is not None:
        row.update(
            slo_percentile=summary.q,
            slo_verdict=str(summary.verdict),
            over_slo=summary.slo.over,
            over_slo_fraction_low=summary.slo.fraction_low,
            over_slo_fraction_high=summary.slo.fraction_high,
            over_slo_design_effect=summary.slo.design_effect,
        )
    for name in ("total", "queue", "inference", "tokenization"):
        if name in server.times_ms:
            p50, p95 = server.times_ms[name]
            row[f"server_{name}_p50_ms"], row[f"server_{name}_p95_ms"] = p50, p95
    completed = summary.completed_latency
    if server.mean_ms is not None and completed is not None:
        row["client_minus_server_ms"] = completed.mean_ms - server.mean_ms
    if summary.latency is not None:
        row.update(summary.latency.columns(), percentile_note=summary.latency.note())
    if completed is not None:
        row.update({k: v for k, v in completed.columns("completed_").items() if k in COMPLETED_COLUMNS})
    tokens = context.get("tokens")
    if tokens:
        spread = distribution(tokens)
        row.update(pair_tokens_mean=spread["mean"], pair_tokens_p50=spread["p50"], pair_tokens_p95=spread["p95"])
    agreement = context.get("agreement")
    if agreement is not None:
        row.update(agreement.to_row(), agreement_reference=f"{context['request'].reference} torch/fp32/cpu in process")
    return row


def capacity_row(found: CapacityResult, depth: int, context: dict[str, Any]) -> dict[str, Any]:
    """The capacity search's answer as a row of its own (load_mode `capacity`), beside its levels' rows: what
    `compare` compares and `report` plots."""
    request, run = context["request"], context["run"]
    key = {
        **level_key_for(request, run, depth, context["workload"]),
        "load_mode": "capacity",
        "offered_rps": None,
        "burstiness": float(request.burstiness),
    }
    confirmation = found.confirmation
    row = _row_head(key, context)
    row.update(
        status=Status.OK if found.capacity_rps is not None else Status.ERROR,
        status_reason=found.note(),
        slo_ms=request.slo_ms,
        slo_percentile=request.percentile,
        capacity_rps=found.capacity_rps,
        capacity_fail_rps=found.high_rps,
        ceiling_rps=found.ceiling_rps,
        capacity_levels=len(found.trials),
        slo_verdict=str(confirmation.verdict) if confirmation is not None else None,
        pairs_per_s=found.capacity_rps * depth if found.capacity_rps is not None else None,
    )
    return row


def _reason(summary: LevelSummary) -> str:
    parts = [summary.role] if summary.role else []
    if summary.failed:
        parts.append(
            f"{summary.failed} of {summary.sent} requests failed ({summary.errors_text()}): {summary.error_example}"
        )
    if summary.client_errors:
        parts.append("client-side errors (file descriptors, ports): the level is invalid, not the server's fault")
    if summary.behind_schedule:
        parts.append(f"generator behind schedule: send lag p99 {summary.send_lag_p99_ms:.0f} ms")
        if summary.server_failed_as_sent:
            parts.append("a fail all the same: the server missed the SLO even on the requests as sent, less the lag")
    if summary.slo is not None and summary.slo_ms is not None and summary.verdict != "pass":
        parts.append(summary.slo.why(summary.q, summary.slo_ms))
    if summary.state != "steady":
        parts.append(f"level {summary.state}")
    return "; ".join(parts)
