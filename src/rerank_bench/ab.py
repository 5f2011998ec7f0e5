"""`ab`: baseline (A) and candidate (B) measured interleaved on one machine in one job.

Each repetition of each arm is a fresh `rerank-bench sweep` process (which warms up before timing), in
the order A B, B A, A B, ... so that slow drift of the machine (thermal, other tenants) falls on both arms
alike. An arm is the shared sweep options plus its own (`--a`, `--b`), run by its own command (`--a-cmd`,
`--b-cmd`: e.g. the rerank-bench of another virtual environment, for a dependency upgrade).

The A/A check: A's repetitions, resampled twice independently, give the interval an unchanged comparison
would have on this machine now (the noise floor). When that noise is more than half the threshold, no
verdict can be trusted and the case is inconclusive.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rerank_bench.compare import CaseRuns, Comparison, case_label, compare_case
from rerank_bench.errors import EnvironmentProblem, UsageError
from rerank_bench.results import read_rows, read_samples, samples_path_for
from rerank_bench.stats import bootstrap_ratio

FORBIDDEN = ("-o", "--output", "--resume", "--json", "--dry-run")


@dataclass(frozen=True)
class Arm:
    name: str
    command: list[str]
    args: list[str]


def parse_arm(name: str, command: str | None, args: str | None) -> Arm:
    extra = shlex.split(args or "")
    for flag in FORBIDDEN:
        if flag in extra:
            raise UsageError(f"--{name.lower()} must not set {flag}: ab chooses where each run writes")
    cmd = shlex.split(command) if command else [sys.executable, "-m", "rerank_bench"]
    return Arm(name, cmd, extra)


def run_arm(arm: Arm, shared: list[str], out: Path) -> list[tuple[dict[str, str], list[float]]]:
    argv = [*arm.command, "sweep", *shared, *arm.args, "-o", str(out), "--json"]
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except OSError as exc:
        raise EnvironmentProblem(f"arm {arm.name}: cannot run {arm.command[0]}: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"arm {arm.name} failed (exit {result.returncode}): {last}", f"command: {shlex.join(argv)}")
    json.loads(result.stdout)  # a sweep that printed no JSON summary did not finish
    samples = read_samples(samples_path_for(out))
    runs = []
    for row in read_rows(out):
        if row["status"] != "ok":
            raise UsageError(f"arm {arm.name}: case {row['case_id']} ended {row['status']}: {row['status_reason']}")
        runs.append((row, samples[(row["run_id"], row["case_id"])]))
    return runs


def run_ab(
    a: Arm,
    b: Arm,
    shared: list[str],
    reps: int,
    thresholds: dict[str, float],
    workdir: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> Comparison:
    if reps < 2:
        raise UsageError("--reps must be at least 2: the A/A check needs repeated runs of A")
    per_arm: dict[str, list[list[tuple[dict[str, str], list[float]]]]] = {"A": [], "B": []}
    for rep in range(reps):
        order = (a, b) if rep % 2 == 0 else (b, a)
        for arm in order:
            progress(f"repetition {rep + 1}/{reps}: {arm.name}")
            per_arm[arm.name].append(run_arm(arm, shared, workdir / f"{arm.name}-{rep}.csv"))
    counts = {len(runs) for arm_runs in per_arm.values() for runs in arm_runs}
    if len(counts) != 1:
        raise UsageError("the arms measured different numbers of cases; give both the same grid")
    cases = []
    for position in range(counts.pop()):
        a_rows = [runs[position] for runs in per_arm["A"]]
        b_rows = [runs[position] for runs in per_arm["B"]]
        base = CaseRuns(key=(), rows=[r for r, _ in a_rows], runs=[lat for _, lat in a_rows], where="A")
        cand = CaseRuns(key=(), rows=[r for r, _ in b_rows], runs=[lat for _, lat in b_rows], where="B")
        label = case_label(a_rows[0][0])
        key = {"A": " ".join(a.args) or "(shared options)", "B": " ".join(b.args) or "(shared options)"}
        result = compare_case(label, key, base, cand, thresholds)
        aa = bootstrap_ratio(base.runs, base.runs, "median", seed=1)
        result.noise = (aa.high - aa.low) / 2
        if result.noise > min(thresholds["throughput"], thresholds["p50"]) / 2 and result.verdict != "inconclusive":
            result.verdict = "inconclusive"
        cases.append(result)
    notes = [
        f"{reps} repetitions per arm, each a fresh process, interleaved A B / B A; "
        "A/A noise floor from A's repetitions (half-width of the 95% interval of an unchanged comparison)"
    ]
    return Comparison(cases=cases, only_in_baseline=[], only_in_current=[], notes=notes, thresholds=thresholds)
