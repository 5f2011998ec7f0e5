"""The sweep's verdict per model and depth: which batch size is fastest, by throughput and by tail latency."""

from __future__ import annotations

from typing import Any

from rerank_bench.common.vocab import Status

GROUP_FIELDS = ("model", "weights", "backend", "dtype", "device", "threads", "order", "depth")


def best_batches(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (model, weights, backend, dtype, device, threads, order, depth) over rows with status ok.
    Rows are typed (results/schema.py): numbers are numbers, empty cells None.

    Latency is judged by p95 when every candidate has one; otherwise by p50, and the entry says so
    (`latency_metric`), rather than comparing a p95 with nothing.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") != Status.OK or row.get("pairs_per_s") is None:
            continue
        key = tuple(row.get(f) for f in GROUP_FIELDS)
        groups.setdefault(key, []).append(row)
    out = []
    for key, members in groups.items():
        fastest = max(members, key=lambda r: r["pairs_per_s"])
        metric = "p95_ms" if all(r.get("p95_ms") is not None for r in members) else "p50_ms"
        with_metric = [r for r in members if r.get(metric) is not None]
        lowest = min(with_metric, key=lambda r: r[metric]) if with_metric else None
        entry = dict(zip(GROUP_FIELDS, key, strict=False))
        entry.update(
            best_throughput_batch=fastest["batch_size"],
            best_pairs_per_s=fastest["pairs_per_s"],
            latency_metric=metric,
            best_latency_batch=lowest["batch_size"] if lowest else None,
            best_latency_ms=lowest[metric] if lowest else None,
            batch_sizes_measured=sorted(r["batch_size"] for r in members),
        )
        out.append(entry)
    out.sort(key=lambda e: (e["model"], e["backend"], e["dtype"], e["device"], e["threads"], e["order"], e["depth"]))
    return out
