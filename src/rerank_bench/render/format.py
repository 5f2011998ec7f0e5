"""How every terminal view writes a number: thousands separators, fixed digits, "-" for a missing value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table


def number(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "-"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


@dataclass(frozen=True)
class Column:
    """One column of a terminal table: its header and how a row becomes its cell."""

    header: str
    cell: Callable[[dict[str, Any]], str]
    numeric: bool = True
    headline: bool = False  # always shown and never cut
    priority: int = 99  # optional columns join in this order while the width allows
    wraps: bool = False  # may wrap onto more lines (long text such as a status reason)


def content_width(column: Column, rows: list[dict[str, Any]]) -> int:
    return max([len(column.header), *(len(column.cell(r)) for r in rows)])


def need(column: Column, rows: list[dict[str, Any]]) -> int:
    """Characters a column takes at its full content width (a wrapping one at most 40) and its separator."""
    content = content_width(column, rows)
    return (min(content, 40) if column.wraps else content) + 2


def fit_columns(columns: tuple[Column, ...], rows: list[dict[str, Any]], width: int, wide: bool) -> list[Column]:
    """The headline columns, plus as many optional ones (by priority) as fit in `width` at their full
    content width, in their declared order. Like hyperfine and nvitop, the figures people came for are never
    the ones truncated; what does not fit is left to --wide and the CSV."""
    if wide:
        return list(columns)
    used = 1 + sum(need(c, rows) for c in columns if c.headline)
    chosen = {c.header for c in columns if c.headline}
    for column in sorted((c for c in columns if not c.headline), key=lambda c: c.priority):
        if used + need(column, rows) <= width:
            chosen.add(column.header)
            used += need(column, rows)
    return [c for c in columns if c.header in chosen]


def table_of(title: str, columns: list[Column], rows: list[dict[str, Any]]) -> Table:
    # A light frame (a rule under the header, one space between columns): at 100 columns the headline figures
    # of a sweep fit whole, which a fully boxed table would cut.
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False, padding=(0, 1))
    for column in columns:
        table.add_column(
            column.header,
            justify="right" if column.numeric else "left",
            no_wrap=not column.wraps,
            overflow="fold",
            min_width=None if column.wraps else content_width(column, rows),  # never squeezed, never cut
        )
    for row in rows:
        table.add_row(*(escape(column.cell(row)) for column in columns))
    return table
