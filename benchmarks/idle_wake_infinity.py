"""Does a request that finds infinity idle take longer than one that follows the last reply, and after how long
an idle gap? The source of will-it-run's wake time and of IDLE_WAKE_TAU_MS (willrun/serving_sim.py).

    python benchmarks/idle_wake_infinity.py [--model tinybert-l2] [--depth 20] [--batch 8] [--requests 60]
        [--gaps 0,1,2,5,10,20,50,100,200,500] [--rounds 2]

Why: infinity answered TinyBERT-L2's depth-20 requests in 22 ms one at a time back to back (closed x1) and in 30
ms open-loop at 3, 10 and 20 requests a second (2026-12-04 09:24, flat with the rate: not queueing), so the p50
at moderate load that will-it-run predicted from the closed x1 level read low by a third. Here one client sends
requests one at a time with a pause of G ms between a reply and the next request (a closed loop with think time),
for each G in --gaps, --requests requests each, over --rounds rounds (gaps in the same order each round), after
20 untimed requests; printed: each gap's p50 and mean, and the p50 less the round's hot p50 (the median of its
p50s at pauses of HOT_MS or less: one pause's p50 moves by 2 ms between rounds, so one alone is a poor
baseline), and over the rounds a fit of rise(G) = W (1 - exp(-G / tau)) by least squares over a grid of tau (W
in closed form for each), over the pauses up to FIT_MS (the idle times a moderate load leaves) and over all.
The request bodies come from `rerank-bench`'s own text workload (documents of 16-64 tokens); a plain
`http.client` connection, kept alive, so the client adds no pool or event loop of its own.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from endpoint_infinity import free_port, start_infinity, stop_server, uptime, wait_ready  # noqa: E402 - the sibling script's helpers
from willrun_vs_infinity import folder_for  # noqa: E402

HOT_MS = 5  # pauses this short leave the server as busy as none (2026-12-04: within 1-2 ms of no pause)
FIT_MS = 200  # the fit that IDLE_WAKE_TAU_MS comes from: the pauses a server at a moderate load sits idle for


def bodies(model: str, depth: int, count: int) -> list[bytes]:
    """`count` infinity /rerank bodies of `depth` documents of 16-64 tokens, as `rerank-bench endpoint` builds
    them (common English words, one token each)."""
    from dataclasses import asdict

    from rerank_bench.catalog import common_words
    from rerank_bench.workload.build import build_requests
    from rerank_bench.workload.requests import parse_doc_tokens

    payload = {"kind": "synthetic", "doc_tokens": asdict(parse_doc_tokens("16:64"))}
    requests = build_requests(payload, common_words(), depth, 512, 0, count=count)
    return [json.dumps({"model": model, "query": r.query, "documents": list(r.documents)}).encode() for r in requests]


def served_model(port: int) -> str:
    """The served model's id: the first in infinity's /models."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/models", timeout=5) as reply:
        return json.load(reply)["data"][0]["id"]


def fit_tau(gaps: list[int], rises: list[float]) -> tuple[float, float]:
    """(W, tau) of least squared error for rise(G) = W (1 - exp(-G / tau)), tau on a grid of 1-200 ms."""
    best = (math.inf, 0.0, 0.0)
    for tau in range(1, 201):
        shape = [1.0 - math.exp(-g / tau) for g in gaps]
        denominator = sum(s * s for s in shape)
        if denominator == 0:
            continue
        wake = sum(s * r for s, r in zip(shape, rises, strict=True)) / denominator
        error = sum((r - wake * s) ** 2 for s, r in zip(shape, rises, strict=True))
        best = min(best, (error, wake, float(tau)))
    return best[1], best[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tinybert-l2")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--gaps", default="0,1,2,5,10,20,50,100,200,500")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    gaps = [int(g) for g in args.gaps.split(",")]
    if not any(g <= HOT_MS for g in gaps):
        raise SystemExit(f"--gaps needs a pause of {HOT_MS} ms or less: each gap's rise is against those")
    folder = folder_for(args.model)
    port = free_port()
    log = (ROOT / "results" / f"idle-wake-{args.model}-b{args.batch}-server.log").open("w")
    server = start_infinity(folder, port, args.batch, log)
    print(f"uptime: {uptime()}", flush=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        texts = bodies(served_model(port), args.depth, 1000)
        connection = http.client.HTTPConnection("127.0.0.1", port)
        sent = 0

        def one() -> float:
            nonlocal sent
            body = texts[sent % len(texts)]  # a new body each time: no cache answers it
            sent += 1
            start = time.perf_counter()
            connection.request("POST", "/rerank", body=body, headers={"content-type": "application/json"})
            reply = connection.getresponse()
            reply.read()
            if reply.status != 200:
                raise SystemExit(f"infinity answered {reply.status}")
            return 1000.0 * (time.perf_counter() - start)

        for _ in range(20):
            one()
        rises: dict[int, list[float]] = {g: [] for g in gaps}
        for round_ in range(args.rounds):
            p50s = {}
            for gap in gaps:
                latencies = []
                for _ in range(args.requests):
                    if gap:
                        time.sleep(gap / 1000.0)
                    latencies.append(one())
                p50s[gap] = statistics.median(latencies)
                print(
                    f"round {round_ + 1} pause {gap:4d} ms: p50 {p50s[gap]:5.1f} ms, mean "
                    f"{statistics.fmean(latencies):5.1f} ms",
                    flush=True,
                )
            hot = statistics.median(v for g, v in p50s.items() if g <= HOT_MS)
            for gap in gaps:
                rises[gap].append(p50s[gap] - hot)
            print(f"round {round_ + 1}: hot p50 (pauses up to {HOT_MS} ms) {hot:.1f} ms", flush=True)
    finally:
        stop_server(server, log)
    mean_rises = [statistics.fmean(rises[g]) for g in gaps]
    shown = ", ".join(f"{g} ms: {r:+.1f}" for g, r in zip(gaps, mean_rises, strict=True))
    print(f"p50 over the hot p50, mean of {args.rounds} rounds: {shown}")
    every = list(zip(gaps, mean_rises, strict=True))
    upto = [(g, r) for g, r in every if g <= FIT_MS]
    for label, points in ((f"pauses up to {FIT_MS} ms", upto), ("every pause", every)):
        wake, tau = fit_tau([g for g, _ in points], [r for _, r in points])
        print(f"least squares over {label}: rise = {wake:.1f} ms x (1 - exp(-pause / {tau:.0f} ms))")
    print(uptime())


if __name__ == "__main__":
    main()
