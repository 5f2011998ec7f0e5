"""Does `endpoint --capacity` find a different capacity when each level waits for the server to answer one request
at a time near its unloaded time (endpoint/settle.py), against a real infinity server?

    python benchmarks/endpoint_settle_infinity.py [--model tinybert-l2] [--depth 20] [--batch 8] [--slo-ms 400]
        [--rounds 2] [--settle-wait-s 30]

One server for the whole run; capacity searches alternate between waiting (`--settle-wait-s`, the default 30 s)
and not waiting (`--settle-wait-s 0`: the three probes are still sent and recorded, so both arms say how fast the
server answered one at a time before each level). For every search: its capacity and the levels it stepped down
from, and per level the rate offered and achieved, the requests abandoned at its stop, and the probes' median
against the depth's unloaded time. What it answers: after a level that overloaded the server, is the server
still slow one at a time (work left behind, or the host), and does waiting for it change the search's answer?
Rows: results/settle-check-<model>-b<batch>-<arm>-<round>.csv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rerank_bench.results.store import read_rows

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from endpoint_infinity import free_port, start_infinity, stop_server, uptime, wait_ready  # noqa: E402 - the sibling script's helpers
from willrun_vs_infinity import DOC_TOKENS, RB, folder_for  # noqa: E402

ARMS = ("settle", "probe-only")


def search(url: str, args: argparse.Namespace, arm: str, out: Path) -> dict:
    out.unlink(missing_ok=True)
    wait = f"{args.settle_wait_s:g}" if arm == "settle" else "0"
    command = [*RB, "endpoint", url, "--api", "infinity", "--depth", str(args.depth), "--doc-tokens", DOC_TOKENS]
    command += ["--slo-ms", f"{args.slo_ms:g}", "--capacity", "--settle-wait-s", wait, "-o", str(out), "--json"]
    print("$ " + " ".join(command), flush=True)
    started = time.monotonic()
    result = subprocess.run(command, text=True, capture_output=True)
    wall = time.monotonic() - started
    for line in result.stderr.splitlines():
        if "measuring anyway" in line or "stepped down" in line:
            print("  stderr: " + line.strip(), flush=True)
    if result.returncode not in (0, 1):
        raise SystemExit(f"exit {result.returncode}: {result.stderr[-2000:]}")
    depth = json.loads(result.stdout)["depths"][0]
    return {"capacity_rps": depth.get("capacity_rps"), "wall_s": wall, "rows": read_rows(out)}


def level_lines(rows: list[dict]) -> list[str]:
    unloaded = next((r["p50_ms"] for r in rows if r["load_mode"] == "closed" and r["concurrency"] == 1), None)
    lines = []
    for r in rows:
        if r["load_mode"] == "capacity":
            lines.append(f"    capacity row: {r['capacity_rps']} req/s; {r['status_reason'] or 'confirmed'}")
            continue
        load = f"closed x{r['concurrency']}" if r["load_mode"] == "closed" else f"open {r['offered_rps']:.1f}/s"
        errors = r["errors"] or "-"
        idle = r["idle_before_ms"]
        ratio = f" ({idle / unloaded:.2f}x closed x1's p50)" if idle and unloaded else ""
        idle_text = f"{idle:.1f} ms" if idle is not None else "no probe completed"
        lines.append(
            f"    {load:>14}: achieved {r['achieved_rps']:.1f}/s, p95 {r['p95_ms'] or float('inf'):.0f} ms, "
            f"{r['slo_verdict'] or '-'}, errors {errors}; before it: idle {idle_text}{ratio}, waited "
            f"{r['settle_s']:.1f} s"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tinybert-l2")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--slo-ms", type=float, default=400.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle-wait-s", type=float, default=30.0)
    args = parser.parse_args()
    folder = folder_for(args.model)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = ROOT / "results" / f"settle-check-{args.model}-b{args.batch}-server.log"
    log = log_path.open("w")
    server = start_infinity(folder, port, args.batch, log)
    found: dict[str, list[float | None]] = {arm: [] for arm in ARMS}
    try:
        wait_ready(url, server)
        print(f"infinity ready at {url} ({args.model}, batch {args.batch}); {uptime()}", flush=True)
        for round_ in range(args.rounds):
            arms = ARMS if round_ % 2 == 0 else ARMS[::-1]  # order alternates: neither arm always runs first
            for arm in arms:
                out = ROOT / "results" / f"settle-check-{args.model}-b{args.batch}-{arm}-{round_ + 1}.csv"
                done = search(url, args, arm, out)
                found[arm].append(done["capacity_rps"])
                print(f"round {round_ + 1}, {arm}: capacity {done['capacity_rps']} req/s in {done['wall_s']:.0f} s; "
                      f"{uptime()}", flush=True)  # fmt: skip
                print("\n".join(level_lines(done["rows"])), flush=True)
    finally:
        stop_server(server, log)
    for arm in ARMS:
        print(f"{arm}: capacities {', '.join(f'{c:.1f}' if c else '-' for c in found[arm])} req/s", flush=True)


if __name__ == "__main__":
    main()
