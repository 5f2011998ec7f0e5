"""Terminal view of `report`: the leaderboard and where the files went."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rerank_bench.report.build import ReportOutput


def render_leaderboard(output: ReportOutput, console: Console) -> None:
    for note in output.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    table = Table(title="rerank-bench leaderboard")
    for name, right in (
        ("model", False),
        ("weights", False),
        ("backend/dtype", False),
        ("hardware", False),
        ("best pairs/s", True),
        ("at batch", True),
        ("order", False),
        ("rho vs fp32", True),
        ("of peak", True),
        ("p95 ms @20", True),
        ("p95 ms @50", True),
        ("p95 ms @100", True),
        ("peak MiB", True),
    ):
        table.add_column(name, justify="right" if right else "left")

    def cell(entry: dict, depth: int) -> str:
        value = entry[f"p95_ms_depth_{depth}"]
        if value is None:
            return "-"
        return f"{value:,.0f}" + ("" if entry[f"latency_metric_depth_{depth}"] == "p95" else " (p50)")

    for e in output.entries:
        table.add_row(
            e["model"],
            e["weights"],
            f"{e['backend']}/{e['dtype']}",
            f"{e['hardware']} ({e['device']})",
            f"{e['best_pairs_per_s']:,.1f}",
            str(e["best_batch_size"]),
            str(e.get("best_order") or "-"),
            "-" if e.get("agreement_spearman") is None else f"{e['agreement_spearman']:.4f}",
            "-" if e.get("fraction_of_peak") is None else f"{e['fraction_of_peak']:.0%}",
            cell(e, 20),
            cell(e, 50),
            cell(e, 100),
            f"{e['peak_memory_mib']:,.0f}" if e["peak_memory_mib"] else "-",
        )
    console.print(table)
    for what, path in output.files.items():
        console.print(f"{what}: {path}", highlight=False)
