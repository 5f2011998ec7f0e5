"""The report as one self-contained HTML file: plots embedded as base64 PNG, no external URL, no script."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from rerank_bench import __version__
from rerank_bench.report.leaderboard import COLUMNS, RANDOM_NOTE, SERVED_COLUMNS, served_cells, table_cells

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.55rem; }
th { background: #f6f8fa; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #d0d7de; margin: 0.5rem 0; }
.note { color: #9a6700; } .muted { color: #656d76; font-size: 0.8rem; }
"""


def _cell(value: Any) -> str:
    if value is None or value == "":
        return '<td class="num">-</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:,.1f}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(columns: Any, rows: list[list[str]]) -> list[str]:
    parts = ["<table><tr>" + "".join(f"<th>{html.escape(c.header)}</th>" for c in columns) + "</tr>"]
    for row in rows:
        cells = (
            f"<td{' class=num' if c.numeric else ''}>{html.escape(value)}</td>"
            for c, value in zip(columns, row, strict=True)
        )
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return parts


def render_html(
    entries: list[dict[str, Any]],
    plots: list[Path],
    notes: list[str],
    machines: list[dict[str, Any]],
    title: str,
    served: list[dict[str, Any]] | None = None,
) -> str:
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for note in notes:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    parts.append("<h2>Leaderboard</h2>")
    parts.extend(_table(COLUMNS, table_cells(entries)))
    if any(e["random_weights"] for e in entries):
        parts.append(f"<p class='muted'>{html.escape(RANDOM_NOTE)}</p>")
    if served:
        parts.append("<h2>Served endpoints</h2>")
        parts.extend(_table(SERVED_COLUMNS, served_cells(served)))
    parts.append("<h2>Plots</h2>")
    for plot in plots:
        data = base64.b64encode(plot.read_bytes()).decode()
        parts.append(f"<img alt='{html.escape(plot.stem)}' src='data:image/png;base64,{data}'>")
    parts.append(
        "<h2>Machines</h2><table><tr><th>fingerprint</th><th>hardware</th><th>speed check</th><th>CPU</th><th>ISA</th>"
        "<th>torch</th><th>rerank-bench</th><th>rows</th></tr>"
    )
    for m in machines:
        parts.append(
            "<tr>"
            + "".join(
                _cell(m[k]) for k in ("fingerprint", "hardware", "speed_check", "cpu", "isa", "torch", "tool", "rows")
            )
            + "</tr>"
        )
    parts.append(f"</table><p class='muted'>Made by rerank-bench {__version__}.</p></body></html>")
    return "\n".join(parts) + "\n"
