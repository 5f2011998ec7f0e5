"""Which infinity batch size serves most, measured so that the host's drift cannot decide it (issue 22).

    python benchmarks/infinity_batch_ab.py [--model tinybert-l2] [--depth 20] [--batches 8,16,32] [--rounds 2]
                                           [--capacity-slo-ms 400] [--closed-s 20] [--clients 16]
                                           [--predict-from IN_PROCESS.csv --predict-budget-ms 400]

`willrun_vs_infinity.py` measures each batch's capacity once, minutes apart; this host's speed moves by 1.5x in
minutes (its in-process rows at batch 4, swept 4 minutes apart: 1,145, 1,351 and 740 pairs/s on 2026-12-03), so
one pass cannot rank batch sizes whose capacities differ by less than that. Here every batch size is served in
every round, the order rotated from round to round (round r starts at the r-th batch size: drift that rises or
falls through a round favours no size), and each server start is paired with a host-speed reading taken just
before it: an in-process sweep of the same model at batch 16 (pairs/s). Per start: the closed-loop throughput of
--clients clients (16: the server saturated, what a capacity is bounded by) and of one client (p50: the idle
latency), each for --closed-s seconds (MiniLM at depth 50 answers about one request a second: 20 s is a handful of
replies a client, so give it a minute), and that saturated throughput divided by the host reading, which compares
batch sizes at one host speed. With --capacity-slo-ms, each start runs `endpoint --capacity` at that p95 SLO
instead of the closed loops (about 2.5 minutes a start at TinyBERT's rates): the figure `willrun_vs_infinity.py`
compares, measured per round.
Prints a row per start and, per batch size, the median over rounds. With --predict-from (the model's in-process
sweep rows of this host, as `willrun_vs_infinity.py` sweeps them), `will-it-run --batch-size auto` at
--predict-budget-ms names the batch it predicts best, and the verdict says whether that is the measured best (the
highest median: capacity with --capacity-slo-ms, else the saturated throughput) or within the measurement's margin
(its rounds reach the best's median). `--rounds 0` prints the prediction alone. --predict-from may be given
several times: sweeps minutes apart, averaged per batch size, rank batch sizes more steadily than one (TinyBERT's
three sweeps of 2026-12-04 picked 8, 32 and 16 one at a time, 16 together: the measured best).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from endpoint_infinity import free_port, start_infinity, stop_server, uptime, wait_ready  # noqa: E402 - the sibling script's helpers
from willrun_vs_infinity import DOC_TOKENS, RB, folder_for  # noqa: E402

HOST_BATCH = 16  # the in-process reading of the host's speed: one case, the model at this batch size


def host_speed(folder: Path, depth: int, scratch: Path) -> float:
    """Pairs per second of the model in process at HOST_BATCH: this host's speed at this moment."""
    out = scratch / f"host-{time.monotonic_ns()}.csv"
    command = [*RB, "sweep", "-m", str(folder), "--depth", str(depth), "--batch-size", str(HOST_BATCH)]
    command += ["--doc-tokens", DOC_TOKENS, "--max-seconds-per-case", "10", "--json", "-o", str(out)]
    result = subprocess.run(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    return float(json.loads(result.stdout)["summary"][0]["best_pairs_per_s"])


def served(
    folder: Path, depth: int, batch: int, scratch: Path, slo_ms: float | None, closed_s: float, clients: int
) -> dict:
    """One server start at this batch size: closed x1 and closed x`clients`, or with `slo_ms` a capacity search."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (scratch / f"server-b{batch}-{port}.log").open("w")
    server = start_infinity(folder, port, batch, log)
    try:
        wait_ready(url, server)
        command = [*RB, "endpoint", url, "--api", "infinity", "--depth", str(depth), "--doc-tokens", DOC_TOKENS]
        if slo_ms is None:
            command += ["--concurrency", f"1,{clients}", "--duration", f"{closed_s:g}"]
        else:
            command += ["--slo-ms", f"{slo_ms:g}", "--capacity"]
        command += ["--json", "-o", str(scratch / f"endpoint-b{batch}-{port}.csv")]
        result = subprocess.run(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if result.returncode not in (0, 1):
            raise SystemExit(f"endpoint exited {result.returncode}: {result.stdout[-2000:]}")
        depth_figures = json.loads(result.stdout)["depths"][0]
        levels = depth_figures["levels"] + depth_figures["capacity_levels"]
        one, ceiling = levels[0], levels[1]  # closed x1, then closed x`clients` (the capacity search's ceiling too)
        figures = {"x1_p50_ms": one["p50_ms"], "many_rps": ceiling["achieved_rps"]}
        if slo_ms is not None:
            figures["capacity_rps"] = depth_figures["capacity_rps"]
        return figures
    finally:
        stop_server(server, log)
        time.sleep(3)


def predicted_best(folder: Path, depth: int, rows: list[Path], budget_ms: float) -> tuple[int, str]:
    """The batch `will-it-run --batch-size auto` predicts best from these in-process rows, and its note."""
    command = [*RB, "will-it-run", str(folder), "--hardware", "local", "--server", "infinity", "--batch-size"]
    command += ["auto", "--depth", str(depth), "--budget-ms", f"{budget_ms:g}", "--doc-tokens", DOC_TOKENS]
    command += ["--rate", "0.1", "--json", *(arg for path in rows for arg in ("--results", str(path)))]
    result = subprocess.run(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if result.returncode not in (0, 1):
        raise SystemExit(f"will-it-run exited {result.returncode}: {result.stdout[-2000:]}")
    (row,) = json.loads(result.stdout)
    return int(row["server_batch_size"]), str(row["server_setting_note"])


def verdict(predicted: int, measured: dict[int, list[float]]) -> str:
    """The predicted best batch against the measured medians: the best, within the margin, or not."""
    medians = {b: statistics.median(v) for b, v in measured.items() if v}
    best = max(medians, key=lambda b: medians[b])
    if predicted == best:
        return f"the measured best (median {medians[best]:.3g})"
    if predicted in medians and max(measured[predicted]) >= medians[best]:
        return (
            f"within the measurement's margin: batch {predicted}'s rounds reach {max(measured[predicted]):.3g}, "
            f"the best (batch {best})'s median is {medians[best]:.3g}"
        )
    reach = f"{max(measured[predicted]):.3g}" if predicted in medians else "nothing (not measured)"
    return (
        f"NOT within the measurement's margin: batch {predicted}'s rounds reach {reach}, "
        f"batch {best}'s median is {medians[best]:.3g}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tinybert-l2")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batches", default="8,16,32")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--capacity-slo-ms", type=float, default=None)
    parser.add_argument("--closed-s", type=float, default=20.0, help="seconds each closed-loop level runs")
    parser.add_argument("--clients", type=int, default=16, help="clients of the saturating closed loop")
    parser.add_argument(
        "--predict-from", type=Path, action="append", help="in-process sweep rows for will-it-run (repeatable)"
    )
    parser.add_argument("--predict-budget-ms", type=float, default=None, help="the budget --batch-size auto meets")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    slo = args.capacity_slo_ms
    folder = folder_for(args.model)
    print(f"uptime: {uptime()}", flush=True)
    predicted = None
    if args.predict_from:
        if args.predict_budget_ms is None:
            raise SystemExit("--predict-from needs --predict-budget-ms: the budget --batch-size auto plans for")
        predicted, note = predicted_best(folder, args.depth, args.predict_from, args.predict_budget_ms)
        named = ", ".join(path.name for path in args.predict_from)
        print(f"will-it-run --batch-size auto at {args.predict_budget_ms:g} ms from {named}: {note}")
    if args.rounds < 1:
        return
    print(f"{args.model} depth {args.depth}, documents {DOC_TOKENS} tokens; closed loops of {args.closed_s:g} s")
    many = f"x{args.clients} req/s"
    print(f"{'round':>5} {'batch':>5} {'host pairs/s':>12} {many:>9} {'per 1k host':>11} {'x1 p50 ms':>9}  time")
    per_batch: dict[int, list[dict]] = {b: [] for b in batches}
    with tempfile.TemporaryDirectory(prefix="infinity-ab-") as tmp:
        scratch = Path(tmp)
        for r in range(args.rounds):
            for batch in batches[r % len(batches) :] + batches[: r % len(batches)]:
                speed = host_speed(folder, args.depth, scratch)
                figures = served(folder, args.depth, batch, scratch, slo, args.closed_s, args.clients)
                figures["host_pairs_per_s"] = speed
                figures["many_per_1k_host"] = figures["many_rps"] / speed * 1000.0
                per_batch[batch].append(figures)
                capacity = f"  capacity {figures['capacity_rps'] or 0:.1f}/s" if slo is not None else ""
                print(
                    f"{r + 1:>5} {batch:>5} {speed:>12.0f} {figures['many_rps']:>9.2f} "
                    f"{figures['many_per_1k_host']:>11.1f} {figures['x1_p50_ms']:>9.1f}  {time.strftime('%H:%M:%S')}"
                    + capacity,
                    flush=True,
                )
    print(f"\nmedians over rounds ({many} per 1,000 host pairs/s compares batch sizes at one host speed):")
    for batch, runs in per_batch.items():
        rps = [f["many_rps"] for f in runs]
        norm = [f["many_per_1k_host"] for f in runs]
        found = [f.get("capacity_rps") or 0.0 for f in runs]
        capacity = f", capacity {statistics.median(found):.1f}/s ({min(found):.1f}-{max(found):.1f})" if slo else ""
        print(
            f"  batch {batch:>2}: x{args.clients} {statistics.median(rps):.2f} req/s ({min(rps):.2f}-{max(rps):.2f}), "
            f"per 1k host {statistics.median(norm):.1f} ({min(norm):.1f}-{max(norm):.1f})" + capacity
        )
    if predicted is not None and args.rounds > 0:
        key = "capacity_rps" if slo else "many_rps"
        measured = {b: [f.get(key) or 0.0 for f in runs] for b, runs in per_batch.items()}
        print(f"predicted best batch {predicted}: {verdict(predicted, measured)}")
    print(f"uptime: {uptime()}")


if __name__ == "__main__":
    main()
