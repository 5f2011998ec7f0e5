"""What a measuring child costs to start, spawned against forked from the preloading forkserver, and whether the
way it starts changes what it measures.

1. Start: N children each way; each imports what a torch worker imports (torch, sentence-transformers) and
   replies; the time from start() to its reply. The forkserver's own start (its one import of those packages)
   is paid by the first forked child and shown apart.
2. Same figures: the same sweep case (the MiniLM-L6 twin, depth 20, batch 8), spawned and forked in turns,
   --rounds times each; pairs/s of each run. A fresh process is a fresh process either way: the figures should
   differ by no more than rounds of one kind differ among themselves.

Run: python benchmarks/worker_start.py [--children 3] [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(conn) -> None:
    import sentence_transformers  # noqa: F401 - what a torch worker imports first
    import torch  # noqa: F401

    conn.send("ready")


def start_times(ctx, children: int) -> list[float]:
    times = []
    for _ in range(children):
        receiver, sender = ctx.Pipe(duplex=False)
        started = time.perf_counter()
        process = ctx.Process(target=_child, args=(sender,), daemon=True)
        process.start()
        sender.close()
        receiver.recv()
        times.append(time.perf_counter() - started)
        process.join(10)
    return times


SWEEP = """
import multiprocessing as mp, sys
def main():
    from rerank_bench.sweep import processes
    if sys.argv[1] == "spawn":
        processes._context = lambda backend: mp.get_context("spawn")
    from rerank_bench.cli import app
    sys.argv = ["rerank-bench", "sweep", "-m", "minilm-l6", "--depth", "20", "--batch-size", "8",
                "--max-seconds-per-case", sys.argv[3], "-o", sys.argv[2], "--json"]
    app()
if __name__ == "__main__":
    main()
"""


def sweep_rate(mode: str, seconds: float, folder: Path) -> float:
    from rerank_bench.results.store import read_rows

    script = folder / "run_sweep.py"
    script.write_text(SWEEP)
    out = folder / f"{mode}-{time.monotonic_ns()}.csv"
    subprocess.run([sys.executable, str(script), mode, str(out), str(seconds)], capture_output=True, check=True)
    (row,) = read_rows(out)
    return float(row["pairs_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (1-minute average), {os.cpu_count()} CPUs")

    spawned = start_times(mp.get_context("spawn"), args.children)
    forkserver = mp.get_context("forkserver")
    forkserver.set_forkserver_preload(["torch", "sentence_transformers"])
    forked = start_times(forkserver, args.children + 1)
    print("1. start to first reply, seconds")
    print(f"   spawned:                   {', '.join(f'{t:.2f}' for t in spawned)}")
    print(f"   forked, first (+ server):  {forked[0]:.2f}")
    print(f"   forked, the rest:          {', '.join(f'{t:.2f}' for t in forked[1:])}")

    print(f"2. the same sweep case, pairs/s ({args.rounds} rounds, spawned and forked in turns)")
    rates: dict[str, list[float]] = {"spawn": [], "forkserver": []}
    with tempfile.TemporaryDirectory() as tmp:
        sweep_rate("forkserver", 1.0, Path(tmp))  # builds the twin and the matmul peak once, outside the rounds
        for _ in range(args.rounds):
            for mode in rates:
                rates[mode].append(sweep_rate(mode, args.seconds, Path(tmp)))
    for mode, values in rates.items():
        print(f"   {mode:10s} {', '.join(f'{v:.2f}' for v in values)}  median {statistics.median(values):.2f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
