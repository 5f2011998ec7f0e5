"""Rich output for `endpoint`: a live line per level on stderr (rate, p95, errors as they come), the table of
levels on stdout, and the capacity found."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape

from rerank_bench.common.capacity_search import (
    CONFIRM_FACTOR,
    ROLE_CEILING,
    ROLE_CONFIRMATION,
    ROLE_LIGHT,
    CapacityResult,
)
from rerank_bench.common.stats import min_samples_for, percentile
from rerank_bench.endpoint.loadgen import LiveCounts
from rerank_bench.endpoint.run import EndpointRun
from rerank_bench.endpoint.summary import Level, LevelSummary
from rerank_bench.render.format import Column, fit_columns, number, table_of


class LiveLevels:
    """Progress on stderr: while a level runs, one live line (elapsed, sent, done, failed, p95 so far);
    when it ends, its summary line stays."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, text: str) -> None:
        self.console.print(f"[yellow]notice:[/] {escape(text)}", highlight=False, soft_wrap=True)

    def level_started(self, depth: int, level: Level, duration_s: float, live: LiveCounts) -> None:
        self._finish()
        started = time.monotonic()

        def line() -> str:
            enough = len(live.latencies_ms) >= min_samples_for(95)
            p95 = percentile(live.latencies_ms, 95) if enough else None
            return (
                f"depth {depth} {level.label()}: {time.monotonic() - started:.0f}/{duration_s:.0f} s, "
                f"sent {live.sent}, done {live.done}, failed {live.failed}, replies' p95 so far {number(p95, 0)} ms"
            )

        if not self.console.is_terminal:
            return
        self._live = Live(line(), console=self.console, refresh_per_second=4, transient=True)
        self._live.start()
        self._stop.clear()

        def refresh() -> None:
            while not self._stop.wait(0.25):
                if self._live is not None:
                    self._live.update(line())

        self._thread = threading.Thread(target=refresh, daemon=True)
        self._thread.start()

    def level_done(self, summary: LevelSummary) -> None:
        self._finish()
        latency = summary.latency
        p95 = _ms(latency.p95_ms if latency else None)
        p95 = p95 if p95 == "failed" else f"{p95} ms"  # "failed" is not a number of milliseconds
        errors = f", errors {summary.errors_text()}" if summary.failed else ""
        late = " [red]behind schedule[/]" if summary.behind_schedule else ""
        verdict = f", SLO {summary.verdict}" if summary.verdict is not None else ""
        state = f", {summary.state}" if summary.state != "steady" else ""
        self.console.print(
            f"depth {summary.depth} {escape(summary.level.label())}: {summary.achieved_rps:.3g} req/s, "
            f"p95 {p95}{escape(errors)}{escape(verdict + state)}{late}",
            highlight=False,
        )

    def _finish(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self) -> LiveLevels:
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish()


def _ms(value: float | None) -> str:
    """A latency for the table: inf (the percentile fell on failed requests) reads `failed`."""
    return "failed" if value is not None and math.isinf(value) else number(value, 0)


def _p(q: str) -> Any:
    return lambda r: _ms(r[f"p{q}_ms"])


def _p95_ci(r: dict[str, Any]) -> str:
    low, high = r["p95_ci_ms"] or (None, None)
    if low is None and high is None:
        return "-"
    return f"{_ms(low)}-{_ms(high) if high is not None else '?'}"


COLUMNS = (
    Column("depth", lambda r: str(r["depth"]), headline=True),
    Column("load", lambda r: r["load"], numeric=False, headline=True),
    Column("sent", lambda r: str(r["sent"]), priority=3),
    Column("ok", lambda r: str(r["completed"]), headline=True),
    Column("errors", lambda r: r["errors"] or "-", numeric=False, headline=True),
    Column("offered/s", lambda r: number(r["scheduled_rps"], 3), priority=1),
    Column("req/s", lambda r: number(r["achieved_rps"], 3), headline=True),
    Column("pairs/s", lambda r: number(r["pairs_per_s"], 1), priority=1),
    Column("p50 ms", _p("50"), headline=True),
    Column("p95 ms", _p("95"), headline=True),
    Column("p95 95% CI", _p95_ci, priority=2),
    Column("SLO", lambda r: r["slo_verdict"] or "-", numeric=False, headline=True),
    Column("p99 ms", _p("99"), priority=2),
    Column("goodput/s", lambda r: number(r["goodput_rps"], 2), priority=4),
    Column("in flight", lambda r: number(r["mean_in_flight"], 1), priority=5),
    # cores busy over the level: the server's process (from its /metrics, where it exports its CPU) and the load
    # generator's own; on one machine the two share its cores
    Column("srv cores", lambda r: number(r["server_cpu_cores"], 2), priority=5),
    Column("gen cores", lambda r: number(r["loadgen_cpu_cores"], 2), priority=5),
    Column("note", lambda r: r["note"], numeric=False, priority=6, wraps=True),
)


# the capacity search's levels whose purpose the table's other columns do not show (its search levels' do)
ROLE_LABELS = {
    ROLE_CEILING: "throughput ceiling",
    ROLE_LIGHT: "light level: what a request that finds the server idle waits",
    ROLE_CONFIRMATION: f"confirmation ({CONFIRM_FACTOR}x as long)",
}


def level_record(summary: LevelSummary, slo_ms: float | None, q: float) -> dict[str, Any]:
    """A level as plain data: the table's rows and `--json`."""
    latency = summary.latency
    note = [ROLE_LABELS[summary.role]] if summary.role in ROLE_LABELS else []
    if summary.behind_schedule:
        note.append(f"generator behind schedule (lag p99 {summary.send_lag_p99_ms:.0f} ms)")
    if summary.slo is not None:
        met, why = summary.meets()
        note.append("meets SLO" if met else f"misses SLO: {why}")
    if summary.state != "steady":
        note.append(f"level {summary.state}")
    if summary.settle is not None and not summary.settle.settled and summary.settle.ratio is not None:
        note.append(f"started with one request at a time {summary.settle.ratio:.1f}x slower than at the start")
    if latency is not None and latency.note():
        note.append(latency.note())
    server = summary.server
    return {
        "depth": summary.depth,
        "load": summary.level.label(),
        "load_mode": summary.level.mode,
        "role": summary.role or None,
        "concurrency": summary.level.concurrency,
        "offered_rps": summary.level.rate_rps,
        "window_s": summary.window.length_s,
        "scheduled_rps": summary.scheduled_rps,
        "sent": summary.sent,
        "completed": summary.completed,
        "failed": summary.failed,
        "errors": summary.errors_text(),
        "error_example": summary.error_example,
        "achieved_rps": summary.achieved_rps,
        "pairs_per_s": summary.pairs_per_s,
        "p50_ms": latency.p50_ms if latency else None,
        "p90_ms": latency.p90_ms if latency else None,
        "p95_ms": latency.p95_ms if latency else None,
        "p99_ms": latency.p99_ms if latency else None,
        "p50_ci_ms": [latency.p50_ci_low_ms, latency.p50_ci_high_ms] if latency else None,
        "p95_ci_ms": list(latency.intervals.get(95, (None, None))) if latency else None,
        "p99_ci_ms": list(latency.intervals.get(99, (None, None))) if latency else None,
        "completed_p95_ms": summary.completed_latency.p95_ms if summary.completed_latency else None,
        "slo_verdict": str(summary.verdict) if summary.verdict is not None else None,
        "over_slo": summary.slo.over if summary.slo else None,
        "over_slo_fraction_bounds": [summary.slo.fraction_low, summary.slo.fraction_high] if summary.slo else None,
        "over_slo_design_effect": summary.slo.design_effect if summary.slo else None,
        "level_state": str(summary.state),
        "connections_opened": summary.connections_opened,
        "connect_mean_ms": summary.connect_mean_ms,
        "idle_before_ms": summary.settle.idle_ms if summary.settle else None,
        "settle_s": summary.settle.waited_s if summary.settle else None,
        "server_times_ms": {name: {"p50": a, "p95": b} for name, (a, b) in server.times_ms.items()},
        "server_mean_ms": server.mean_ms,
        "server_batch_mean": server.batch_mean,
        "server_cpu_cores": server.cpu_cores,
        "server_cpu_ms_per_request": server.cpu_ms_per_request,
        "loadgen_cpu_cores": summary.loadgen_cpu_cores,
        "goodput_rps": summary.goodput_rps,
        "mean_in_flight": summary.mean_in_flight,
        "send_lag_p99_ms": summary.send_lag_p99_ms,
        "behind_schedule": summary.behind_schedule,
        "note": "; ".join(note),
    }


def capacity_line(depth: int, capacity: CapacityResult, slo_ms: float, q: float) -> str:
    head = f"depth {depth}: capacity at p{q:g} <= {slo_ms:g} ms with errors under 1%: "
    if capacity.low_rps is None:
        return head + capacity.note()
    if capacity.high_rps:
        answer = f"{capacity.low_rps:.3g} req/s (passed; {capacity.high_rps:.3g} req/s did not)"
    else:
        answer = f"at least {capacity.low_rps:.3g} req/s"
    if capacity.confirmation is not None:
        answer += f", confirmation {capacity.confirmation.verdict}"
    extra = f" ({capacity.note()})" if capacity.note() else ""
    ceiling = f", ceiling {capacity.ceiling_rps:.3g} req/s" if capacity.ceiling_rps else ""
    return head + answer + extra + f"; {len(capacity.trials)} levels{ceiling}"


def endpoint_json(run: EndpointRun, slo_ms: float | None, q: float) -> dict[str, Any]:
    return {
        "endpoint": run.url,
        "api": run.api,
        "server": run.server.identity,
        "tokenizer": run.tokenizer,
        "output": str(run.output),
        "run_id": run.run_id,
        "depths": [
            {
                "depth": d.depth,
                "levels": [level_record(s, slo_ms, q) for s in d.levels],
                "capacity_levels": [level_record(s, slo_ms, q) for s in d.capacity_levels],
                "confirmation": level_record(d.confirmation, slo_ms, q) if d.confirmation else None,
                "capacity_rps": d.capacity.low_rps if d.capacity else None,
                "capacity_interval_rps": [d.capacity.low_rps, d.capacity.high_rps] if d.capacity else None,
                "capacity_confirmed": d.capacity.confirmed if d.capacity else None,
                "ceiling_rps": d.capacity.ceiling_rps if d.capacity else None,
                "capacity_note": d.capacity.note() if d.capacity else None,
                "agreement": d.agreement.to_row() if d.agreement else None,
            }
            for d in run.depths
        ],
    }


def render_endpoint(run: EndpointRun, slo_ms: float | None, q: float, console: Console, wide: bool = False) -> None:
    rows = [
        level_record(s, slo_ms, q)
        for d in run.depths
        for s in [*d.levels, *d.capacity_levels, *([d.confirmation] if d.confirmation else [])]
    ]
    title = f"{run.url} ({run.api}; {run.server.identity or 'server did not say what it is'}; tokens {run.tokenizer})"
    if rows:
        columns = fit_columns(COLUMNS, rows, console.width, wide)
        console.print(table_of(title, columns, rows))
    for d in run.depths:
        if d.capacity is not None and slo_ms is not None:
            console.print(escape(capacity_line(d.depth, d.capacity, slo_ms, q)), highlight=False)
    console.print(f"rows and raw latencies: {escape(str(run.output))}", highlight=False)
