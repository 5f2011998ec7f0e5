"""Evidence for the regression gate on this machine: false alarms with no change, detection of more work.

Each gate run is one `rerank-bench ab` (per repetition a fresh process in which A, A' and B take turns
query by query; A/A noise floor from A' vs A) on a fixed MiniLM-L6 case (the random-weight twin: same speed
as the trained model, no download), --seconds of turns per repetition. Conditions,
interleaved so that machine drift falls on all of them alike:
  A/A   both arms identical
  +15%  the candidate's documents are longer, so that each pair has ~15% more tokens (~15% more work)
  +20%  the same with ~20% more tokens
Targets: A/A called a regression at most 1 in 20; +20% detected at least 19 in 20; +15% reported.

Run: python benchmarks/gate_evidence.py [--runs 20] [--runs-15 10] [--reps 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

QUERY_TOKENS_MEAN = 14  # the sweep's queries are 8-20 tokens
SPECIALS = 3  # BERT: [CLS] q [SEP] d [SEP]
BASE_DOC = 60


def doc_tokens_for(extra: float) -> int:
    pair = QUERY_TOKENS_MEAN + BASE_DOC + SPECIALS
    return math.ceil(pair * (1 + extra) - QUERY_TOKENS_MEAN - SPECIALS)


def gate(candidate_doc: int, reps: int, seconds: float) -> tuple[dict, float]:
    shared = ["-m", "minilm-l6", "--weights", "random", "--device", "cpu", "--depth", "10", "--batch-size", "10"]
    argv = [
        sys.executable,
        "-m",
        "rerank_bench",
        "ab",
        "--a",
        f"--doc-tokens {BASE_DOC}",
        "--b",
        f"--doc-tokens {candidate_doc}",
        "--reps",
        str(reps),
        "--seconds",
        str(seconds),
        "--json",
        *shared,
    ]
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode not in (0, 1):
        sys.exit(f"ab failed ({result.returncode}): {result.stderr[-1500:]}")
    return json.loads(result.stdout)["cases"][0], wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--runs-15", type=int, default=None, help="gate runs for +15%% (default: --runs)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    conditions = {"A/A": BASE_DOC, "+15%": doc_tokens_for(0.15), "+20%": doc_tokens_for(0.20)}
    print(
        f"case: minilm-l6 twin, depth 10, batch 10, documents {BASE_DOC} tokens vs "
        f"{conditions['+15%']} (+15%) and {conditions['+20%']} (+20%); {args.reps} reps per arm, "
        f"{args.seconds} s timed per rep; {args.runs} gate runs per condition, interleaved"
    )
    outcomes: dict[str, list[dict]] = {name: [] for name in conditions}
    walls: list[float] = []
    for run in range(args.runs):
        for name, doc in conditions.items():
            if name == "+15%" and args.runs_15 is not None and run >= args.runs_15:
                continue
            case, wall = gate(doc, args.reps, args.seconds)
            walls.append(wall)
            throughput = next(m for m in case["metrics"] if m["metric"] == "throughput")
            outcomes[name].append({"verdict": case["verdict"], "ratio": throughput["ratio"], "noise": case["noise"]})
            print(
                f"run {run + 1:>2} {name:>5}: {case['verdict']:<12} "
                f"[{', '.join(m['metric'] + ' ' + m['verdict'] for m in case['metrics'])}] "
                f"throughput x{throughput['ratio']:.3f} "
                f"[{throughput['low']:.3f}, {throughput['high']:.3f}]  "
                f"A/A noise ±{case['noise'] * 100:.1f}%  ({wall:.0f} s)",
                flush=True,
            )
    print()
    for name, results in outcomes.items():
        verdicts = [r["verdict"] for r in results]
        counts = {v: verdicts.count(v) for v in ("regressed", "inconclusive", "unchanged", "improved")}
        ratios = [r["ratio"] for r in results]
        print(
            f"{name:>5}: regressed {counts['regressed']}/{len(results)}, inconclusive {counts['inconclusive']}, "
            f"unchanged {counts['unchanged']}, improved {counts['improved']}; throughput ratio median "
            f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
        )
    aa = [r["verdict"] for r in outcomes["A/A"]].count("regressed")
    d20 = [r["verdict"] for r in outcomes["+20%"]].count("regressed")
    n = args.runs
    print(f"A/A false regressions: {aa}/{n} (target at most {n // 20})  ->  {'met' if aa <= n // 20 else 'NOT met'}")
    print(f"+20% detected: {d20}/{n} (target at least {n - n // 20})  ->  {'met' if d20 >= n - n // 20 else 'NOT met'}")
    d15 = [r["verdict"] for r in outcomes["+15%"]].count("regressed")
    print(f"+15% detected: {d15}/{len(outcomes['+15%'])}")
    print(
        f"one gate run: median {statistics.median(walls):.0f} s wall "
        f"({args.reps} repetitions, each a fresh process taking turns A, A', B)"
    )


if __name__ == "__main__":
    main()
