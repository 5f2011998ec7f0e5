"""`rerank-bench report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rerank_bench.cli.common import JsonOption, guarded, print_json, stdout


@guarded
def report(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Result CSV files or folders (searched recursively)."),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Folder for leaderboard.md/.csv, the PNG plots and report.html."),
    ] = Path("report"),
    budget_ms: Annotated[
        float | None,
        typer.Option("--budget-ms", metavar="MS", help="Latency budget drawn on the latency-vs-depth plot."),
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="FIELD=VALUE,...",
            help="FIELD=VALUE[,VALUE] with FIELD model, hardware or backend; repeatable.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Merge result CSVs from many machines into a leaderboard (terminal, Markdown, CSV), plots (PNG) and one
    self-contained HTML page (plots embedded, nothing fetched from the network).

    Examples:

    \b
      rerank-bench report results/ --out report --budget-ms 200 --filter model=minilm-l6
    """
    from rerank_bench.report.build import build_report, parse_filters

    output = build_report(inputs, out, budget_ms, parse_filters(filter_ or []))
    if as_json:
        print_json(output.to_dict())
        return
    from rerank_bench.render.report_view import render_leaderboard

    render_leaderboard(output, stdout)
