from rerank_bench.sweep.best_batch import best_batches


def row(batch, pps, p50, p95, depth=10, status="ok"):
    return {
        "model": "m",
        "weights": "real",
        "backend": "torch",
        "dtype": "fp32",
        "device": "cpu",
        "depth": depth,
        "batch_size": batch,
        "pairs_per_s": pps,
        "p50_ms": p50,
        "p95_ms": p95,
        "status": status,
    }


def test_best_batch_by_throughput_and_by_p95():
    rows = [
        row(8, 100.0, 90.0, 120.0),
        row(16, 120.0, 85.0, 140.0),
        row(32, 110.0, 95.0, 130.0),
        row(64, None, None, None, status="oom"),
    ]
    (entry,) = best_batches(rows)
    assert entry["best_throughput_batch"] == 16 and entry["best_pairs_per_s"] == 120.0
    assert (
        entry["latency_metric"] == "p95_ms" and entry["best_latency_batch"] == 8 and entry["best_latency_ms"] == 120.0
    )
    assert entry["batch_sizes_measured"] == [8, 16, 32]


def test_latency_falls_back_to_p50_when_any_p95_is_missing():
    rows = [row(8, 100.0, 90.0, 120.0), row(16, 120.0, 85.0, None)]  # typed rows: an empty cell is None
    (entry,) = best_batches(rows)
    assert entry["latency_metric"] == "p50_ms" and entry["best_latency_batch"] == 16


def test_depths_are_separate_entries():
    rows = [row(8, 100.0, 90.0, 120.0, depth=10), row(8, 50.0, 400.0, 500.0, depth=50)]
    assert [e["depth"] for e in best_batches(rows)] == [10, 50]
