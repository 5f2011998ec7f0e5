"""One load level as a result row (schema in results/schema.py): the sweep's columns where they mean the same
thing (latency percentiles, pairs/s, tokens), the endpoint columns for the rest."""

from __future__ import annotations

from typing import Any

from rerank_bench.common.case_key import case_id_for
from rerank_bench.common.stats import distribution
from rerank_bench.endpoint.summary import LevelSummary
from rerank_bench.results.provenance import utc_now


def level_key(summary: LevelSummary, context: dict[str, Any]) -> dict[str, Any]:
    request, run = context["request"], context["run"]
    level = summary.level
    return {
        "model": request.model or run.server.model_id or "served",
        "model_id": run.server.model_id or "",
        "revision": "",
        "weights": "served",
        "backend": "endpoint",
        "dtype": "",
        "device": "remote",
        "batch_size": "",
        "depth": summary.depth,
        "max_length": "",
        "order": "given",
        "threads": "",
        "workload": context["workload"],
        "seed": request.seed,
        "endpoint": run.url,
        "api": run.api,
        "load_mode": level.mode,
        "concurrency": level.concurrency if level.mode == "closed" else None,
        "offered_rps": float(level.rate_rps) if level.mode == "open" and level.rate_rps else None,
        "burstiness": float(level.burstiness) if level.mode == "open" else None,
    }


def level_row(summary: LevelSummary, context: dict[str, Any]) -> dict[str, Any]:
    run = context["run"]
    key = level_key(summary, context)
    row: dict[str, Any] = {**context["meta"], **key}
    row.update(
        case_id=case_id_for(key),
        utc_time=utc_now(),
        batch_size=None,
        max_length=None,
        threads=None,
        tokenizer=run.tokenizer,
        backend_options=run.server.identity,
        server=run.server.identity,
        status="ok" if summary.completed else "error",
        status_reason=_reason(summary),
        n_queries=summary.completed,
        warmup_queries=context["request"].warmup_requests,
        measure_s=summary.elapsed_s,
        stop_reason="duration",
        pairs_per_s=summary.pairs_per_s,
        queries_per_s=summary.achieved_rps,
        requests_sent=summary.sent,
        requests_completed=summary.completed,
        requests_failed=summary.failed,
        errors=summary.errors_text(),
        slo_ms=summary.slo_ms,
        goodput_rps=summary.goodput_rps,
        mean_in_flight=summary.mean_in_flight,
        send_lag_p99_ms=summary.send_lag_p99_ms,
        behind_schedule=summary.behind_schedule if summary.level.mode == "open" else None,
    )
    latency = summary.latency
    if latency is not None:
        row.update(
            mean_ms=latency.mean_ms,
            stdev_ms=latency.stdev_ms,
            min_ms=latency.min_ms,
            max_ms=latency.max_ms,
            p50_ms=latency.p50_ms,
            p90_ms=latency.p90_ms,
            p95_ms=latency.p95_ms,
            p99_ms=latency.p99_ms,
            p50_ci_low_ms=latency.p50_ci_low_ms,
            p50_ci_high_ms=latency.p50_ci_high_ms,
            percentile_note="; ".join(latency.missing_percentiles),
        )
    tokens = context.get("tokens")
    if tokens:
        spread = distribution(tokens)
        row.update(pair_tokens_mean=spread["mean"], pair_tokens_p50=spread["p50"], pair_tokens_p95=spread["p95"])
    agreement = context.get("agreement")
    if agreement is not None:
        row.update(agreement.to_row(), agreement_reference=f"{context['request'].reference} torch/fp32/cpu in process")
    return row


def _reason(summary: LevelSummary) -> str:
    parts = []
    if summary.failed:
        parts.append(
            f"{summary.failed} of {summary.sent} requests failed ({summary.errors_text()}): {summary.error_example}"
        )
    if summary.behind_schedule:
        parts.append(f"generator behind schedule: send lag p99 {summary.send_lag_p99_ms:.0f} ms")
    return "; ".join(parts)
