"""Terminal view of `report`: the leaderboard and where the files went."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rerank_bench.report.build import ReportOutput
from rerank_bench.report.leaderboard import COLUMNS, RANDOM_NOTE, table_cells


def render_leaderboard(output: ReportOutput, console: Console) -> None:
    for note in output.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    table = Table(title="rerank-bench leaderboard")
    for column in COLUMNS:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for row in table_cells(output.entries):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    if any(e["random_weights"] for e in output.entries):
        console.print(escape(RANDOM_NOTE), highlight=False)
    for what, path in output.files.items():
        console.print(f"{what}: {path}", highlight=False)
