"""`report`: result CSVs from many machines merged into one leaderboard, plots and a self-contained HTML page.

Rows keep the hardware and software identity they were measured with; identical runs read twice (the same
file in two folders, say) count once. pandas does the merging (leaderboard.py); plots are matplotlib (plots.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_bench.errors import UsageError
from rerank_bench.report.leaderboard import FILTER_FIELDS, leaderboard, load_report_data, machines, served_levels
from rerank_bench.report.markdown import leaderboard_markdown
from rerank_bench.results.store import output_error, write_csv, write_text


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in FILTER_FIELDS or not value.strip():
            raise UsageError(f"--filter {item!r} is not FIELD=VALUE", f"fields: {', '.join(FILTER_FIELDS)}")
        filters.setdefault(name.strip(), []).extend(v.strip() for v in value.split(","))
    return filters


@dataclass
class ReportOutput:
    entries: list[dict[str, Any]]
    files: dict[str, str]  # what -> path written
    notes: list[str]
    machines: list[dict[str, Any]]
    served: list[dict[str, Any]] = field(default_factory=list)  # served endpoints' load levels

    def to_dict(self) -> dict[str, Any]:
        return {
            "leaderboard": self.entries,
            "served": self.served,
            "files": self.files,
            "notes": self.notes,
            "machines": self.machines,
        }


def build_report(
    paths: list[Path], out_dir: Path, budget_ms: float | None = None, filters: dict[str, list[str]] | None = None
) -> ReportOutput:
    """Read, merge, and write leaderboard.md/.csv, the plots (PNG) and report.html into out_dir."""
    from rerank_bench.report import plots
    from rerank_bench.report.html import render_html

    data = load_report_data(paths, filters)
    entries = leaderboard(data)
    served = served_levels(data)
    notes = list(data.notes)
    if (data.rows["weights"].astype(str).str.startswith("random")).any():
        notes.append("some rows measured the random-weight architecture twin: speed is the model's, scores are not")
    in_process = data.in_process
    has_agreement = "agreement_spearman_mean" in in_process and in_process["agreement_spearman_mean"].notna().any()
    if not has_agreement and entries:
        notes.append(
            "no ranking-agreement figures in these files: "
            "the speed-vs-agreement plot needs a sweep over backends/dtypes"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, and the report is a folder", "choose a folder name for --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(out_dir, exc) from None
    files: dict[str, str] = {}
    md = out_dir / "leaderboard.md"
    write_text(md, leaderboard_markdown(entries, notes, served))
    files["leaderboard_markdown"] = str(md)
    table = out_dir / "leaderboard.csv"
    write_csv(table, list(entries[0]) if entries else [], entries)
    files["leaderboard_csv"] = str(table)
    pngs: list[Path] = []
    if entries:
        pngs.extend(plots.throughput_vs_batch(in_process, out_dir))
        pngs.append(plots.latency_vs_depth(in_process, out_dir, budget_ms))
        pngs.append(plots.memory_vs_batch(in_process, out_dir))
        if has_agreement:
            pngs.extend(plots.speed_vs_agreement(in_process, out_dir))
        if "ndcg_at_10" in in_process and in_process["ndcg_at_10"].notna().any():
            pngs.extend(plots.speed_vs_ndcg(in_process, out_dir))
    if served:
        pngs.append(plots.latency_vs_load(data.served, out_dir, budget_ms))
    for png in pngs:
        files[png.stem] = str(png)
    machine_list = machines(data)
    page = out_dir / "report.html"
    write_text(page, render_html(entries, pngs, notes, machine_list, "rerank-bench report", served))
    files["html"] = str(page)
    return ReportOutput(entries=entries, files=files, notes=notes, machines=machine_list, served=served)
