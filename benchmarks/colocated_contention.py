"""Is infinity's latency rise at moderate load (benchmarks/served_p50_rise.py: the p50 at half the capacity is
1.57x the one-client p50 for TinyBERT) the server's own, or the load generator taking CPU from it on a shared
2-core machine?

    python benchmarks/colocated_contention.py [--model tinybert-l2] [--depth 20] [--batch 8] [--share 0.45]
        [--rounds 3]

Two arms, each a fresh server: `shared` (server and load generator on every core, as every measurement here ran)
and `pinned` (the server on core 1 alone with `taskset`, the load generator on core 0: they never take turns).
In each: one client at a time (20 s), the closed x16 ceiling (20 s), and an open level at --share of that
ceiling (1,000 requests); printed: p50 and p95 of each, and the open level's p50 over the one-client p50, with
the server's own mean time beside. If the rise comes from sharing the cores, it shrinks when pinned (the pinned
server has one core, so its ceiling is lower: the open level runs at the same share of its own ceiling). The
arms alternate over --rounds (order swapped each round): one pass of each moves by as much as the effect.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from endpoint_infinity import free_port, start_infinity, stop_server, uptime, wait_ready  # noqa: E402 - the sibling script's helpers
from willrun_vs_infinity import DOC_TOKENS, RB, folder_for  # noqa: E402

ARMS = {"shared": (None, None), "pinned": ("1", "0")}  # arm -> (server's cores, load generator's cores)


def endpoint(url: str, args: argparse.Namespace, cores: str | None, level: list[str]) -> dict:
    command = [*RB, "endpoint", url, "--api", "infinity", "--depth", str(args.depth), "--doc-tokens", DOC_TOKENS]
    command += [*level, "--json", "-o", str(ROOT / "results" / f"contention-{args.model}-b{args.batch}.csv")]
    if cores is not None:
        command = ["taskset", "-c", cores, *command]
    print("$ " + " ".join(command), flush=True)
    out = subprocess.run(command, text=True, capture_output=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"exit {out.returncode}: {out.stderr[-2000:]}")
    return json.loads(out.stdout)["depths"][0]["levels"][0]


def run_arm(arm: str, args: argparse.Namespace) -> dict:
    server_cores, client_cores = ARMS[arm]
    folder = folder_for(args.model)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (ROOT / "results" / f"contention-{args.model}-b{args.batch}-{arm}-server.log").open("w")
    server = start_infinity(folder, port, args.batch, log, cores=server_cores)
    try:
        wait_ready(url, server)
        print(f"{arm}: infinity ready at {url}; {uptime()}", flush=True)
        one = endpoint(url, args, client_cores, ["--concurrency", "1", "--duration", "20"])
        ceiling = endpoint(url, args, client_cores, ["--concurrency", "16", "--duration", "20"])
        rate = args.share * ceiling["achieved_rps"]
        opened = endpoint(url, args, client_cores, ["--rate", f"{rate:.3f}", "--requests", "1000"])
    finally:
        stop_server(server, log)
    time.sleep(3)
    return {"one": one, "ceiling": ceiling, "open": opened, "rate": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tinybert-l2")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--share", type=float, default=0.45)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    (ROOT / "results" / f"contention-{args.model}-b{args.batch}.csv").unlink(missing_ok=True)
    ratios: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for round_ in range(args.rounds):
        arms = list(ARMS) if round_ % 2 == 0 else list(ARMS)[::-1]
        for arm in arms:
            f = run_arm(arm, args)
            one, ceiling, opened = f["one"], f["ceiling"], f["open"]
            ratio = opened["p50_ms"] / one["p50_ms"]
            ratios[arm].append(ratio)
            print(
                f"round {round_ + 1} {arm:>7}: closed x1 p50 {one['p50_ms']:.1f} ms (server "
                f"{one['server_mean_ms'] or 0:.1f}), p95 {one['p95_ms']:.1f}; ceiling {ceiling['achieved_rps']:.1f}/s; "
                f"open {f['rate']:.1f}/s ({args.share:.0%} of it): p50 {opened['p50_ms']:.1f} ms ({ratio:.2f}x the "
                f"one-client p50; server {opened['server_mean_ms'] or 0:.1f}), p95 "
                f"{opened['p95_ms'] or float('inf'):.1f}",
                flush=True,
            )
    for arm, values in ratios.items():
        print(f"{arm}: open p50 / closed x1 p50 {', '.join(f'{v:.2f}' for v in values)}", flush=True)


if __name__ == "__main__":
    main()
