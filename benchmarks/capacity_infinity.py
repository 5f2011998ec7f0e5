"""`endpoint --capacity` against a real infinity server, checked three ways:

    python benchmarks/capacity_infinity.py [--model tinybert-l2] [--depth 20] [--slo-ms 400] [--batch-size 8]
                                           [--doc-tokens 16:64] [--searches 2] [--requests N] [--independent]

1. writes the catalog model's twin as a folder infinity can load (`rerank-bench serve-folder`) and serves it
   with `scripts/serve_infinity.sh` (its own venv) at INFINITY_BATCH_SIZE=--batch-size, at nice 5 so the load
   generator is not starved on a 2-core machine;
2. runs `rerank-bench endpoint --capacity` --searches times in a row against the same server: each search's
   capacity, bracket, confirmation verdict, levels and wall time (target: two searches within 15%, both
   confirmations passing, a default search under 10 minutes);
3. with --independent, a plain open-loop client of its own (below: a thread pool and urllib, nothing of
   rerank-bench's load generator; Poisson arrivals, latency from the scheduled time, failures slower than any
   reply) at rates around the capacity found, 25 s a level after a 5 s warm-up: the highest rate whose p95
   is within the SLO (target: the capacity within 20% of it).
Rows stay in --out (<date>-infinity-<model>-capacity.csv) with the server's log beside them.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from endpoint_infinity import free_port, start_infinity, stop_server, uptime, wait_ready  # noqa: E402 - the sibling script's helpers


def independent_level(url: str, bodies: list[bytes], rate: float, seconds: float, warmup_s: float, seed: int):
    """A plain open-loop client: Poisson arrivals for warmup_s + seconds, each POST on a pool thread, latency
    from the scheduled time; returns the latencies (inf for failures) of requests scheduled after the warm-up."""
    rng = random.Random(seed)
    due, t = [], 0.0
    while t < warmup_s + seconds:
        t += rng.expovariate(rate)
        due.append(t)
    results: dict[int, float] = {}
    lock = threading.Lock()

    def send(i: int, scheduled: float, start: float) -> None:
        request = urllib.request.Request(
            url, data=bodies[i % len(bodies)], headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                reply.read()
                ok = reply.status == 200
        except OSError:
            ok = False
        done = time.perf_counter() - start
        with lock:
            results[i] = (done - scheduled) * 1000.0 if ok else math.inf

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=128) as pool:
        for i, when in enumerate(due):
            delay = when - (time.perf_counter() - start)
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i, when, start)
    return [results[i] for i, when in enumerate(due) if when >= warmup_s]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    position = 0.95 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    if math.isinf(ordered[high]) and position > low or math.isinf(ordered[low]):
        return math.inf
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tinybert-l2")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--slo-ms", type=float, default=400.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--doc-tokens", default="16:64")
    parser.add_argument("--searches", type=int, default=2)
    parser.add_argument("--requests", type=int, default=None, help="endpoint's --requests (default its own)")
    parser.add_argument("--independent", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    stem = f"{day}-infinity-{args.model}-capacity"
    args.out.mkdir(parents=True, exist_ok=True)
    output = args.out / f"{stem}.csv"
    folder = Path(f"/tmp/rerank-bench-serve-{args.model}")
    if not folder.exists():
        subprocess.run([sys.executable, "-m", "rerank_bench", "serve-folder", args.model, str(folder)], check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (args.out / f"{stem}-server.log").open("w")
    server = start_infinity(folder, port, args.batch_size, log)
    try:
        wait_ready(url, server)
        print(f"infinity ready at {url} (batch {args.batch_size}); {uptime()}", flush=True)
        found = []
        for search in range(args.searches):
            command = [sys.executable, "-m", "rerank_bench", "endpoint", url, "--api", "infinity"]
            command += ["--depth", str(args.depth), "--doc-tokens", args.doc_tokens, "--slo-ms", f"{args.slo_ms:g}"]
            command += ["--capacity", "--json", "-o", str(output)]
            if args.requests:
                command += ["--requests", str(args.requests)]
            print("$ " + " ".join(command), flush=True)
            started = time.monotonic()
            result = subprocess.run(command, text=True, stdout=subprocess.PIPE)
            wall = time.monotonic() - started
            depth = json.loads(result.stdout)["depths"][0]
            low, high = depth["capacity_interval_rps"]
            confirmation = depth["confirmation"] or {}
            levels = len(depth["capacity_levels"])
            found.append(low)
            print(
                f"search {search + 1}: capacity {low} req/s (bracket to {high}), ceiling {depth['ceiling_rps']:.3g} "
                f"req/s, confirmation {confirmation.get('slo_verdict')} ({confirmation.get('sent')} requests, p95 "
                f"{confirmation.get('p95_ms')} ms), {levels} levels, {wall:.0f} s wall, exit {result.returncode}; "
                f"{uptime()}",
                flush=True,
            )
        if len(found) >= 2 and all(found):
            print(f"searches agree within {abs(found[1] - found[0]) / min(found):.1%}", flush=True)
        if args.independent and found and found[0]:
            sys.path.insert(0, str(ROOT / "src"))
            from rerank_bench.catalog import common_words
            from rerank_bench.workload.requests import parse_doc_tokens, synthetic_requests

            words = common_words()
            requests = synthetic_requests(words, args.depth, parse_doc_tokens(args.doc_tokens), 512, seed="indep")
            bodies = [
                json.dumps({"query": r.query, "documents": list(r.documents), "return_documents": False}).encode()
                for r in requests
            ]
            centre = found[0]
            best = None
            for share in (0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3):
                rate = centre * share
                latencies = independent_level(url + "/rerank", bodies, rate, 25.0, 5.0, seed=int(share * 100))
                value = p95(latencies)
                failed = sum(1 for v in latencies if math.isinf(v))
                met = value <= args.slo_ms
                print(
                    f"independent client: {rate:.3g} req/s, {len(latencies)} requests, p95 {value:.0f} ms, "
                    f"{failed} failed: {'within' if met else 'over'} the SLO; {uptime()}",
                    flush=True,
                )
                if met:
                    best = rate
                time.sleep(3)
            if best:
                print(
                    f"independent client's highest rate within the SLO: {best:.3g} req/s; endpoint --capacity "
                    f"{centre:.3g} req/s ({(centre - best) / best:+.1%})",
                    flush=True,
                )
    finally:
        stop_server(server, log)


if __name__ == "__main__":
    main()
