"""Terminal view of `report`: the leaderboard and where the files went."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rerank_bench.report.build import ReportOutput
from rerank_bench.report.leaderboard import COLUMNS, RANDOM_NOTE, SERVED_COLUMNS, served_cells, table_cells


def render_leaderboard(output: ReportOutput, console: Console) -> None:
    for note in output.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if output.entries:
        console.print(_table("rerank-bench leaderboard", COLUMNS, table_cells(output.entries)))
    if any(e["random_weights"] for e in output.entries):
        console.print(escape(RANDOM_NOTE), highlight=False)
    if output.served:
        console.print(_table("served endpoints (one row per load level)", SERVED_COLUMNS, served_cells(output.served)))
    for what, path in output.files.items():
        console.print(f"{what}: {path}", highlight=False)


def _table(title: str, columns: tuple, rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    return table
