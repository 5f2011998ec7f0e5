"""infinity serving MiniLM-L6 (architecture twin, random weights, fp32) on this machine at depth 50, measured
under load and against the same model in process, then will-it-run --rate's prediction checked against it.

    python benchmarks/endpoint_infinity.py [--out results] [--slo-ms 3000] [--batch-size 8] [--doc-tokens 16:64]
                                           [--quick | --capacity-only]

1. writes a folder infinity can load (`rerank-bench serve-folder`) and starts
   `scripts/serve_infinity.sh` on a free port with INFINITY_BATCH_SIZE=--batch-size (8: the best batch in
   process on a 2-core CPU; infinity's default 32 pads to half efficiency with the RAG mix);
2. sweeps the same folder in process at depth 50, batch 8, 16 and 32 (the comparison, and will-it-run's
   calibration rows), documents of --doc-tokens (uniform 16-64 tokens by default: with the RAG mix's 3 s
   requests on this 2-core CPU each capacity level, which needs 60 replies for its p95, lasts 6-12 minutes,
   and 48-144 tokens still gave 4-6 minutes a level);
3. `rerank-bench endpoint` closed loop at concurrency 1, 2, 4 (with --reference: the served scores against
   the in-process ones), then the capacity search at p95 <= --slo-ms, then an open-loop level at half the
   capacity found, long enough for a p95;
4. `rerank-bench will-it-run FOLDER --hardware local --server infinity --rate HALF` calibrated on the sweep's
   rows: its capacity and its p95 at half the measured capacity, against the measured ones (target: within
   25% each), with the simulation's own run time.
Rows stay in --out: <date>-infinity-minilm-l6-{inprocess,endpoint}.csv and the server's log.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_infinity(folder: Path, port: int, batch: int, log, cores: str | None = None) -> subprocess.Popen:
    """`scripts/serve_infinity.sh` serving folder on port at infinity --batch-size batch, its output to log. At
    nice 5: on a 2-core machine its torch threads would otherwise delay the load generator's wake-ups past its
    10 ms schedule tolerance (the generator itself needs about 1% of a core). `cores`: pinned there by taskset."""
    command = ["nice", "-n", "5", "bash", str(ROOT / "scripts" / "serve_infinity.sh"), str(folder), str(port)]
    if cores is not None:
        command = ["taskset", "-c", cores, *command]
    env = {**os.environ, "INFINITY_BATCH_SIZE": str(batch)}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_ready(url: str, server: subprocess.Popen, limit_s: float = 600.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if server.poll() is not None:
            raise SystemExit(f"the infinity server exited with {server.returncode}; see its log")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as reply:
                if reply.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"the infinity server did not answer within {limit_s:.0f} s")


def stop_server(server: subprocess.Popen, log) -> None:
    """SIGTERM, up to 20 s for infinity to finish its requests, then SIGKILL; the log closed either way."""
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def run(command: list[str], show: bool = True) -> subprocess.CompletedProcess:
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command, text=True, stdout=subprocess.PIPE)
    if show:
        print(result.stdout, flush=True)
    if result.returncode not in (0, 1):
        raise SystemExit(f"exit {result.returncode}")
    return result


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def percent(predicted: float | None, measured: float | None) -> str:
    if not predicted or not measured:
        return "-"
    return f"{(predicted - measured) / measured:+.0%}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--slo-ms", type=float, default=3000.0)
    parser.add_argument("--doc-tokens", default="16:64", help="the workload, as the sweep's --doc-tokens")
    parser.add_argument("--batch-size", type=int, default=8, help="infinity's --batch-size")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per closed-loop level")
    parser.add_argument("--quick", action="store_true", help="short levels, no capacity search (a smoke run)")
    parser.add_argument(
        "--capacity-only", action="store_true", help="keep today's sweep and closed-loop rows; search capacity again"
    )
    args = parser.parse_args()

    print("uptime:", uptime())
    cache = Path.home() / ".cache" / "rerank-bench" / "serve"
    folder = cache / "minilm-l6"
    if not (folder / "config.json").exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "rerank_bench", "serve-folder", "minilm-l6", str(folder)], check=True)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{day}-infinity-minilm-l6"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(f"{stem}-server.log", "a")  # noqa: SIM115 - open for the server's lifetime
    server = start_infinity(folder, port, args.batch_size, log)
    duration = 10.0 if args.quick else args.duration
    inprocess = f"{stem}-inprocess.csv"
    try:
        print(f"infinity (batch size {args.batch_size}) ready after {wait_ready(url, server):.0f} s at {url}")
        endpoint = ["rerank-bench", "endpoint", url, "--api", "infinity", "--depth", "50", "-o", f"{stem}-endpoint.csv"]
        endpoint += ["--tokenizer", str(folder), "--doc-tokens", args.doc_tokens]
        if not args.capacity_only:
            run(
                ["rerank-bench", "sweep", "-m", str(folder), "--depth", "50", "--batch-size", "8,16,32"]
                + ["--doc-tokens", args.doc_tokens]
                + ["--max-seconds-per-case", "10" if args.quick else "20", "-o", inprocess]
            )
            run(endpoint + ["--concurrency", "1,2,4", "--duration", str(duration), "--reference", str(folder)])
        if args.quick:
            return
        found = run(endpoint + ["--slo-ms", str(args.slo_ms), "--capacity", "--duration", "30", "--json"], show=False)
        report = json.loads(found.stdout)["depths"][0]
        print(json.dumps({k: report.get(k) for k in ("capacity_rps", "capacity_interval_rps", "capacity_note")}))
        for level in report.get("capacity_levels", []):
            print(f"  capacity level: {json.dumps(level)}")
        capacity = report["capacity_rps"]
        if not capacity:
            raise SystemExit("the capacity search found no rate within the SLO")
        half = capacity / 2
        # a p95 needs 40 replies: run long enough to expect 60
        # an open-loop level is a number of requests now: 90 give a p95 (59) with room
        level = run(endpoint + ["--rate", f"{half:.4f}", "--requests", "90", "--json"])
        at_half = json.loads(level.stdout)["depths"][0]["levels"][0]
        started = time.perf_counter()
        predicted = run(
            ["rerank-bench", "will-it-run", str(folder), "--hardware", "local", "--server", "infinity"]
            + ["--batch-size", str(args.batch_size), "--depth", "50", "--budget-ms", str(args.slo_ms)]
            + ["--doc-tokens", args.doc_tokens]
            + ["--rate", f"{half:.4f}", "--results", inprocess, "--json"],
            show=False,
        )
        wall = time.perf_counter() - started
        (row,) = json.loads(predicted.stdout)
        print(f"will-it-run: {row['verdict']} {row['reason']}; latency: {row['latency_note']}")
        print(f"will-it-run wall time {wall:.1f} s, of which simulation {row['simulation_s']:.1f} s")
        low, high = report["capacity_interval_rps"]
        high = high or float("nan")  # nan: every rate tried met the SLO
        print(f"\ncheck (depth 50, infinity batch {args.batch_size}, p95 SLO {args.slo_ms:g} ms)")
        print(f"{'':28} {'measured':>22} {'predicted':>26} {'error':>7}")
        print(
            f"{'capacity (requests/s)':28} {capacity:>9.3f} ({low:.3f}-{high:.3f}) "
            f"{row['capacity_rps']:>11.3f} ({row['capacity_rps_low']:.3f}-{row['capacity_rps_high']:.3f}) "
            f"{percent(row['capacity_rps'], capacity):>7}"
        )
        print(
            f"{f'p95 at {half:.3f}/s (ms)':28} {at_half['p95_ms'] or float('nan'):>22.0f} "
            f"{row['p95_at_rate_ms']:>26.0f} {percent(row['p95_at_rate_ms'], at_half['p95_ms']):>7}"
        )
        print(f"p50 at half: measured {at_half['p50_ms']:.0f} ms, predicted {row['p50_at_rate_ms']:.0f} ms")
    finally:
        stop_server(server, log)
        print("uptime:", uptime())


if __name__ == "__main__":
    main()
