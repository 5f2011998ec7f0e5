"""Where the CPU goes while infinity serves: the server's threads and the load generator, per request, in a closed
loop of 16 clients and in an open loop at a rate (issue 22: on the AVX2 host infinity's open-loop capacity for the
TinyBERT twin at batch 8 was about half its closed x16 throughput, 6.4-6.9 against 15.1 requests a second).

    python benchmarks/served_cpu_split.py [--model tinybert-l2] [--batch 8] [--depth 20] [--rate 7] [--requests 1400]

Starts `scripts/serve_infinity.sh` (nice 5, as the other infinity benchmarks) on the model's twin folder, runs
`rerank-bench endpoint --concurrency 16` and then `--rate R --requests N` against it, and samples every 5 s the
CPU seconds of every thread of the server's processes (by /proc comm name) and of the load generator's process.
Prints per mode: requests the server answered (its access log), CPU a request of the server (its busiest threads)
and of the generator, each sample interval's share of one core, and the level's own `server_cpu_cores`,
`server_cpu_ms_per_request` and `loadgen_cpu_cores` as `endpoint` reported them (from infinity's /metrics), to set
beside what psutil saw from outside.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

from rerank_bench.results.store import read_rows, samples_path_for

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from endpoint_infinity import free_port, start_infinity, stop_server, uptime, wait_ready  # noqa: E402
from willrun_vs_infinity import DOC_TOKENS, folder_for  # noqa: E402

RB = [sys.executable, "-m", "rerank_bench"]
ROWS = Path("/tmp/served_cpu_split.csv")  # the levels' endpoint rows


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds by thread (name/tid) over a process and its children."""
    out: dict[str, float] = defaultdict(float)
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return out
    for p in procs:
        try:
            for t in p.threads():
                try:
                    name = Path(f"/proc/{p.pid}/task/{t.id}/comm").read_text().strip()
                except OSError:
                    name = "?"
                out[f"{name}/{t.id}"] += t.user_time + t.system_time
        except psutil.NoSuchProcess:
            continue
    return out


def served(log: Path) -> int:
    """Requests the server has answered so far: its access log's POST lines (uvicorn logs each)."""
    return log.read_text(errors="replace").count("POST /rerank")


def measure(label: str, command: list[str], server_pid: int, log: Path) -> dict:
    print(f"$ {' '.join(command)}", flush=True)
    before = thread_cpu(server_pid)
    answered = served(log)
    client = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    samples: list[tuple[float, float, float]] = []  # (wall, server cpu, client cpu) cumulative
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.wait(5.0):
            try:
                c = psutil.Process(client.pid).cpu_times()
                client_cpu = c.user + c.system
            except psutil.NoSuchProcess:
                break
            server = sum(thread_cpu(server_pid).values()) - sum(before.values())
            samples.append((time.monotonic() - started, server, client_cpu))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # the client's own CPU is read from its rusage at exit too (the sampler cannot see its last seconds)
    out, _ = client.communicate()
    stop.set()
    sampler.join()
    after = thread_cpu(server_pid)
    level = json.loads(out)["depths"][0]["levels"][-1]
    done = served(log) - answered  # every request of the run: settling, warm-up, window and cool-down
    by_thread = {k: after[k] - before.get(k, 0.0) for k in after}
    busiest = sorted(by_thread.items(), key=lambda kv: -kv[1])[:6]
    server_total = sum(by_thread.values())
    client_cpu = samples[-1][2] if samples else float("nan")
    wall = samples[-1][0] if samples else float("nan")
    print(
        f"\n{label}: {done} requests, {level.get('achieved_rps'):.2f} req/s achieved, p50 "
        f"{level.get('p50_ms'):.0f} ms, p95 {level.get('p95_ms') or float('nan'):.0f} ms, failed "
        f"{level.get('failed')} of {level.get('sent')} in its window, {level.get('note') or ''}",
        flush=True,
    )
    print(
        f"  server CPU {server_total:.1f} s = {1000 * server_total / max(done, 1):.1f} ms a request; busiest "
        "threads: " + ", ".join(f"{k} {v:.1f} s" for k, v in busiest),
        flush=True,
    )
    print(
        f"  load generator CPU (to its last sample, {wall:.0f} s) {client_cpu:.1f} s = "
        f"{1000 * client_cpu / max(done, 1):.1f} ms a request",
        flush=True,
    )
    # the same level as `endpoint` reports it: the server's own process_cpu_seconds_total between its scrapes
    # (infinity exports it) and the generator's process time, to set beside what psutil saw from outside
    (row,) = read_rows(ROWS)[-1:]
    print(
        f"  endpoint's own figures: server {row.get('server_cpu_cores') or float('nan'):.2f} cores, "
        f"{row.get('server_cpu_ms_per_request') or float('nan'):.1f} ms a request; load generator "
        f"{row.get('loadgen_cpu_cores') or float('nan'):.3f} cores",
        flush=True,
    )
    previous = (0.0, 0.0, 0.0)
    for s in samples:
        dt = s[0] - previous[0]
        print(
            f"  {s[0]:5.0f} s: server {100 * (s[1] - previous[1]) / dt:4.0f}% client "
            f"{100 * (s[2] - previous[2]) / dt:4.0f}% of one core",
            flush=True,
        )
        previous = s
    return {"label": label, "requests": done, "server_cpu_s": server_total, "client_cpu_s": client_cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tinybert-l2")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--rate", type=float, default=7.0)
    parser.add_argument("--requests", type=int, default=1400)
    parser.add_argument("--closed-s", type=float, default=30.0)
    args = parser.parse_args()
    folder = folder_for(args.model)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for stale in (ROWS, samples_path_for(ROWS)):  # the last row read back is this run's
        stale.unlink(missing_ok=True)
    log_path = Path("/tmp/served_cpu_split-server.log")
    log = log_path.open("w")  # noqa: SIM115 - closed by stop_server
    server = start_infinity(folder, port, args.batch, log)
    try:
        wait_ready(url, server)
        print(f"infinity ready (batch {args.batch}); {uptime()}", flush=True)
        base = [*RB, "endpoint", url, "--api", "infinity", "--depth", str(args.depth), "--doc-tokens", DOC_TOKENS]
        base += ["--json", "-o", str(ROWS)]
        measure("closed x16", [*base, "--concurrency", "16", "--duration", f"{args.closed_s:g}"], server.pid, log_path)
        measure(
            f"open {args.rate:g}/s",
            [*base, "--slo-ms", "400", "--rate", f"{args.rate:g}", "--requests", str(args.requests)],
            server.pid,
            log_path,
        )
        print(uptime(), flush=True)
    finally:
        stop_server(server, log)


if __name__ == "__main__":
    main()
