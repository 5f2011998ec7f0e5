"""Rich output for `sweep`: the case list (--dry-run), progress on stderr, the summary table on stdout."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rerank_bench.measure.plan import Case
from rerank_bench.render.format import number


def render_cases(cases: list[Case], done: set[str], console: Console) -> None:
    table = Table(title=f"{len(cases)} cases (nothing is run with --dry-run)")
    for name in (
        "#",
        "case_id",
        "model",
        "weights",
        "backend",
        "dtype",
        "device",
        "threads",
        "order",
        "batch",
        "depth",
        "max_length",
        "workload",
        "state",
    ):
        table.add_column(name, justify="right" if name in ("#", "batch", "depth", "max_length", "threads") else "left")
    for case in cases:
        state = (
            "measured (resume)" if case.case_id in done else escape(f"skipped: {case.skip}") if case.skip else "to run"
        )
        table.add_row(
            str(case.index),
            case.case_id,
            case.model.name,
            case.model.weights,
            case.backend,
            case.dtype,
            case.device,
            str(case.threads),
            case.order,
            str(case.batch_size),
            str(case.depth),
            str(case.max_length or "model"),
            case.workload,
            state,
        )
    console.print(table)


def render_summary(rows: list[dict[str, Any]], best: list[dict[str, Any]], output: str, console: Console) -> None:
    ok = [r for r in rows if r.get("status") == "ok"]
    table = Table(title="rerank-bench sweep: per-query latency and throughput")
    for name, right in (
        ("model", False),
        ("config", False),
        ("depth", True),
        ("batch", True),
        ("pairs/s", True),
        ("p50 ms", True),
        ("p95 ms", True),
        ("p50 95% CI ms", True),
        ("queries", True),
        ("tok/pair", True),
        ("pad eff", True),
        ("GFLOP/s (peak)", True),
        ("rho mean/worst top10", True),
        ("peak MiB", True),
        ("status", False),
    ):
        table.add_column(name, justify="right" if right else "left")
    for row in rows:
        peak = row.get("peak_vram_reserved_mib") or row.get("peak_rss_mib")
        ci = (
            f"{number(row.get('p50_ci_low_ms'))}-{number(row.get('p50_ci_high_ms'))}"
            if row.get("p50_ci_low_ms") not in (None, "")
            else "-"
        )
        status = row.get("status", "")
        if status != "ok":
            status = escape(f"{status}: {row.get('status_reason', '')}"[:70])
        work = number(row.get("gflop_per_s"), 0)
        if row.get("fraction_of_peak") not in (None, ""):
            work += f" ({float(row['fraction_of_peak']):.0%})"
        agree = "-"
        if row.get("agreement_spearman_mean") not in (None, ""):
            agree = (
                f"{number(row.get('agreement_spearman_mean'), 3)}/{number(row.get('agreement_spearman_worst'), 3)} "
                f"{number(row.get('agreement_top10_overlap'), 2)}"
            )
        threads = f" {row.get('threads')}t" if row.get("device") == "cpu" else ""
        config = f"{row.get('backend')} {row.get('dtype')} {row.get('order')}{threads}"
        model = str(row.get("model")) + (" (random)" if str(row.get("weights", "")).startswith("random") else "")
        table.add_row(
            escape(model),
            config,
            str(row.get("depth")),
            str(row.get("batch_size")),
            number(row.get("pairs_per_s")),
            number(row.get("p50_ms")),
            number(row.get("p95_ms")),
            ci,
            str(row.get("n_queries") or "-"),
            number(row.get("pair_tokens_mean"), 0),
            number(row.get("padding_efficiency"), 2),
            work,
            agree,
            number(peak, 0),
            status,
        )
    console.print(table)
    if any(row.get("agreement_spearman_mean") not in (None, "") for row in rows):
        console.print(
            "rho: Spearman of each case's scores against torch fp32 (given order) on the same requests; "
            "top10: share of the reference's top 10 kept."
        )
    if best:
        verdict = Table(title="Best batch size per model and depth")
        for name, right in (
            ("model", False),
            ("config", False),
            ("depth", True),
            ("fastest batch", True),
            ("pairs/s", True),
            ("lowest-latency batch", True),
            ("latency ms", True),
        ):
            verdict.add_column(name, justify="right" if right else "left")
        for entry in best:
            metric = entry["latency_metric"].removesuffix("_ms")
            verdict.add_row(
                escape(entry["model"]),
                f"{entry['backend']} {entry['dtype']} {entry['order']} {entry['device']}",
                str(entry["depth"]),
                str(entry["best_throughput_batch"]),
                number(entry["best_pairs_per_s"]),
                str(entry["best_latency_batch"] or "-"),
                f"{number(entry['best_latency_ms'])} ({metric})",
            )
        console.print(verdict)
    if any(e["latency_metric"] == "p50_ms" for e in best):
        console.print(
            "p95 needs at least 40 timed queries per case; raise --max-seconds-per-case to get it everywhere."
        )
    console.print(f"{len(ok)} of {len(rows)} cases ok · results: {output}")


class ProgressEvents:
    """Progress bar on stderr (when it is a terminal), one line per finished case otherwise."""

    def __init__(self, console: Console, total: int | None) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress: Progress | None = None
        self.total = total
        self.done = 0
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self.task = self.progress.add_task("starting", total=total)

    def __enter__(self) -> ProgressEvents:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()

    def notice(self, message: str) -> None:
        self.console.print(f"[yellow]notice:[/] {escape(message)}", highlight=False)

    def case_started(self, case: Case) -> None:
        if self.progress:
            self.progress.update(self.task, description=case.describe())

    def case_finished(self, case: Case, row: dict[str, Any]) -> None:
        self.done += 1
        if self.progress:
            self.progress.advance(self.task)
            return
        detail = (
            f"{number(row.get('pairs_per_s'))} pairs/s, p50 {number(row.get('p50_ms'))} ms"
            if row.get("status") == "ok"
            else row.get("status_reason", "")
        )
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        self.console.print(escape(f"[{count}] {case.describe()}: {row.get('status')} {detail}"), highlight=False)
