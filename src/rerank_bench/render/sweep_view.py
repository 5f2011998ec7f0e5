"""Rich output for `sweep`: the case list (--dry-run), progress on stderr, the summary table on stdout."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rerank_bench.common.case_key import features_label
from rerank_bench.common.stats import min_samples_for
from rerank_bench.common.thresholds import BUSY_PCT
from rerank_bench.common.vocab import Status
from rerank_bench.render.format import Column, fit_columns, number, table_of
from rerank_bench.sweep.cases import Case


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
            case.order + features_label(case.attention, case.prefix),
            str(case.batch_size),
            str(case.depth),
            str(case.max_length or "model"),
            case.workload,
            state,
        )
    console.print(table)


def _is_random(row: dict[str, Any]) -> bool:
    return str(row.get("weights") or "").startswith("random")


def _model(row: dict[str, Any]) -> str:
    return str(row.get("model")) + (" (random)" if _is_random(row) else "")


def _too_few(row: dict[str, Any]) -> bool:
    return row.get("status") == Status.OK and row.get("p50_ms") is None


def _why(row: dict[str, Any]) -> str:
    """What a row's status needs said: the reason it is not ok, or that an ok row has no median."""
    if _too_few(row):
        return f"too few queries for a median ({row.get('n_queries')}; 3 needed)"
    return "" if row.get("status") == Status.OK else str(row.get("status_reason") or "")


def _status(row: dict[str, Any]) -> str:
    # The reason goes under the table as a numbered note, so the table stays narrow.
    return str(row.get("status") or "") + (f" [{row['_note']}]" if row.get("_note") else "")


def _work(row: dict[str, Any]) -> str:
    work = number(row.get("gflop_per_s"), 0)
    if row.get("fraction_of_peak") is not None:
        work += f" ({float(row['fraction_of_peak']):.0%})"
    return work


NDCG_HEADER = "nDCG@10 (1st stage)"


def _ndcg(row: dict[str, Any]) -> str:
    if row.get("ndcg_at_10") is None:
        return "-"
    return f"{row['ndcg_at_10']:.4f} ({number(row.get('first_stage_ndcg_at_10'), 4)})"


def _agreement(row: dict[str, Any]) -> str:
    if row.get("agreement_spearman_mean") is None:
        return "-"
    return (
        f"{number(row.get('agreement_spearman_mean'), 3)}/{number(row.get('agreement_spearman_worst'), 3)} "
        f"{number(row.get('agreement_top10_overlap'), 2)}"
    )


def _ci(row: dict[str, Any]) -> str:
    if row.get("p50_ci_low_ms") is None:
        return "-"
    return f"{number(row.get('p50_ci_low_ms'))}-{number(row.get('p50_ci_high_ms'))}"


def _config(row: dict[str, Any]) -> str:
    threads = f" {row.get('threads')}t" if row.get("device") == "cpu" else ""
    features = features_label(row.get("attention"), row.get("prefix"))
    return f"{row.get('backend')} {row.get('dtype')} {row.get('order')}{features}{threads}"


# The sweep table's columns, in order. Headline columns are always shown and never cut; the others are shown,
# most useful first, as far as the terminal's width allows (all of them with --wide, and all are in the CSV).
SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column("model", _model, numeric=False, headline=True),
    Column("config", _config, numeric=False, headline=True),
    Column("depth", lambda r: str(r.get("depth")), headline=True),
    Column("batch", lambda r: str(r.get("batch_size")), headline=True),
    Column("pairs/s", lambda r: number(r.get("pairs_per_s")), headline=True),
    Column("p50 ms", lambda r: number(r.get("p50_ms")), headline=True),
    Column("p95 ms", lambda r: number(r.get("p95_ms")), headline=True),
    Column("queries", lambda r: str(r.get("n_queries") or "-"), priority=1),
    Column("busy %", lambda r: number(r.get("background_cpu_pct"), 0), priority=2),
    Column("tokens/s", lambda r: number(r.get("tokens_per_s"), 0), priority=8),
    Column("rho mean/worst top10", _agreement, priority=2),
    Column(NDCG_HEADER, _ndcg, priority=1),
    Column("peak MiB", lambda r: number(r.get("peak_vram_reserved_mib") or r.get("peak_rss_mib"), 0), priority=3),
    Column("p50 95% CI ms", _ci, priority=4),
    Column("GFLOP/s (peak)", _work, priority=5),
    Column("tok/pair", lambda r: number(r.get("pair_tokens_mean"), 0), priority=6),
    Column("pad eff", lambda r: number(r.get("padding_efficiency"), 2), priority=7),
    Column("status", _status, numeric=False, headline=True),
)


def _best_latency(entry: dict[str, Any]) -> str:
    if entry["best_latency_ms"] is None:
        return "- (too few queries)"
    return f"{number(entry['best_latency_ms'])} {entry['latency_metric'].removesuffix('_ms')}"


BEST_COLUMNS = [
    Column("model", _model, numeric=False),
    Column("config", _config, numeric=False),
    Column("depth", lambda e: str(e["depth"])),
    Column("best batch", lambda e: str(e["best_throughput_batch"])),
    Column("pairs/s", lambda e: number(e["best_pairs_per_s"])),
    Column("lat. batch", lambda e: str(e["best_latency_batch"] or "-")),
    Column("latency ms", _best_latency),
]


def render_summary(
    rows: list[dict[str, Any]], best: list[dict[str, Any]], output: str, console: Console, wide: bool = False
) -> None:
    ok = [r for r in rows if r.get("status") == Status.OK]
    reasons = list(dict.fromkeys(_why(r) for r in rows if _why(r)))
    rows = [{**r, "_note": reasons.index(_why(r)) + 1} if _why(r) else r for r in rows]
    labelled = any(r.get("ndcg_at_10") is not None for r in rows)
    columns = SUMMARY_COLUMNS if labelled else tuple(c for c in SUMMARY_COLUMNS if c.header != NDCG_HEADER)
    shown = fit_columns(columns, rows, console.width, wide)
    table = table_of("rerank-bench sweep: per-query latency and throughput", shown, rows)
    if wide:  # the whole table at its natural width: the terminal wraps long lines, no cell is cut
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        width, console.width = console.width, max(console.width, natural)
        try:
            console.print(table, crop=False)
        finally:
            console.width = width
    else:
        console.print(table)
    for n, reason in enumerate(reasons, start=1):
        console.print(escape(f"[{n}] {reason}"), highlight=False)
    left_out = [c.header for c in columns if c not in shown]
    if left_out:
        console.print(f"not shown at this width: {', '.join(left_out)} (--wide shows them; the CSV has every column)")
    if any(row.get("agreement_spearman_mean") is not None for row in rows):
        console.print(
            "rho: Spearman of each case's scores against torch fp32 (given order) on the same requests; "
            "top10: share of the reference's top 10 kept."
        )
    if labelled:
        quality = next(r for r in rows if r.get("ndcg_at_10") is not None)
        console.print(
            f"nDCG@10: on {quality.get('quality_requests')} labelled requests (trec_eval through ir-measures); "
            "in brackets the candidates' given order (the first stage), so the reranker's lift shows."
        )
    if best:
        console.print(table_of("Best batch size per model and depth", BEST_COLUMNS, best))
        console.print("best batch: the highest pairs/s; lat. batch: the lowest latency (p95, or p50 where noted).")
    if any(e["latency_metric"] == "p50_ms" for e in best):
        console.print(
            f"p95 needs at least {min_samples_for(95)} timed queries per case; raise --max-seconds-per-case to get "
            "it everywhere."
        )
    few = [r for r in rows if _too_few(r)]
    if few:
        console.print(
            f"{len(few)} case(s) ran too few queries for a median (3 needed): their latency is not reported; "
            "raise --max-seconds-per-case."
        )
    busy = [r for r in rows if (r.get("background_cpu_pct") or 0.0) > BUSY_PCT]
    if busy:
        worst = max(r["background_cpu_pct"] for r in busy)
        console.print(
            f"busy machine: {len(busy)} case(s) ran while other processes took more than {BUSY_PCT:.0f}% of the CPU "
            f"(up to {worst:.0f}%); their figures are likely low. Run again on an idle machine (check `uptime`)."
        )
    if any(_is_random(r) for r in rows):
        console.print("(random): the architecture twin with random weights: real speed, meaningless scores.")
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
            self.task = self.progress.add_task("planning", total=total)

    def __enter__(self) -> ProgressEvents:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()

    def notice(self, message: str) -> None:
        self.console.print(f"[yellow]notice:[/] {escape(message)}", highlight=False)

    def preparing(self, what: str) -> None:
        """What happens before the first case of a model (loading, building a twin, probing the peak): on the
        bar while it lasts, or one line in a log."""
        if self.progress:
            self.progress.update(self.task, description=what)
        else:
            self.console.print(escape(f"preparing: {what}"), highlight=False)

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
            if row.get("status") == Status.OK
            else row.get("status_reason", "")
        )
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        self.console.print(escape(f"[{count}] {case.describe()}: {row.get('status')} {detail}"), highlight=False)
