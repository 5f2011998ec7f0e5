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
    model, weights, backend, dtype, hardware = key
    twin = " (random weights)" if str(weights).startswith("random") else ""
    return f"{model}{twin} · {backend}/{dtype} · {hardware}"


SERIES = ["model", "weights", "backend", "dtype", "hardware"]


def _batch_axis(ax: Any, batches: Any) -> None:
    """Log2 axis labelled with the batch sizes themselves (8, 16, 32), not powers of two."""
    values = sorted({int(b) for b in batches})
    ax.set_xscale("log", base=2)
    ax.set_xticks(values, [str(v) for v in values])
    ax.minorticks_off()


def _finish(fig: Any, ax: Any, path: Path, title: str) -> Path:
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) > 6:  # many series: the legend goes beside the plot, not over the data
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    elif handles:
        ax.legend(fontsize=8, loc="best")
    fig.text(0.99, 0.01, f"rerank-bench {__version__}", ha="right", va="bottom", fontsize=7, color="gray")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
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
        many = at_depth.groupby(SERIES).ngroups > 6
        fig, ax = plt.subplots(figsize=(11, 5) if many else (7.5, 4.5))
        for key, series in at_depth.groupby(SERIES):
            by_batch = series.groupby("batch_size")["pairs_per_s"].max().sort_index()
            ax.plot(by_batch.index, by_batch.values, marker="o", label=_series_label(key))
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


def latency_vs_depth(ok: Any, out_dir: Path, budget_ms: float | None) -> Path:
    """p95 (p50 where p95 lacks samples) per-query latency against depth, at each series' best batch."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    fallback = False
    for key, series in ok.groupby(SERIES):
        points = []
        for depth, at in series.groupby("depth"):
            if at["p95_ms"].notna().any():
                points.append((depth, float(at["p95_ms"].min()), False))
            elif at["p50_ms"].notna().any():
                points.append((depth, float(at["p50_ms"].min()), True))
        if not points:
            continue
        fallback |= any(p[2] for p in points)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=_series_label(key))
        for depth, value, is_p50 in points:
            if is_p50:
                ax.annotate("p50", (depth, value), textcoords="offset points", xytext=(4, 4), fontsize=7, color="gray")
    if budget_ms is not None:
        ax.axhline(budget_ms, color="red", linestyle="--", linewidth=1, label=f"budget {budget_ms:g} ms")
    ax.set_xlabel("candidate depth (documents per query)")
    ax.set_ylabel("per-query latency p95 (ms)" + (", p50 where marked" if fallback else ""))
    ax.set_ylim(bottom=0)
    return _finish(fig, ax, out_dir / "latency_vs_depth.png", "Per-query latency vs depth (best batch size per depth)")


def memory_vs_batch(ok: Any, out_dir: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    gpu = ok["peak_vram_reserved_mib"].notna().any()
    for key, series in ok.groupby(SERIES):
        column = "peak_vram_reserved_mib" if series["peak_vram_reserved_mib"].notna().any() else "peak_rss_mib"
        by_batch = series.groupby("batch_size")[column].max().sort_index()
        ax.plot(by_batch.index, by_batch.values, marker="o", label=_series_label(key))
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
    plt = _pyplot()
    paths = []
    rows = ok[ok["agreement_spearman_mean"].notna()]
    for depth, at_depth in rows.groupby("depth"):
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for (model, weights, hardware), series in at_depth.groupby(["model", "weights", "hardware"]):
            best = series.loc[series.groupby(["backend", "dtype"])["pairs_per_s"].idxmax()]
            twin = " (random weights)" if str(weights).startswith("random") else ""
            ax.scatter(best["agreement_spearman_mean"], best["pairs_per_s"], s=36, label=f"{model}{twin} · {hardware}")
            for _, point in best.iterrows():
                ax.annotate(
                    f"{point['backend']}/{point['dtype']} ({point['order']}, b{int(point['batch_size'])})",
                    (point["agreement_spearman_mean"], point["pairs_per_s"]),
                    textcoords="offset points",
                    xytext=(4, 3),
                    fontsize=7,
                )
        ax.axvline(0.99, color="gray", linestyle=":", linewidth=1, label="Spearman 0.99")
        ax.set_xlabel("ranking agreement: mean Spearman vs torch fp32 (1 = identical order)")
        ax.set_ylabel("throughput (pairs/s)")
        ax.set_ylim(bottom=0)
        paths.append(
            _finish(
                fig,
                ax,
                out_dir / f"speed_vs_agreement_depth{int(depth)}.png",
                f"Speed vs ranking agreement, {int(depth)} candidates per query (best batch each)",
            )
        )
    return paths
