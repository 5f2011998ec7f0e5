"""leaderboard.md: the leaderboard as a Markdown table (for a pull request or a wiki page)."""

from __future__ import annotations

from typing import Any

from rerank_bench.report.leaderboard import COLUMNS, RANDOM_NOTE, SERVED_COLUMNS, served_cells, table_cells


def leaderboard_markdown(
    entries: list[dict[str, Any]], notes: list[str], served: list[dict[str, Any]] | None = None
) -> str:
    lines = [
        "| " + " | ".join(c.header for c in COLUMNS) + " |",
        "| " + " | ".join("---:" if c.numeric else "---" for c in COLUMNS) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_cells(entries)]
    if any(e["random_weights"] for e in entries):
        lines += ["", RANDOM_NOTE]
    if served:
        lines += ["", "Served endpoints (one row per load level):", ""]
        lines.append("| " + " | ".join(c.header for c in SERVED_COLUMNS) + " |")
        lines.append("| " + " | ".join("---:" if c.numeric else "---" for c in SERVED_COLUMNS) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in served_cells(served)]
    lines.extend(["", *(f"> {n}" for n in notes)] if notes else [])
    return "\n".join(lines) + "\n"
