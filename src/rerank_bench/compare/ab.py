"""`ab`: baseline (A) and candidate (B) measured on one machine in one job, interleaved query by query.

Each repetition starts fresh worker processes (which load and warm up) holding A, a second copy of A
(A', the A/A check) and B. The three take turns, one query each, on the same request each turn, rotating
who goes first: A B A' / B A' A / A' A B ... Drift of the machine (other tenants, clocks; several percent
over seconds on a shared 2-core runner) then falls on both arms alike and cancels in each pair. Arms run by
the same command share one process; arms from different environments get one each, and only the one
whose turn it is may run (the others are paused with SIGSTOP).

An arm is the shared sweep options plus its own (`--a`, `--b`), planned and measured by its own command
(`--a-cmd`, `--b-cmd`: e.g. the rerank-bench of another virtual environment, for a dependency upgrade).

Decision, per case: throughput from the paired ratio of mean latencies (B vs A, query by query); p50, p95
and memory as in `compare`. The A/A check gives the noise floor: the half-width of the 95% interval of
A' vs A. When it is more than half the threshold, the verdict is inconclusive.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from rerank_bench.compare.baseline import CaseRuns, Comparison, case_label, compare_case
from rerank_bench.compare.bootstrap import paired_ratio
from rerank_bench.errors import EnvironmentProblem, UsageError

FORBIDDEN = ("-o", "--output", "--resume", "--json", "--dry-run", "--shard")
ROTATIONS = (("A", "B", "A2"), ("B", "A2", "A"), ("A2", "A", "B"))
MIN_QUERIES = 10  # per arm and repetition, even past --seconds


@dataclass(frozen=True)
class Arm:
    name: str
    command: list[str]
    args: list[str]


def parse_arm(name: str, command: str | None, args: str | None) -> Arm:
    extra = shlex.split(args or "")
    for flag in FORBIDDEN:
        if flag in extra:
            raise UsageError(f"--{name.lower()} must not set {flag}: ab decides how each arm runs")
    cmd = shlex.split(command) if command else [sys.executable, "-m", "rerank_bench"]
    return Arm(name, cmd, extra)


def plan_arm(arm: Arm, shared: list[str]) -> list[dict[str, Any]]:
    """The arm's cases, planned by the arm's own rerank-bench (`sweep --dry-run --json`)."""
    argv = [*arm.command, "sweep", *shared, *arm.args, "--dry-run", "--json"]
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except OSError as exc:
        raise EnvironmentProblem(f"arm {arm.name}: cannot run {arm.command[0]}: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"arm {arm.name}: {last}", f"command: {shlex.join(argv)}")
    return json.loads(result.stdout)


class _Worker:
    """A worker process holding one or more jobs (one per arm it serves)."""

    def __init__(self, name: str, command: list[str], jobs: list[dict[str, Any]], timeout_s: float) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - the worker's stderr, for its life
        self.proc = subprocess.Popen(
            [*command, "_ab-worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
        )
        self.stopped = False
        self._send({"jobs": jobs})

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout_s: float | None = None) -> dict[str, Any]:
        stdout: IO[str] = self.proc.stdout  # type: ignore[assignment]
        ready, _, _ = select.select([stdout], [], [], timeout_s or self.timeout_s)
        line = stdout.readline() if ready else ""
        if not line:
            self.stderr.seek(0)
            tail = (self.stderr.read().strip().splitlines() or ["no answer"])[-1]
            raise UsageError(f"{self.name}: worker {'timed out' if not ready else 'stopped'}: {tail}")
        message = json.loads(line)
        if "error" in message:
            raise UsageError(f"{self.name}: {message['error']}")
        return message

    def pause(self, paused: bool) -> None:
        """Stop or continue the process. Idle OpenMP threads spin for a while after each parallel region;
        a waiting worker of another environment would steal the cores from the one being timed."""
        if self.proc.poll() is None and paused != self.stopped:
            os.kill(self.proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)
            self.stopped = paused

    def query(self, index: int, job: int) -> float:
        self._send({"query": index, "job": job})
        return float(self.receive()["ms"])

    def stop(self) -> dict[str, Any]:
        self.pause(False)
        self._send({"stop": True})
        return self.receive()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.pause(False)
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def run_repetition(
    arms: dict[str, Arm], jobs: dict[str, dict[str, Any]], seconds: float, timeout_s: float
) -> dict[str, Any]:
    """One repetition: fresh workers for A, A' and B taking turns; latencies per arm and memory per worker.

    Arms run by the same command share one worker process (three models loaded side by side, turns without
    process switches); arms from different commands get a process each, paused while not their turn.
    """
    names = ("A", "A2", "B")
    if arms["A"].command == arms["B"].command:
        shared = _Worker("A/B", arms["A"].command, [jobs[n] for n in names], timeout_s)
        route = {n: (shared, i) for i, n in enumerate(names)}
        workers = [shared]
    else:
        own = {n: _Worker(n if n != "A2" else "A'", arms[n].command, [jobs[n]], timeout_s) for n in names}
        route = {n: (own[n], 0) for n in names}
        workers = list(own.values())
    try:
        for w in workers:
            w.receive(timeout_s)
        latencies: dict[str, list[float]] = {n: [] for n in names}
        start = time.monotonic()
        q = 0
        while time.monotonic() - start < seconds or q < MIN_QUERIES:
            for name in ROTATIONS[q % len(ROTATIONS)]:
                worker, job = route[name]
                for other in workers:
                    other.pause(other is not worker)
                latencies[name].append(worker.query(q, job))
            q += 1
        memory = {w.name: w.stop()["memory"] for w in workers}
        per_arm = {n: memory[route[n][0].name] for n in names}
        return {"latencies": latencies, "memory": per_arm}
    finally:
        for w in workers:
            w.kill()


def _arm_rows(name: str, case: dict[str, Any], reps_out: list[dict[str, Any]], shared: bool) -> list[dict[str, Any]]:
    """One row per repetition: the arm's planned case with the memory its worker reported. Arms that share a
    process report that process's memory, the same for both, so no memory is carried to compare."""
    out = []
    for rep in reps_out:
        memory = {} if shared else rep["memory"][name]
        out.append(
            {
                **case,
                "peak_rss_mib": memory.get("peak_rss_mib"),
                "peak_vram_reserved_mib": memory.get("peak_vram_reserved_mib"),
            }
        )
    return out


def _case_runs(where: str, rows: list[dict[str, Any]], runs: list[list[float]]) -> CaseRuns:
    return CaseRuns(key=(), rows=rows, runs=runs, where=where)


def run_ab(
    a: Arm,
    b: Arm,
    shared: list[str],
    reps: int,
    thresholds: dict[str, float],
    seconds: float = 12.0,
    timeout_s: float = 600.0,
    progress: Callable[[str], None] = lambda _: None,
) -> Comparison:
    if reps < 1:
        raise UsageError("--reps must be at least 1")
    if seconds <= 0 or timeout_s <= 0:
        raise UsageError("--seconds and --case-timeout must be positive")
    cases_a, cases_b = plan_arm(a, shared), plan_arm(b, shared)
    if len(cases_a) != len(cases_b):
        raise UsageError(f"arm A plans {len(cases_a)} cases and arm B {len(cases_b)}; give both the same grid")
    arms = {"A": a, "A2": a, "B": b}
    one_worker = a.command == b.command  # one worker process holds all three arms (see run_repetition)
    results = []
    for position, (case_a, case_b) in enumerate(zip(cases_a, cases_b, strict=True)):
        jobs = {"A": case_a["job"], "A2": case_a["job"], "B": case_b["job"]}
        reps_out = []
        for rep in range(reps):
            progress(f"case {position + 1}/{len(cases_a)}, repetition {rep + 1}/{reps}: A, A' and B take turns")
            reps_out.append(run_repetition(arms, jobs, seconds, timeout_s))

        base = _case_runs("A", _arm_rows("A", case_a, reps_out, one_worker), [r["latencies"]["A"] for r in reps_out])
        cand = _case_runs("B", _arm_rows("B", case_b, reps_out, one_worker), [r["latencies"]["B"] for r in reps_out])
        key = {"A": " ".join(a.args) or "(shared options)", "B": " ".join(b.args) or "(shared options)"}
        # Timing metrics from pairs: B and A on the same request, back to back.
        pairs = [list(zip(r["latencies"]["A"], r["latencies"]["B"], strict=True)) for r in reps_out]
        result = compare_case(case_label(case_a), key, base, cand, thresholds, pairs=pairs)
        aa = paired_ratio([list(zip(r["latencies"]["A"], r["latencies"]["A2"], strict=True)) for r in reps_out], seed=1)
        result.noise = (aa.high - aa.low) / 2
        if result.noise > thresholds["throughput"] / 2:
            result.verdict = "inconclusive"
        results.append(result)
    notes = [
        f"{reps} repetition(s); each starts fresh processes for A, A' and B, which take turns one query at a time "
        f"for {seconds:g} s; the A/A noise floor is the half-width of the 95% interval of A' vs A"
    ]
    if shared:
        notes.append(
            "memory is not compared: A, A' and B share one process here, so they share its memory figure; "
            "give --a-cmd and --b-cmd to run each arm in its own process"
        )
    if a.command == b.command and a.args == b.args:
        notes.insert(0, "A and B are identical: this is an A/A run")
    return Comparison(cases=results, only_in_baseline=[], only_in_current=[], notes=notes, thresholds=thresholds)
