"""Helpers that several test modules share: synthetic latencies and result files whose answer is known."""

import random

from rerank_bench.results.store import ResultWriter


def lognormal(n, median_ms, sigma=0.05, seed=0):
    rng = random.Random(seed)
    return [median_ms * rng.lognormvariate(0, sigma) for _ in range(n)]


def write_run(path, cases, run_id="run1", fingerprint="fp1", memory=1000.0, peak=None):
    """A result file from synthetic latencies: cases maps (batch, depth) -> latencies."""
    with ResultWriter(path) as writer:
        for (batch, depth), latencies in cases.items():
            case_id = f"c{batch}-{depth}"
            mean = sum(latencies) / len(latencies)
            writer.write_row(
                {
                    "run_id": run_id,
                    "case_id": case_id,
                    "utc_time": f"2026-11-23T00:00:0{len(run_id) % 10}Z",
                    "hardware_fingerprint": fingerprint,
                    "hardware_name": "test machine",
                    "model": "m",
                    "revision": "",
                    "weights": "random",
                    "backend": "torch",
                    "dtype": "fp32",
                    "device": "cpu",
                    "batch_size": batch,
                    "depth": depth,
                    "max_length": 512,
                    "order": "given",
                    "threads": 2,
                    "workload": "rag",
                    "seed": 0,
                    "status": "ok",
                    "pairs_per_s": depth * 1000 / mean,
                    "p50_ms": sorted(latencies)[len(latencies) // 2],
                    "p95_ms": None,
                    "peak_rss_mib": memory,
                    "peak_gflop_per_s": peak,
                }
            )
            writer.write_samples(run_id, case_id, latencies)
    return path


def set_first_row_cell(path, column, value):
    """Overwrite one cell of a one-row result file (a figure a test needs that the writer would not make)."""
    lines = path.read_text().splitlines()
    header, cells = lines[0].split(","), lines[1].split(",")
    cells[header.index(column)] = value
    path.write_text("\n".join([lines[0], ",".join(cells)]) + "\n")
