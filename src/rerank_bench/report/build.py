"""`report`: result CSVs from many machines merged into one leaderboard, plots and a self-contained HTML page.

Rows keep the hardware and software identity they were measured with; identical runs read twice (the same
file in two folders, say) count once. pandas does the merging; plots are matplotlib (render/plots.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_bench.errors import ResultFileError, UsageError
from rerank_bench.results.store import read_rows

LEADERBOARD_DEPTHS = (20, 50, 100)
NUMERIC = (
    "batch_size",
    "depth",
    "max_length",
    "threads",
    "pairs_per_s",
    "queries_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "peak_rss_mib",
    "peak_vram_reserved_mib",
    "pair_tokens_mean",
    "padding_efficiency",
    "gflop_per_s",
    "fraction_of_peak",
    "agreement_spearman_mean",
    "agreement_spearman_worst",
    "agreement_top10_overlap",
)
FILTER_FIELDS = ("model", "hardware", "backend")


@dataclass
class ReportData:
    rows: Any  # pandas.DataFrame of every row (all statuses), deduplicated
    files: list[Path]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> Any:
        return self.rows[self.rows["status"] == "ok"]


def _files(paths: list[Path], exclude: Path | None = None) -> list[Path]:
    """Result CSVs named or found under folders; files under `exclude` (the report's own output, which holds
    leaderboard.csv) are skipped."""
    files: list[Path] = []
    skip = exclude.resolve() if exclude is not None else None
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.csv") if skip is None or skip not in p.resolve().parents))
        elif path.is_file():
            files.append(path)
        else:
            raise ResultFileError(f"{path} does not exist")
    if not files:
        raise ResultFileError(f"no result CSV files in {', '.join(map(str, paths))}")
    return files


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in FILTER_FIELDS or not value.strip():
            raise UsageError(f"--filter {item!r} is not FIELD=VALUE", f"fields: {', '.join(FILTER_FIELDS)}")
        filters.setdefault(name.strip(), []).extend(v.strip() for v in value.split(","))
    return filters


def load_report_data(
    paths: list[Path], filters: dict[str, list[str]] | None = None, exclude: Path | None = None
) -> ReportData:
    import pandas as pd

    frames = []
    files = _files(paths, exclude)
    for path in files:
        rows = read_rows(path)  # checks the schema version, names the row on a mismatch
        if rows:
            frame = pd.DataFrame(rows)
            frame["source_file"] = path.name
            frames.append(frame)
    if not frames:
        raise ResultFileError(f"the result files hold no rows: {', '.join(str(f) for f in files)}")
    data = pd.concat(frames, ignore_index=True)
    before = len(data)
    data = data.drop_duplicates(subset=["run_id", "case_id"], keep="last")
    notes = []
    if len(data) < before:
        notes.append(f"{before - len(data)} duplicate row(s) (same run and case, read twice) counted once")
    for column in NUMERIC:
        if column in data:
            data[column] = pd.to_numeric(data[column], errors="coerce")
    data["hardware"] = data["hardware_name"].where(data["hardware_name"] != "", data["hardware_fingerprint"])
    for name, values in (filters or {}).items():
        data = data[data[name].isin(values)]
    if data.empty:
        raise UsageError(
            "no rows left after --filter", "check the values against the files' model, hardware and backend"
        )
    if (data["status"] != "ok").all():
        notes.append("no case measured ok: the leaderboard and plots are empty; see the status column")
    return ReportData(rows=data.reset_index(drop=True), files=files, notes=notes)


def _rounded(value: Any, digits: int) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else round(number, digits)


def leaderboard(data: ReportData) -> list[dict[str, Any]]:
    """Per model, weights, backend, dtype and hardware: best throughput and its batch, p95 at depths 20/50/100
    (at the batch with the lowest p95 there, p50 where p95 lacks samples), peak memory."""
    ok = data.ok
    out: list[dict[str, Any]] = []
    if ok.empty:
        return out
    group_cols = ["model", "weights", "backend", "dtype", "device", "hardware", "hardware_fingerprint"]
    for key, group in ok.groupby(group_cols, sort=True):
        best = group.loc[group["pairs_per_s"].idxmax()]
        entry: dict[str, Any] = dict(zip(group_cols, key, strict=False))
        entry.update(
            best_pairs_per_s=round(float(best["pairs_per_s"]), 2),
            best_batch_size=int(best["batch_size"]),
            best_at_depth=int(best["depth"]),
            best_order=best.get("order", ""),
            best_threads=int(best["threads"]) if best.get("threads") == best.get("threads") else None,
            agreement_spearman=_rounded(best.get("agreement_spearman_mean"), 4),
            fraction_of_peak=_rounded(best.get("fraction_of_peak"), 3),
        )
        for depth in LEADERBOARD_DEPTHS:
            at = group[group["depth"] == depth]
            value, metric = None, None
            if not at.empty:
                if at["p95_ms"].notna().any():
                    value, metric = float(at["p95_ms"].min()), "p95"
                elif at["p50_ms"].notna().any():
                    value, metric = float(at["p50_ms"].min()), "p50"
            entry[f"p95_ms_depth_{depth}"] = round(value, 1) if value is not None else None
            entry[f"latency_metric_depth_{depth}"] = metric
        memory = (
            group["peak_vram_reserved_mib"] if group["peak_vram_reserved_mib"].notna().any() else group["peak_rss_mib"]
        )
        entry["peak_memory_mib"] = round(float(memory.max()), 1) if memory.notna().any() else None
        entry["random_weights"] = str(entry["weights"]).startswith("random")
        entry["software"] = f"torch {best.get('torch_version', '')}, rerank-bench {best.get('tool_version', '')}"
        out.append(entry)
    out.sort(key=lambda e: (e["model"], -e["best_pairs_per_s"]))
    return out


def leaderboard_markdown(entries: list[dict[str, Any]], notes: list[str]) -> str:
    lines = [
        "| model | weights | backend/dtype | hardware | best pairs/s | at batch, order | rho vs fp32 | of peak | p95 ms @20 | p95 ms @50 | p95 ms @100 | peak MiB |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(entry: dict[str, Any], depth: int) -> str:
        value = entry[f"p95_ms_depth_{depth}"]
        if value is None:
            return "-"
        return f"{value:,.0f}" + ("" if entry[f"latency_metric_depth_{depth}"] == "p95" else " (p50)")

    for e in entries:
        weights = e["weights"] + (" ⚠" if e["random_weights"] else "")
        lines.append(
            f"| {e['model']} | {weights} | {e['backend']}/{e['dtype']} | {e['hardware']} ({e['device']}) | "
            f"{e['best_pairs_per_s']:,.1f} | {e['best_batch_size']}, {e.get('best_order') or '-'} | "
            f"{'-' if e.get('agreement_spearman') is None else format(e['agreement_spearman'], '.4f')} | "
            f"{'-' if e.get('fraction_of_peak') is None else format(e['fraction_of_peak'], '.0%')} | "
            f"{cell(e, 20)} | {cell(e, 50)} | {cell(e, 100)} | "
            f"{e['peak_memory_mib'] or '-'} |"
        )
    if any(e["random_weights"] for e in entries):
        lines.append("")
        lines.append(
            "⚠ random: measured on the architecture twin (random weights): same speed as the trained model, meaningless scores."
        )
    lines.extend(["", *(f"> {n}" for n in notes)] if notes else [])
    return "\n".join(lines) + "\n"


def machines(data: ReportData) -> list[dict[str, Any]]:
    out = []
    for fingerprint, group in data.rows.groupby("hardware_fingerprint", sort=True):
        first = group.iloc[0]
        out.append(
            {
                "fingerprint": fingerprint,
                "hardware": first.get("hardware"),
                "cpu": first.get("cpu_model"),
                "isa": first.get("cpu_isa"),
                "torch": ", ".join(sorted(set(group["torch_version"].astype(str)))),
                "tool": ", ".join(sorted(set(group["tool_version"].astype(str)))),
                "rows": int(len(group)),
            }
        )
    return out


@dataclass
class ReportOutput:
    entries: list[dict[str, Any]]
    files: dict[str, str]  # what -> path written
    notes: list[str]
    machines: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"leaderboard": self.entries, "files": self.files, "notes": self.notes, "machines": self.machines}


def build_report(
    paths: list[Path], out_dir: Path, budget_ms: float | None = None, filters: dict[str, list[str]] | None = None
) -> ReportOutput:
    """Read, merge, and write leaderboard.md/.csv, the plots (PNG) and report.html into out_dir."""
    import csv

    from rerank_bench.report import plots
    from rerank_bench.report.html import render_html

    data = load_report_data(paths, filters, exclude=out_dir)
    entries = leaderboard(data)
    notes = list(data.notes)
    if (data.rows["weights"].astype(str).str.startswith("random")).any():
        notes.append("some rows measured the random-weight architecture twin: speed is the model's, scores are not")
    has_agreement = "agreement_spearman_mean" in data.ok and data.ok["agreement_spearman_mean"].notna().any()
    if not has_agreement:
        notes.append(
            "no ranking-agreement figures in these files: the speed-vs-agreement plot needs a sweep over backends/dtypes"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    md = out_dir / "leaderboard.md"
    md.write_text(leaderboard_markdown(entries, notes))
    files["leaderboard_markdown"] = str(md)
    table = out_dir / "leaderboard.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        if entries:
            writer = csv.DictWriter(f, fieldnames=list(entries[0]))
            writer.writeheader()
            writer.writerows(entries)
    files["leaderboard_csv"] = str(table)
    pngs: list[Path] = []
    if entries:
        pngs.extend(plots.throughput_vs_batch(data.ok, out_dir))
        pngs.append(plots.latency_vs_depth(data.ok, out_dir, budget_ms))
        pngs.append(plots.memory_vs_batch(data.ok, out_dir))
        if has_agreement:
            pngs.extend(plots.speed_vs_agreement(data.ok, out_dir))
    for png in pngs:
        files[png.stem] = str(png)
    machine_list = machines(data)
    page = out_dir / "report.html"
    page.write_text(render_html(entries, pngs, notes, machine_list, "rerank-bench report"), encoding="utf-8")
    files["html"] = str(page)
    return ReportOutput(entries=entries, files=files, notes=notes, machines=machine_list)
