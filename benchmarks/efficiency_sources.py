"""Where will-it-run's CPU defaults come from: the latency model fitted to every measurement given.

For each (host, backend, dtype, order) with at least two ok rows of one model, fit
    mean ms per query = padded GFLOP / (peak x efficiency) + overhead per batch
(`latency_model.calibrate`, the fit will-it-run calibrates with) against the row's own measured matmul peak,
and print the efficiency and the overhead per batch per layer. The class defaults in latency_model.DEFAULTS
(`cpu`) are set to span what this prints for the project's result files, with a margin.

Run: python benchmarks/efficiency_sources.py results/ [more result files or folders]
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path


def _model_info(row: dict):
    from rerank_bench.catalog import find_model
    from rerank_bench.willrun.model_info import load_model_info

    for spec in (row.get("model_id"), row.get("model")):
        if not spec or not (Path(spec).is_dir() or find_model(spec)):  # never a Hub lookup from here
            continue
        try:
            return load_model_info(spec, None)
        except Exception:  # noqa: BLE001 - a model this machine cannot describe is left out, and said
            continue
    return None


def main(paths: list[str]) -> int:
    from rerank_bench.results.store import find_result_files, read_rows
    from rerank_bench.willrun.calibration import calibration_points
    from rerank_bench.willrun.latency_model import calibrate

    groups: dict[tuple, list[dict]] = defaultdict(list)
    found = find_result_files([Path(p) for p in paths or ["results"]])
    for path in found.files:
        for row in read_rows(path):
            if row.get("status") == "ok" and row.get("p50_ms") and row.get("gflop_per_query"):
                key = (
                    row.get("hardware_fingerprint"),
                    row.get("host"),
                    row.get("model"),
                    row.get("backend"),
                    row.get("dtype"),
                    row.get("order"),
                    path.name,
                )
                groups[key].append(row)
    print(
        f"{'file':44} {'backend':8} {'dtype':5} {'order':6} {'rows':>4} {'peak GF/s':>9} {'eff':>5} "
        f"{'ms/batch/layer':>14} {'fit err':>7}"
    )
    efficiencies = []
    for (_fp, _host, _model, backend, dtype, order, name), rows in sorted(groups.items(), key=str):
        peaks = [r["peak_gflop_per_s"] for r in rows if r.get("peak_gflop_per_s")]
        info = _model_info(rows[0])
        if len(rows) < 2 or not peaks or info is None:
            continue
        layers = info.arch.layers
        peak_tflops = sorted(peaks)[len(peaks) // 2] / 1000.0
        points, _ = calibration_points(rows, info, dtype)  # will-it-run's own points: mean query time
        fit = calibrate(points, peak_tflops)
        if fit is None:
            continue
        efficiencies.append((backend, dtype, fit.efficiency, fit.overhead_ms / layers))
        print(
            f"{name[:44]:44} {backend:8} {dtype:5} {order:6} {len(rows):>4} {peak_tflops * 1000:>9.0f} "
            f"{fit.efficiency:>5.0%} {fit.overhead_ms / layers:>14.3f} {fit.spread:>7.0%}"
        )
    if efficiencies:
        effs = sorted(e for _, _, e, _ in efficiencies)
        overheads = sorted(o for _, _, _, o in efficiencies)
        print(
            f"efficiency {effs[0]:.0%}-{effs[-1]:.0%} (median {effs[len(effs) // 2]:.0%}); "
            f"overhead {overheads[0]:.3f}-{overheads[-1]:.3f} ms per batch per layer, over {len(effs)} fits"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
