"""The report's plots: PNG files, labelled with units, hardware names and the tool version.

matplotlib is imported here only, with the headless Agg backend: reports are made on servers and in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerank_bench import __version__


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        from rerank_bench.errors import EnvironmentProblem

        raise EnvironmentProblem(
            "report plots need matplotlib, which is not installed", 'pip install "rerank-bench[report]"'
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series_label(key: tuple[Any, ...]) -> str:
    model, weights, backend, dtype, machine = key
    twin = " (random weights)" if str(weights).startswith("random") else ""
    return f"{model}{twin} · {backend}/{dtype} · {machine}"


# "machine" is the hardware name with the fingerprint's first digits: two hosts of one kind are two series.
SERIES = ["model", "weights", "backend", "dtype", "machine"]


def _batch_axis(ax: Any, batches: Any) -> None:
    """Log2 axis labelled with the batch sizes themselves (8, 16, 32), not powers of two."""
    values = sorted({int(b) for b in batches})
    ax.set_xscale("log", base=2)
    ax.set_xticks(values, [str(v) for v in values])
    ax.minorticks_off()


# Ten colours times eight markers: every series gets its own (colour, marker) pair, up to 40 series, so two
# series never share a look (matplotlib's default cycle repeats its ten colours with one marker).
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def series_styles(keys: list[Any]) -> dict[Any, dict[str, Any]]:
    """A distinct colour and marker per series, in a stable order (sorted keys)."""
    styles: dict[Any, dict[str, Any]] = {}
    for i, key in enumerate(sorted(keys, key=str)):
        styles[key] = {"color": COLOURS[i % len(COLOURS)], "marker": MARKERS[(i // len(COLOURS)) % len(MARKERS)]}
    return styles


def _finish(fig: Any, ax: Any, path: Path, title: str) -> Path:
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    legend = ax.get_legend()
    handles, labels = (legend.legend_handles, [x.get_text() for x in legend.get_texts()]) if legend else ([], [])
    if not handles:
        handles, labels = ax.get_legend_handles_labels()
    if handles:  # below the plot, never over the data; as many columns as the labels' length allows
        columns = 1 if max(len(label) for label in labels) > 60 else 2
        ax.legend(
            handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=columns, frameon=False
        )
    fig.text(0.99, 0.005, f"rerank-bench {__version__}", ha="right", va="bottom", fontsize=7, color="gray")
    try:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as exc:
        from rerank_bench.results.store import output_error

        raise output_error(path, exc) from None
    finally:
        _pyplot().close(fig)
    return path


def throughput_vs_batch(ok: Any, out_dir: Path) -> list[Path]:
    """One figure per depth: pairs/s against batch size, one line per model, backend/dtype and hardware; at
    each batch size the best over orders, thread counts and repeated runs (the leaderboard says which)."""
    plt = _pyplot()
    paths = []
    for depth, at_depth in ok.groupby("depth"):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        groups = dict(list(at_depth.groupby(SERIES)))
        styles = series_styles(list(groups))
        for key, series in sorted(groups.items(), key=lambda kv: str(kv[0])):
            by_batch = series.groupby("batch_size")["pairs_per_s"].max().sort_index()
            ax.plot(by_batch.index, by_batch.values, label=_series_label(key), **styles[key])
        _batch_axis(ax, at_depth["batch_size"])
        ax.set_xlabel("batch size (pairs per forward pass)")
        ax.set_ylabel("throughput (pairs/s)")
        ax.set_ylim(bottom=0)
        paths.append(
            _finish(
                fig,
                ax,
                out_dir / f"throughput_vs_batch_depth{int(depth)}.png",
                f"Throughput vs batch size, {int(depth)} candidates per query",
            )
        )
    return paths


def latency_label(fallback: bool) -> str:
    """What the latency plot's y axis shows: p95, and p50 where a case had too few queries (hollow markers, as
    the legend says)."""
    return "per-query latency, p95 or p50 (ms)" if fallback else "per-query latency p95 (ms)"


def latency_vs_depth(ok: Any, out_dir: Path, budget_ms: float | None) -> Path:
    """p95 (p50 where p95 lacks samples) per-query latency against depth, at each series' best batch."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8, 4.5))
    fallback = False
    groups = dict(list(ok.groupby(SERIES)))
    styles = series_styles(list(groups))
    handles = []
    for key, series in sorted(groups.items(), key=lambda kv: str(kv[0])):
        points = []
        for depth, at in series.groupby("depth"):
            if at["p95_ms"].notna().any():
                points.append((depth, float(at["p95_ms"].min()), False))
            elif at["p50_ms"].notna().any():
                points.append((depth, float(at["p50_ms"].min()), True))
        if not points:
            continue
        fallback |= any(p[2] for p in points)
        style = styles[key]
        ax.plot([p[0] for p in points], [p[1] for p in points], color=style["color"])
        for depth, value, is_p50 in points:  # p95 filled; p50 (too few queries for a p95) hollow
            face = "white" if is_p50 else style["color"]
            ax.plot(
                [depth], [value], linestyle="none", marker=style["marker"], color=style["color"], markerfacecolor=face
            )
        handles.append(Line2D([0], [0], label=_series_label(key), **style))
    if fallback:
        grey: dict[str, Any] = {"color": "gray", "marker": "o", "linestyle": "none"}
        handles.append(Line2D([0], [0], label="filled: p95", **grey))
        handles.append(
            Line2D([0], [0], label="hollow: p50 (too few queries for a p95)", markerfacecolor="white", **grey)
        )
    if budget_ms is not None:
        handles.append(
            ax.axhline(budget_ms, color="red", linestyle="--", linewidth=1, label=f"budget {budget_ms:g} ms")
        )
    ax.set_xlabel("candidate depth (documents per query)")
    ax.set_ylabel(latency_label(fallback))
    ax.set_ylim(bottom=0)
    ax.legend(handles=handles)  # _finish moves it below the plot
    return _finish(fig, ax, out_dir / "latency_vs_depth.png", "Per-query latency vs depth (best batch size per depth)")


def load_points(series: Any) -> list[tuple[float, float, bool]]:
    """(rate, latency, is_p50) per level, sorted by rate. An open-loop level sits at the rate it offered (the
    load is what was chosen; a saturated level achieves less and would fold the curve back on itself), a
    closed-loop level at the rate it achieved (its load is a concurrency, not a rate)."""
    points = []
    for _, row in series.iterrows():
        is_p50 = row["p95_ms"] != row["p95_ms"]  # NaN: too few requests for a p95
        value = row["p50_ms"] if is_p50 else row["p95_ms"]
        rate = row["offered_rps"] if row["load_mode"] == "open" else row["queries_per_s"]
        if value == value and rate == rate:
            points.append((float(rate), float(value), bool(is_p50)))
    return sorted(points)


def latency_vs_load(served: Any, out_dir: Path, budget_ms: float | None) -> Path:
    """Served endpoints: p95 (p50 hollow where p95 lacks samples) against the request rate, one line per
    endpoint, depth, load mode, client machine and run: where the curve turns up is the endpoint's capacity. A
    capacity search's levels are points, not a line (they were run in bisection order, not along the curve).
    Each SLO the rows were measured against is drawn and labelled, beside report's own --budget-ms."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8, 4.5))
    searched = set(served.loc[served["load_mode"] == "capacity", "run_id"])
    levels = served[served["load_mode"] != "capacity"]
    keys = ["endpoint", "model", "depth", "load_mode", "machine", "run_id"]
    groups = dict(list(levels.groupby(keys)))
    runs_per_series = levels.groupby(keys[:-1])["run_id"].nunique()
    styles = series_styles(list(groups))
    handles = []
    fallback = False
    for key, series in sorted(groups.items(), key=lambda kv: str(kv[0])):
        points = load_points(series)
        if not points:
            continue
        fallback |= any(p[2] for p in points)
        style = styles[key]
        endpoint, model, depth, mode, machine, run_id = key
        search = run_id in searched
        if not search:
            ax.plot([p[0] for p in points], [p[1] for p in points], color=style["color"])
        for x, y, is_p50 in points:
            face = "white" if is_p50 else style["color"]
            ax.plot([x], [y], linestyle="none", marker=style["marker"], color=style["color"], markerfacecolor=face)
        what = "capacity search (levels as points)" if search else f"{mode} loop"
        label = f"{model} @ {endpoint}, depth {depth}, {what} · {machine}"
        if runs_per_series[key[:-1]] > 1:  # the same series measured in several runs: say which run this is
            label += f" · {str(series['utc_time'].iloc[0])[:16]}"
        handles.append(Line2D([0], [0], label=label, linestyle="none" if search else "-", **style))
    if fallback:
        grey: dict[str, Any] = {"color": "gray", "marker": "o", "linestyle": "none"}
        handles.append(
            Line2D([0], [0], label="hollow: p50 (too few requests for a p95)", markerfacecolor="white", **grey)
        )
    handles.extend(_slo_lines(ax, levels))
    if budget_ms is not None:
        handles.append(
            ax.axhline(budget_ms, color="red", linestyle="--", linewidth=1, label=f"--budget-ms {budget_ms:g} ms")
        )
    ax.set_xlabel("requests per second: offered (open loop), achieved (closed loop)")
    ax.set_ylabel(latency_label(fallback).replace("per-query", "per-request"))
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.legend(handles=handles)
    return _finish(fig, ax, out_dir / "latency_vs_load.png", "Served endpoints: latency vs load")


def _slo_lines(ax: Any, levels: Any) -> list[Any]:
    """A dotted line for each SLO the rows were measured against (endpoint --slo-ms), labelled with its
    percentile: the line a level's verdict was judged by, which report's --budget-ms need not be."""
    if "slo_ms" not in levels:
        return []
    slos = levels.dropna(subset=["slo_ms"])
    percentile = slos["slo_percentile"].fillna(95) if "slo_percentile" in slos else [95.0] * len(slos)
    pairs = sorted({(float(slo), float(q)) for slo, q in zip(slos["slo_ms"], percentile, strict=True)})
    lines = []
    for slo, q in pairs:
        label = f"SLO p{q:g} <= {slo:g} ms (the rows')"
        lines.append(ax.axhline(slo, color="#6e7781", linestyle=":", linewidth=1.2, label=label))
        # named on the plot too: several SLO lines share one look
        ax.annotate(
            f"SLO {slo:g} ms",
            (1.0, slo),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7,
            color="#6e7781",
        )
    return lines


def memory_vs_batch(ok: Any, out_dir: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    gpu = ok["peak_vram_reserved_mib"].notna().any()
    groups = dict(list(ok.groupby(SERIES)))
    styles = series_styles(list(groups))
    for key, series in sorted(groups.items(), key=lambda kv: str(kv[0])):
        column = "peak_vram_reserved_mib" if series["peak_vram_reserved_mib"].notna().any() else "peak_rss_mib"
        by_batch = series.groupby("batch_size")[column].max().sort_index()
        ax.plot(by_batch.index, by_batch.values, label=_series_label(key), **styles[key])
    _batch_axis(ax, ok["batch_size"])
    ax.set_xlabel("batch size (pairs per forward pass)")
    ax.set_ylabel(
        "peak memory (MiB)" + (": GPU reserved where measured on a GPU, else process RSS" if gpu else ": process RSS")
    )
    ax.set_ylim(bottom=0)
    return _finish(fig, ax, out_dir / "memory_vs_batch.png", "Peak memory vs batch size (largest over depths)")


def speed_vs_agreement(ok: Any, out_dir: Path) -> list[Path]:
    """One figure per depth: each backend/dtype at its fastest order, batch and threads, throughput against
    mean Spearman with torch fp32; what a faster configuration costs in ranking, at a glance."""
    return _speed_against(
        ok,
        out_dir,
        "agreement_spearman_mean",
        "ranking agreement: mean Spearman vs torch fp32 (1 = identical order)",
        (0.99, "Spearman 0.99"),
        "speed_vs_agreement",
        "Speed vs ranking agreement",
    )


def speed_vs_ndcg(ok: Any, out_dir: Path) -> list[Path]:
    """The same against nDCG@10 on labelled requests, with the first stage's nDCG@10 as the line to beat."""
    labelled = ok[ok["ndcg_at_10"].notna()]
    first = labelled["first_stage_ndcg_at_10"].dropna()
    line = (float(first.iloc[0]), "first stage (given order)") if len(first) and first.nunique() == 1 else None
    return _speed_against(
        ok,
        out_dir,
        "ndcg_at_10",
        "relevance: nDCG@10 on labelled requests",
        line,
        "speed_vs_ndcg",
        "Speed vs nDCG@10",
    )


def _speed_against(
    ok: Any, out_dir: Path, column: str, xlabel: str, line: tuple[float, str] | None, stem: str, title: str
) -> list[Path]:
    plt = _pyplot()
    paths = []
    rows = ok[ok[column].notna()]
    for depth, at_depth in rows.groupby("depth"):
        fig, ax = plt.subplots(figsize=(8, 4.8))
        points = []  # one per model, hardware and backend/dtype, at its fastest order, batch and threads
        for (model, weights, hardware), series in at_depth.groupby(["model", "weights", "machine"]):
            best = series.loc[series.groupby(["backend", "dtype"])["pairs_per_s"].idxmax()]
            twin = " (random weights)" if str(weights).startswith("random") else ""
            for _, point in best.iterrows():
                label = (
                    f"{model}{twin} · {hardware}: {point['backend']}/{point['dtype']} "
                    f"({point['order']}, batch {int(point['batch_size'])})"
                )
                points.append((label, point[column], point["pairs_per_s"]))
        styles = series_styles([label for label, _, _ in points])
        for label, value, rate in sorted(points):
            # each configuration its own colour and marker in the legend: no text on the plot to overlap
            ax.plot([value], [rate], linestyle="none", markersize=7, label=label, **styles[label])
        if line is not None:
            ax.axvline(line[0], color="gray", linestyle=":", linewidth=1, label=line[1])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("throughput (pairs/s)")
        ax.set_ylim(bottom=0)
        paths.append(
            _finish(
                fig,
                ax,
                out_dir / f"{stem}_depth{int(depth)}.png",
                f"{title}, {int(depth)} candidates per query (best batch each)",
            )
        )
    return paths
