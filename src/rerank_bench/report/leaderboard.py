"""The leaderboard: result rows from many machines merged (pandas), the best configuration per model,
backend, dtype and hardware, and its table's columns, declared once here for the terminal, Markdown and
HTML renderings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_bench.common.vocab import Status
from rerank_bench.errors import ResultFileError, UsageError
from rerank_bench.results.schema import FLOAT_COLUMNS, INT_COLUMNS
from rerank_bench.results.store import find_result_files, read_rows

LEADERBOARD_DEPTHS = (20, 50, 100)
FILTER_FIELDS = ("model", "hardware", "backend")
RANDOM_MARK = "⚠"
RANDOM_NOTE = (
    "⚠ random: measured on the architecture twin (random weights), which runs exactly as fast as the trained "
    "model; its scores are meaningless."
)


SERVED = "endpoint"  # the backend column of `rerank-bench endpoint` rows


@dataclass
class ReportData:
    rows: Any  # pandas.DataFrame of every row (all statuses), deduplicated
    files: list[Path]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> Any:
        return self.rows[self.rows["status"] == Status.OK]

    @property
    def in_process(self) -> Any:
        """ok rows measured in process (sweep, tune): the leaderboard's and the sweep plots' rows."""
        ok = self.ok
        return ok[ok["backend"] != SERVED]

    @property
    def served(self) -> Any:
        """ok rows of served endpoints (`endpoint`): one per load level."""
        ok = self.ok
        return ok[ok["backend"] == SERVED]


def load_report_data(paths: list[Path], filters: dict[str, list[str]] | None = None) -> ReportData:
    import pandas as pd

    frames = []
    found = find_result_files(paths)
    files = found.files
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
    notes = [note] if (note := found.note()) else []
    if len(data) < before:
        notes.append(f"{before - len(data)} duplicate row(s) (same run and case, read twice) counted once")
    for column in FLOAT_COLUMNS | INT_COLUMNS:  # typed already; this gives pandas one dtype per column
        if column in data:
            data[column] = pd.to_numeric(data[column])
    data = data.copy()  # one block per dtype again: the column-by-column conversion above fragments the frame
    data["hardware"] = data["hardware_name"].where(data["hardware_name"].fillna("") != "", data["hardware_fingerprint"])
    # Two hosts of one kind read alike ("AMD EPYC (2 cores)"); the fingerprint's first digits tell them apart in
    # every table and plot, and group their rows apart (filters still take the name).
    data["machine"] = data["hardware"].astype(str) + " #" + data["hardware_fingerprint"].astype(str).str[:6]
    for name, values in (filters or {}).items():
        data = data[data[name].isin(values)]
    if data.empty:
        raise UsageError(
            "no rows left after --filter", "check the values against the files' model, hardware and backend"
        )
    if (data["status"] != Status.OK).all():
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
    ok = data.in_process
    out: list[dict[str, Any]] = []
    if ok.empty:
        return out
    group_cols = ["model", "weights", "backend", "dtype", "device", "hardware", "hardware_fingerprint", "machine"]
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
            ndcg_at_10=_rounded(best.get("ndcg_at_10"), 4),
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


def served_levels(data: ReportData) -> list[dict[str, Any]]:
    """Each served load level: where, what load, what rate it achieved, its latency and errors."""
    out = []
    for _, row in data.served.iterrows():
        mode = row.get("load_mode")
        slo = _column(row, "slo_ms")
        verdict = _column(row, "slo_verdict")
        entry = {
            "endpoint": row["endpoint"],
            "api": row["api"],
            "server": row.get("server") or "",
            "model": row["model"],
            "depth": int(row["depth"]),
            "client": row["machine"],
        }
        if mode == "capacity":  # a capacity search's answer: the rate, with its SLO and its confirmation
            q = _column(row, "slo_percentile") or 95
            entry |= {
                "load": f"capacity at p{q:g} <= {slo:g} ms" if slo else "capacity",
                "achieved_rps": _rounded(_column(row, "capacity_rps"), 3),
                "p50_ms": None,
                "p95_ms": None,
                "errors": "",
                "goodput_rps": None,
                "slo": f"confirmation {verdict}" if verdict else "",
            }
        else:
            load = f"closed x{int(row['concurrency'])}" if mode == "closed" else f"open {row['offered_rps']:.3g}/s"
            entry |= {
                "load": load,
                "achieved_rps": _rounded(row["queries_per_s"], 2),
                "p50_ms": _rounded(row["p50_ms"], 1),
                "p95_ms": _rounded(row["p95_ms"], 1),
                "errors": row.get("errors") or "",
                "goodput_rps": _rounded(row.get("goodput_rps"), 2),
                "slo": f"{verdict} at {slo:g} ms" if verdict and slo else "",
            }
        out.append(entry)
    out.sort(key=lambda e: (e["endpoint"], e["depth"], e["load"].split()[0], e["achieved_rps"] or 0))
    return out


def machines(data: ReportData) -> list[dict[str, Any]]:
    out = []
    for fingerprint, group in data.rows.groupby("hardware_fingerprint", sort=True):
        first = group.iloc[0]
        out.append(
            {
                "fingerprint": fingerprint,
                "hardware": first.get("hardware"),
                "speed_check": _speed_check(group),
                "cpu": first.get("cpu_model"),
                "isa": first.get("cpu_isa"),
                "torch": ", ".join(sorted(set(group["torch_version"].astype(str)))),
                "tool": ", ".join(sorted(set(group["tool_version"].astype(str)))),
                "rows": int(len(group)),
            }
        )
    return out


def _speed_check(group: Any) -> str:
    """The machine's measured fp32 matmul peak over its runs (the best thread count of each run): hosts of one
    fingerprint differ by up to 1.5x, and a reader comparing two machines' rows needs their own peaks."""
    if "peak_gflop_per_s" not in group:
        return ""
    fp32 = group[group["dtype"] == "fp32"].dropna(subset=["peak_gflop_per_s"])
    runs = fp32.groupby("run_id")["peak_gflop_per_s"].max()
    if runs.empty:
        return ""
    low, high = float(runs.min()), float(runs.max())
    spread = f"{low:,.0f}" if round(low) == round(high) else f"{low:,.0f}-{high:,.0f}"
    return f"fp32 {spread} GFLOP/s ({len(runs)} run{'s' if len(runs) > 1 else ''})"


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[dict[str, Any]], str]
    numeric: bool = True


def _latency(depth: int) -> Callable[[dict[str, Any]], str]:
    def cell(entry: dict[str, Any]) -> str:
        value = entry[f"p95_ms_depth_{depth}"]
        if value is None:
            return "-"
        return f"{value:,.0f}" + ("" if entry[f"latency_metric_depth_{depth}"] == "p95" else " (p50)")

    return cell


def _maybe(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


# The leaderboard table, once: every rendering (terminal, leaderboard.md, report.html) shows these columns.
COLUMNS: tuple[Column, ...] = (
    Column("model", lambda e: str(e["model"]), numeric=False),
    Column("weights", lambda e: e["weights"] + (f" {RANDOM_MARK}" if e["random_weights"] else ""), numeric=False),
    Column("backend/dtype", lambda e: f"{e['backend']}/{e['dtype']}", numeric=False),
    Column("hardware", lambda e: f"{e['machine']} ({e['device']})", numeric=False),
    Column("best pairs/s", lambda e: f"{e['best_pairs_per_s']:,.1f}"),
    Column("at batch, order", lambda e: f"{e['best_batch_size']}, {e.get('best_order') or '-'}"),
    Column("rho vs fp32", lambda e: _maybe(e.get("agreement_spearman"), ".4f")),
    Column("nDCG@10", lambda e: _maybe(e.get("ndcg_at_10"), ".4f")),
    Column("of peak", lambda e: _maybe(e.get("fraction_of_peak"), ".0%")),
    *(Column(f"p95 ms @{d}", _latency(d)) for d in LEADERBOARD_DEPTHS),
    Column("peak MiB", lambda e: _maybe(e["peak_memory_mib"], ",.0f")),
)


def table_cells(entries: list[dict[str, Any]]) -> list[list[str]]:
    return [[column.cell(e) for column in COLUMNS] for e in entries]


SERVED_COLUMNS = (
    Column("endpoint", lambda e: e["endpoint"], numeric=False),
    Column("api", lambda e: e["api"], numeric=False),
    Column("model", lambda e: e["model"], numeric=False),
    Column("depth", lambda e: str(e["depth"])),
    Column("load", lambda e: e["load"], numeric=False),
    Column("req/s", lambda e: _maybe(e["achieved_rps"], ".2f")),
    Column("p50 ms", lambda e: _maybe(e["p50_ms"], ".1f")),
    Column("p95 ms", lambda e: _maybe(e["p95_ms"], ".1f")),
    Column("errors", lambda e: e["errors"] or "-", numeric=False),
    Column("SLO", lambda e: e.get("slo") or "-", numeric=False),
    Column("client", lambda e: e["client"], numeric=False),
)


def _column(row: Any, name: str) -> Any:
    """A cell of a pandas row that may be missing (older files) or NaN (empty), as None."""
    value = row.get(name)
    return None if value is None or value != value else value


def served_cells(levels: list[dict[str, Any]]) -> list[list[str]]:
    return [[c.cell(e) for c in SERVED_COLUMNS] for e in levels]
