"""`sweep`: plan (resolve models, expand cases), then run each load group in a child process and write a
row per case as it finishes.

Like hyperfine's scheduler, results are exported after every case "because we would risk losing them if a
later benchmark fails"; like optimum-benchmark's process launcher, each model runs in its own process, so
a crash or an out-of-memory kill becomes rows rather than the end of the run.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rerank_bench.common.thresholds import BUSY_PCT
from rerank_bench.common.vocab import Status
from rerank_bench.errors import (
    EXIT_TERMINATED,
    EnvironmentProblem,
    GateFailed,
    Interrupted,
    ModelError,
    RerankBenchError,
)
from rerank_bench.probe import MachineReport
from rerank_bench.probe.cpu import cgroup_oom_kills
from rerank_bench.results.provenance import new_run_id, run_metadata, utc_now
from rerank_bench.results.store import ResultWriter, output_error, rescue
from rerank_bench.sweep.agreement import compare_scores
from rerank_bench.sweep.background import machine_busy_pct
from rerank_bench.sweep.cases import Case
from rerank_bench.sweep.jobs import CaseJob, GroupJob, LoadSpec, ReferenceJob
from rerank_bench.sweep.messages import (
    Done,
    Fatal,
    Finished,
    Loaded,
    Message,
    Preparing,
    ReferenceScores,
    Started,
    Warm,
)
from rerank_bench.sweep.planner import SweepPlan
from rerank_bench.sweep.processes import Job, start_child
from rerank_bench.sweep.timing import MeasureSettings

# Ranking agreement is measured against this configuration of the same model on the same device.
REFERENCE = ("torch", "fp32", "given")


@dataclass
class SweepOutcome:
    run_id: str
    output: Path
    samples: Path
    rows: list[dict[str, Any]]
    interrupted: bool = False
    fatal: list[tuple[str, str]] = field(default_factory=list)  # (kind, message) per refused load group
    stopped_by: str = ""  # the signal that interrupted the sweep, when it was not Ctrl-C
    write_error: RerankBenchError | None = None  # the result file could not be written (rows rescued)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "output": str(self.output),
            "samples": str(self.samples),
            "interrupted": self.interrupted,
        }

    def failure(self, resumed: list[dict[str, Any]] | None = None) -> RerankBenchError | None:
        """How the sweep ended, if not well: its output failed, it was interrupted (its rows kept), load groups
        could not run (an environment problem when every one was, else a model problem), or no case measured
        ok (exit 1: a sweep that measured nothing must not pass a CI step); None when it ran."""
        if self.write_error is not None:
            return self.write_error
        if self.interrupted:
            error = Interrupted(f"{len(self.rows)} finished cases are in {self.output}")
            if self.stopped_by == "SIGTERM":
                error.exit_code = EXIT_TERMINATED
                error.label = "terminated"
            return error
        if not self.fatal:
            rows = [*(resumed or []), *self.rows]
            if rows and not any(r.get("status") == Status.OK for r in rows):
                statuses = ", ".join(f"{n} {s}" for s, n in Counter(r.get("status") for r in rows).items())
                return GateFailed(f"no case measured ok ({statuses}); see status_reason in {self.output}")
            return None
        message = "; ".join(dict.fromkeys(message for _, message in self.fatal))
        if {kind for kind, _ in self.fatal} == {"environment"}:
            return EnvironmentProblem(message)
        return ModelError(message)


class SweepEvents(Protocol):
    def notice(self, message: str) -> None: ...
    def preparing(self, what: str) -> None: ...
    def case_started(self, case: Case) -> None: ...
    def case_finished(self, case: Case, row: dict[str, Any]) -> None: ...


class QuietEvents:
    def notice(self, message: str) -> None:
        pass

    def preparing(self, what: str) -> None:
        pass

    def case_started(self, case: Case) -> None:
        pass

    def case_finished(self, case: Case, row: dict[str, Any]) -> None:
        pass


def _is_reference(case: Case) -> bool:
    return (case.backend, case.dtype, case.order) == REFERENCE and not (case.attention or case.prefix)


def _load_groups(cases: list[Case]) -> list[list[Case]]:
    groups: dict[tuple[Any, ...], list[Case]] = {}
    for case in cases:
        key = (case.model.spec, case.backend, case.dtype, case.device, case.max_length, case.threads, case.attention)
        groups.setdefault(key, []).append(case)
    return list(groups.values())


def _key_columns(case: Case, load: dict[str, Any] | None) -> dict[str, Any]:
    """The case's key as planned (so the row's own key columns reproduce its case_id), and beside it what loading
    the model settled: the length it truncates at and whether its classifier head was newly initialised."""
    key: dict[str, Any] = case.key()
    if load:
        key["effective_max_length"] = load.get("max_length")
        key["random_head"] = "random-head" in str(load.get("weights") or "")
    return key


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def _stop(process: Any, finished: bool) -> None:
    """A worker that said it finished gets a moment to exit on its own (so the semaphores its libraries
    made are released, not reported as leaked); any other is killed."""
    if finished:
        process.join(timeout=10)
    if process.is_alive():
        process.kill()
    process.join(timeout=10)


class _GroupRun:
    """Runs one load group in a child process and turns whatever happens into rows."""

    def __init__(
        self,
        cases: list[Case],
        plan: SweepPlan,
        settings: MeasureSettings,
        write: Callable[[Case, dict[str, Any], list[float]], None],
        events: SweepEvents,
        fingerprint: str = "",
        reference: dict[int, ReferenceScores] | None = None,
    ) -> None:
        self.fingerprint = fingerprint
        self.reference = reference  # depth -> the reference's scores of the agreement requests (and quality)
        self.cases = {c.index: c for c in cases}
        self.order = [c.index for c in cases]
        self.plan = plan
        self.settings = settings
        self.write = write
        self.events = events
        self.load: dict[str, Any] | None = None
        self.pending = list(self.order)
        self.current: int | None = None
        self.deadline: float | None = None
        self.fatal: tuple[str, str] | None = None
        self.oom_kills_before: int | None = None

    def payload(self) -> GroupJob:
        first = self.cases[self.order[0]]
        return GroupJob(
            model=first.model.to_payload(),
            load=LoadSpec(
                first.backend,
                first.dtype,
                first.device,
                first.threads,
                first.max_length,
                self.fingerprint,
                first.attention,
            ),
            cases=tuple(
                CaseJob(c.index, c.depth, c.batch_size, c.seed, c.order, c.prefix)
                for c in (self.cases[i] for i in self.order)
            ),
            workload=self.plan.workload,
            settings=self.settings,
            agreement=bool(self.reference),
            prune_ratio=self.plan.prune_ratio,
        )

    def _finish(self, done: Done) -> None:
        case = self.cases[done.index]
        if done.index in self.pending:
            self.pending.remove(done.index)
        fields = dict(done.fields)
        reference = (self.reference or {}).get(case.depth)
        scores = done.agreement_scores
        if scores and reference and len(scores) == len(reference.scores):
            fields.update(compare_scores(reference.scores, scores).to_row())
            fields["agreement_reference"] = "/".join(REFERENCE)
        if reference and reference.quality and fields.get("ndcg_at_10") is not None:
            fields["reference_ndcg_at_10"] = reference.quality["ndcg_at_10"]
            fields["ndcg_drop"] = reference.quality["ndcg_at_10"] - fields["ndcg_at_10"]
        row = {**_key_columns(case, self.load), **fields}
        if self.load:
            for name in ("load_s", "tokenizer", "gpu_name", "export_s", "backend_options"):
                row.setdefault(name, self.load.get(name))
        self.write(case, row, done.latencies_ms)
        self.current = None
        self.deadline = None

    def _fail_rest(
        self, status: str, reason: str, first_status: str | None = None, first_reason: str | None = None
    ) -> None:
        for n, index in enumerate(list(self.pending)):
            if n == 0 and self.current == index and first_status:
                self._finish(Done(index, {"status": first_status, "status_reason": first_reason or reason}))
            else:
                self._finish(Done(index, {"status": status, "status_reason": reason}))

    def handle(self, message: Message) -> None:
        if isinstance(message, Preparing):
            self.events.preparing(message.what)
        elif isinstance(message, Loaded):
            self.load = message.info
        elif isinstance(message, Started):
            self.current = message.index
            self.deadline = time.monotonic() + self.settings.first_query_timeout_s
            self.events.case_started(self.cases[self.current])
        elif isinstance(message, Warm):
            queries = self.settings.warmup_queries + 1
            budget = self.settings.max_seconds + queries * message.first_query_s
            self.deadline = time.monotonic() + 30.0 + 3.0 * budget
        elif isinstance(message, Done):
            self._finish(message)
        elif isinstance(message, Fatal):
            if message.kind == "oom":  # loading ran out of memory: rows say so, the sweep goes on
                self._fail_rest(Status.OOM, message.message)
            else:
                self.fatal = (message.kind, message.message)
                self._fail_rest(Status.ERROR, message.message)

    def run(self) -> None:
        from rerank_bench.sweep.child import worker_main

        self.oom_kills_before = cgroup_oom_kills()
        end = supervise(worker_main, self.payload(), self.handle, lambda: self.deadline)
        if end.how == "timeout":
            case = self.cases[self.current] if self.current is not None else None
            self._fail_rest(
                Status.SKIPPED,
                f"worker killed: case {case.describe() if case else '?'} timed out",
                first_status=Status.TIMEOUT,
                first_reason="no result before the per-case deadline; the worker was killed",
            )
        elif end.how == "died" and self.pending:
            self._died(end.exitcode)

    def _died(self, exitcode: int | None) -> None:
        """A worker that died is `crashed`, with its signal, unless the cgroup's OOM-kill counter rose while it
        ran: then the kernel's OOM killer took it, and the case is `oom`. (A SIGKILL alone says neither.)"""
        how = _signal_name(exitcode)
        current = self.cases[self.current].describe() if self.current is not None else "loading"
        before, after = self.oom_kills_before, cgroup_oom_kills()
        oom_killed = before is not None and after is not None and after > before
        self._fail_rest(
            Status.SKIPPED,
            f"worker process died ({how}) during {current}",
            first_status=Status.OOM if oom_killed else Status.CRASHED,
            first_reason=(
                f"worker killed ({how}) by the kernel's out-of-memory killer (cgroup oom_kill {before} -> {after})"
                if oom_killed
                else f"worker process crashed ({how}); --resume measures it again"
            ),
        )


@dataclass(frozen=True)
class ChildEnd:
    how: str  # "finished", "fatal", "died" or "timeout"
    exitcode: int | None = None


def supervise(
    target: Callable[[Any, Job], None],
    payload: Job,
    on_message: Callable[[Message], None],
    deadline: Callable[[], float | None],
) -> ChildEnd:
    """The one supervision loop: run `target(conn, payload)` in a fresh child process (processes.py), hand each
    message to `on_message`, and say how the child ended: it finished, gave up (Fatal), died, or passed
    `deadline()` (a monotonic time, re-read every poll; None: no deadline yet) and was killed."""
    process, receiver = start_child(target, payload, payload.load.backend)
    end: ChildEnd | None = None

    def take(message: Message) -> None:
        nonlocal end
        on_message(message)
        if isinstance(message, Finished | Fatal) and end is None:
            end = ChildEnd("finished" if isinstance(message, Finished) else "fatal")

    try:
        while end is None:
            if receiver.poll(0.1):
                try:
                    message = receiver.recv()
                except (EOFError, OSError):
                    process.join(timeout=5)
                    end = ChildEnd("died", process.exitcode)
                    break
                take(message)
            elif not process.is_alive():
                while end is None and receiver.poll():
                    take(receiver.recv())
                end = end or ChildEnd("died", process.exitcode)
            elif (limit := deadline()) is not None and time.monotonic() > limit:
                process.kill()
                process.join(timeout=5)
                end = ChildEnd("timeout")
    finally:
        _stop(process, finished=end is not None and end.how == "finished")
        receiver.close()
    return end


def _reference_scores(
    cases: list[Case], plan: SweepPlan, settings: MeasureSettings
) -> tuple[dict[int, ReferenceScores], str | None]:
    """Reference scores (torch fp32, given order) of the agreement requests at each depth of these cases,
    from a short-lived worker; ({}, why) when the reference cannot be had."""
    from rerank_bench.sweep.child import reference_main

    first = cases[0]
    payload = ReferenceJob(
        model=first.model.to_payload(),
        load=LoadSpec(REFERENCE[0], REFERENCE[1], first.device, first.threads, first.max_length),
        depths=tuple(sorted({c.depth for c in cases})),
        seed=first.seed,
        workload=plan.workload,
        quality_requests=settings.quality_requests,
    )
    scores: dict[int, ReferenceScores] = {}
    problems: list[str] = []

    def on_message(message: Message) -> None:
        if isinstance(message, ReferenceScores):
            scores[message.depth] = message
        elif isinstance(message, Fatal):
            problems.append(message.message)

    limit = time.monotonic() + settings.first_query_timeout_s
    end = supervise(reference_main, payload, on_message, lambda: limit)
    if end.how == "died":
        problems.append(f"the reference worker died ({_signal_name(end.exitcode)})")
    elif end.how == "timeout":
        problems.append("the reference worker timed out")
    return (scores, None) if not problems else ({}, problems[0])


def _needs_reference(cases: list[Case]) -> bool:
    return any(c.skip is None and not _is_reference(c) and c.backend != "fake" for c in cases)


def run_sweep(
    plan: SweepPlan, machine: MachineReport, settings: MeasureSettings, events: SweepEvents | None = None
) -> SweepOutcome:
    events = events or QuietEvents()
    run_id = new_run_id()
    meta = run_metadata(machine, run_id)
    rows: list[dict[str, Any]] = []
    fatal: list[tuple[str, str]] = []
    with ResultWriter(plan.output) as writer:
        outcome = SweepOutcome(run_id=run_id, output=plan.output, samples=writer.samples_path, rows=rows, fatal=fatal)

        def write(case: Case, row: dict[str, Any], latencies: list[float]) -> None:
            full = {**meta, **row, "case_id": case.case_id, "utc_time": utc_now()}
            if latencies:
                full["samples_file"] = writer.samples_path.name
            rows.append(full)
            try:
                if latencies:
                    writer.write_samples(run_id, case.case_id, latencies)
                writer.write_row(full)
            except OSError as exc:  # a full disk, say: the case just measured must not be lost with it
                where = rescue(full, run_id, case.case_id, latencies)
                error = output_error(plan.output, exc)
                error.message += f"; the case just measured is kept in {where}, and the sweep stopped"
                raise _OutputFailed(error) from None
            events.case_finished(case, full)
            if (full.get("background_cpu_pct") or 0.0) > BUSY_PCT:
                events.notice(
                    f"busy machine: other processes took {full['background_cpu_pct']:.0f}% of the CPU during "
                    f"{case.describe()}; its figures are likely low"
                )

        references: dict[tuple[Any, ...], dict[int, ReferenceScores]] = {}
        load = machine_busy_pct() if any(c.skip is None and c.backend != "fake" for c in plan.to_run()) else None
        if load is not None and load > BUSY_PCT:
            events.notice(
                f"busy machine: other processes are using {load:.0f}% of the CPU before the sweep starts; "
                "figures measured now will be low (rows record the load per case in background_cpu_pct)"
            )
        try:
            to_run = plan.to_run()
            for case in to_run:
                if case.skip is not None:
                    write(case, {**case.key(), "status": Status.SKIPPED, "status_reason": case.skip}, [])
            runnable = [c for c in to_run if c.skip is None]
            for group in _load_groups(runnable):
                first = group[0]
                ref_key = (first.model.spec, first.device, first.max_length, first.seed)
                same_model = [c for c in runnable if (c.model.spec, c.device, c.max_length, c.seed) == ref_key]
                if plan.agreement and ref_key not in references and _needs_reference(same_model):
                    events.notice(
                        f"{first.model.name}: scoring the agreement requests with the reference "
                        "(torch fp32, given order)"
                    )
                    references[ref_key], problem = _reference_scores(same_model, plan, settings)
                    if problem:
                        events.notice(f"{first.model.name}: no ranking agreement: {problem}")
                run = _GroupRun(group, plan, settings, write, events, machine.fingerprint, references.get(ref_key))
                run.run()
                if run.fatal:
                    fatal.append(run.fatal)
                    events.notice(f"{group[0].model.name}: {run.fatal[1]}")
        except KeyboardInterrupt as stop:
            outcome.interrupted = True
            outcome.stopped_by = getattr(stop, "signal_name", "")
        except _OutputFailed as failed:
            outcome.write_error = failed.error
    return outcome


class _OutputFailed(Exception):
    def __init__(self, error: RerankBenchError) -> None:
        super().__init__(error.message)
        self.error = error
