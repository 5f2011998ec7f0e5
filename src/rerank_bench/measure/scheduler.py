"""`sweep`: plan (resolve models, expand cases), then run each load group in a child process and write a
row per case as it finishes.

Like hyperfine's scheduler, results are exported after every case "because we would risk losing them if a
later benchmark fails"; like optimum-benchmark's process launcher, each model runs in its own process, so
a crash or an out-of-memory kill becomes rows rather than the end of the run.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rerank_bench.errors import UsageError
from rerank_bench.measure.agreement import compare_scores
from rerank_bench.measure.plan import Case, expand_cases
from rerank_bench.measure.support import DeviceTraits, missing_packages, skip_reason
from rerank_bench.measure.timing import MeasureSettings
from rerank_bench.models.resolve import HubClient, ResolvedModel, resolve_model
from rerank_bench.probe import MachineReport
from rerank_bench.results.provenance import default_output, new_run_id, run_metadata, utc_now
from rerank_bench.results.store import ResultWriter, read_rows
from rerank_bench.workload.requests import LengthSpec, load_workload_file, parse_doc_tokens, requests_from_file

DONE_STATUSES = ("ok", "oom")  # what --resume does not measure again
# Ranking agreement is measured against this configuration of the same model on the same device.
REFERENCE = ("torch", "fp32", "given")


@dataclass(frozen=True)
class SweepRequest:
    models: tuple[str, ...] = ("minilm-l6",)
    batch_sizes: tuple[int, ...] = (8, 16, 32, 64)
    depths: tuple[int, ...] = (10, 20, 50, 100)
    backends: tuple[str, ...] = ("torch",)
    dtypes: tuple[str, ...] = ("fp32",)
    orders: tuple[str, ...] = ("given",)
    thread_counts: tuple[int, ...] | None = None  # None: the usable cores
    max_length: int | None = None
    doc_tokens: str | None = None
    workload_file: Path | None = None
    sample_with_replacement: bool = False
    weights: str = "auto"
    revision: str | None = None
    device: str = "auto"
    threads: int | None = None
    output: Path | None = None
    resume: Path | None = None
    seed: int = 0
    trust_remote_code: bool = False
    allow_random_head: bool = False
    settings: MeasureSettings = field(default_factory=MeasureSettings)
    shard: tuple[int, int] | None = None  # (K, N): the K-th of N slices, 1-based


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`--shard K/N`."""
    if text is None:
        return None
    k, sep, n = text.partition("/")
    try:
        shard = (int(k), int(n))
    except ValueError:
        shard = (0, 0)
    if not sep or not 1 <= shard[0] <= shard[1]:
        raise UsageError(f"--shard {text!r} is not K/N with 1 <= K <= N", "for example --shard 2/4")
    return shard


@dataclass
class SweepPlan:
    cases: list[Case]
    output: Path
    workload: dict[str, Any]
    notices: list[str]
    already_done: set[str]  # case ids --resume found measured
    resumed_rows: list[dict[str, str]]
    prune_ratio: float | None = None  # tune: stop larger batch sizes once one is this fraction of the best
    agreement: bool = True  # score the agreement requests against the reference where it applies

    def to_run(self) -> list[Case]:
        return [c for c in self.cases if c.case_id not in self.already_done]


@dataclass
class SweepOutcome:
    run_id: str
    output: Path
    samples: Path
    rows: list[dict[str, Any]]
    interrupted: bool = False
    fatal: list[tuple[str, str]] = field(default_factory=list)  # (kind, message) per refused load group


class SweepEvents(Protocol):
    def notice(self, message: str) -> None: ...
    def case_started(self, case: Case) -> None: ...
    def case_finished(self, case: Case, row: dict[str, Any]) -> None: ...


class QuietEvents:
    def notice(self, message: str) -> None:
        pass

    def case_started(self, case: Case) -> None:
        pass

    def case_finished(self, case: Case, row: dict[str, Any]) -> None:
        pass


def _workload(request: SweepRequest) -> tuple[dict[str, Any], str]:
    if request.workload_file is not None:
        if request.doc_tokens is not None:
            raise UsageError("--workload and --doc-tokens both set lengths; pass one of them")
        import hashlib

        path = request.workload_file
        file_requests = load_workload_file(path)
        for depth in request.depths:  # a depth the file cannot serve is an error before anything runs
            requests_from_file(file_requests, depth, request.seed, request.sample_with_replacement, str(path))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        payload = {"kind": "file", "path": str(path.resolve()), "with_replacement": request.sample_with_replacement}
        return payload, f"file:{path.name}@{digest}"
    spec: LengthSpec = parse_doc_tokens(request.doc_tokens)
    return {"kind": "synthetic", "doc_tokens": asdict(spec)}, spec.label()


def plan_sweep(
    request: SweepRequest, machine: MachineReport, hub: HubClient | None = None, torch_module: Any | None = None
) -> SweepPlan:
    """Everything that can be checked before measuring: models, device, workload, output, resume state."""
    from rerank_bench.probe.device import resolve_device

    if request.max_length is not None and request.max_length < 8:
        raise UsageError(f"--max-length {request.max_length} is too small for a query and a document")
    if request.resume is not None and request.output is not None and request.resume != request.output:
        raise UsageError("--resume FILE appends to FILE; drop --output or make it the same file")
    workload, label = _workload(request)
    models: list[ResolvedModel] = []
    notices: list[str] = []
    for spec in dict.fromkeys(request.models):
        resolved = resolve_model(
            spec, request.weights, request.revision, request.trust_remote_code, request.allow_random_head, hub
        )
        models.append(resolved)
        if resolved.notice:
            notices.append(f"{resolved.name}: {resolved.notice}")
    if any(m.source == "fake" for m in models) != ("fake" in request.backends):
        raise UsageError("fake: models run only on --backend fake, and the fake backend only runs fake: models")
    only_fake = all(m.source == "fake" for m in models)
    device = "cpu" if only_fake else resolve_device(request.device, torch_module)
    threads = request.threads or machine.cpu.usable_cores
    traits = device_traits(device, machine)
    missing = {b: missing_packages(b) for b in request.backends}

    def skip(backend: str, dtype: str) -> str | None:
        return skip_reason(backend, dtype, traits, missing[backend])

    counts = request.thread_counts if device == "cpu" else None
    cases = expand_cases(
        models,
        request.batch_sizes,
        request.depths,
        device,
        threads,
        label,
        request.seed,
        request.max_length,
        request.backends,
        request.dtypes,
        request.orders,
        counts,
        skip,
    )
    if request.shard is not None:
        k, n = request.shard
        # By case index over the full grid: every shard sees the same grid, so the slices never overlap.
        cases = [c for c in cases if c.index % n == k - 1]
    output = request.resume or request.output or default_output(machine)
    done: set[str] = set()
    resumed: list[dict[str, str]] = []
    if request.resume is not None:
        if not request.resume.exists():
            raise UsageError(f"--resume {request.resume}: no such file")
        planned = {c.case_id for c in cases}
        for row in read_rows(request.resume):
            if row.get("status") in DONE_STATUSES and row.get("case_id") in planned:
                done.add(row["case_id"])
                resumed.append(row)
    return SweepPlan(
        cases=cases, output=output, workload=workload, notices=notices, already_done=done, resumed_rows=resumed
    )


def device_traits(device: str, machine: MachineReport) -> DeviceTraits:
    kind = "cuda" if device.startswith("cuda") else device
    capability = None
    if kind == "cuda":
        index = int(device.split(":")[1]) if ":" in device else 0
        for gpu in machine.gpus:
            if gpu.cuda_index == index and gpu.compute_capability:
                major, _, minor = gpu.compute_capability.partition(".")
                capability = (int(major), int(minor or 0))
    providers = tuple(machine.software.get("onnxruntime_providers") or ())
    return DeviceTraits(
        kind=kind, cpu_flags=frozenset(machine.cpu.isa_flags), cuda_capability=capability, ort_providers=providers
    )


def _is_reference(case: Case) -> bool:
    return (case.backend, case.dtype, case.order) == REFERENCE


def _load_groups(cases: list[Case]) -> list[list[Case]]:
    groups: dict[tuple[Any, ...], list[Case]] = {}
    for case in cases:
        key = (case.model.spec, case.backend, case.dtype, case.device, case.max_length, case.threads)
        groups.setdefault(key, []).append(case)
    return list(groups.values())


def _key_columns(case: Case, load: dict[str, Any] | None) -> dict[str, Any]:
    key = case.key()
    if load:
        key["weights"] = load.get("weights") or key["weights"]
        key["max_length"] = load.get("max_length") or key["max_length"]
        key["revision"] = load.get("revision") or key["revision"]
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
        reference: dict[int, list[list[float]]] | None = None,
    ) -> None:
        self.fingerprint = fingerprint
        self.reference = reference  # depth -> reference scores of the agreement requests
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

    def payload(self) -> dict[str, Any]:
        first = self.cases[self.order[0]]
        return {
            "model": first.model.to_payload(),
            "group": {
                "backend": first.backend,
                "dtype": first.dtype,
                "device": first.device,
                "threads": first.threads,
                "max_length": first.max_length,
                "fingerprint": self.fingerprint,
            },
            "cases": [
                {"index": c.index, "depth": c.depth, "batch_size": c.batch_size, "seed": c.seed, "order": c.order}
                for c in (self.cases[i] for i in self.order)
            ],
            "workload": self.plan.workload,
            "settings": asdict(self.settings),
            "agreement": bool(self.reference),
            "prune_ratio": self.plan.prune_ratio,
        }

    def _finish(self, index: int, fields: dict[str, Any], latencies: list[float]) -> None:
        case = self.cases[index]
        if index in self.pending:
            self.pending.remove(index)
        fields = dict(fields)
        scores = fields.pop("_agreement_scores", None)
        reference = (self.reference or {}).get(case.depth)
        if scores and reference and len(scores) == len(reference):
            fields.update(compare_scores(reference, scores).to_row())
            fields["agreement_reference"] = "/".join(REFERENCE)
        row = {**_key_columns(case, self.load), **fields}
        if self.load:
            for name in ("load_s", "tokenizer", "gpu_name", "export_s", "backend_options"):
                row.setdefault(name, self.load.get(name))
        self.write(case, row, latencies)
        self.current = None
        self.deadline = None

    def _fail_rest(
        self, status: str, reason: str, first_status: str | None = None, first_reason: str | None = None
    ) -> None:
        for n, index in enumerate(list(self.pending)):
            if n == 0 and self.current == index and first_status:
                self._finish(index, {"status": first_status, "status_reason": first_reason or reason}, [])
            else:
                self._finish(index, {"status": status, "status_reason": reason}, [])

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "loaded":
            self.load = message[1]
        elif kind == "start":
            self.current = message[1]
            self.deadline = time.monotonic() + self.settings.first_query_timeout_s
            self.events.case_started(self.cases[self.current])
        elif kind == "warm":
            per_query = float(message[2])
            queries = self.settings.warmup_queries + 1
            self.deadline = time.monotonic() + 30.0 + 3.0 * (self.settings.max_seconds + queries * per_query)
        elif kind == "done":
            self._finish(message[1], message[2], message[3])
        elif kind == "fatal":
            self.fatal = (message[1], message[2])
            self._fail_rest("error", message[2])

    def run(self) -> None:
        from rerank_bench.measure.child import worker_main

        ctx = mp.get_context("spawn")
        receiver, sender = ctx.Pipe(duplex=False)
        process = ctx.Process(target=worker_main, args=(sender, self.payload()), daemon=True)
        process.start()
        sender.close()
        try:
            while self.pending:
                if receiver.poll(0.1):
                    try:
                        message = receiver.recv()
                    except (EOFError, OSError):
                        process.join(timeout=5)
                        self._died(process.exitcode)
                        break
                    self.handle(message)
                    if message[0] in ("finished", "fatal"):
                        break
                elif not process.is_alive():
                    while receiver.poll():
                        self.handle(receiver.recv())
                    if self.pending:
                        self._died(process.exitcode)
                    break
                elif self.deadline is not None and time.monotonic() > self.deadline:
                    process.kill()
                    process.join(timeout=5)
                    case = self.cases[self.current] if self.current is not None else None
                    self._fail_rest(
                        "skipped",
                        f"worker killed: case {case.describe() if case else '?'} timed out",
                        first_status="timeout",
                        first_reason="no result before the per-case deadline; the worker was killed",
                    )
                    break
        finally:
            _stop(process, finished=not self.pending and self.fatal is None)
            receiver.close()

    def _died(self, exitcode: int | None) -> None:
        how = _signal_name(exitcode)
        current = self.cases[self.current].describe() if self.current is not None else "loading"
        killed = exitcode == -signal.SIGKILL
        self._fail_rest(
            "skipped",
            f"worker process died ({how}) during {current}",
            first_status="oom" if killed else "error",
            first_reason=(
                f"worker killed ({how}), most likely by the kernel's out-of-memory killer"
                if killed
                else f"worker process crashed ({how})"
            ),
        )


def _reference_scores(
    cases: list[Case], plan: SweepPlan, settings: MeasureSettings
) -> tuple[dict[int, list[list[float]]], str | None]:
    """Reference scores (torch fp32, given order) of the agreement requests at each depth of these cases,
    from a short-lived worker; ({}, why) when the reference cannot be had."""
    from rerank_bench.measure.child import reference_main

    first = cases[0]
    payload = {
        "model": first.model.to_payload(),
        "group": {
            "backend": REFERENCE[0],
            "dtype": REFERENCE[1],
            "device": first.device,
            "threads": first.threads,
            "max_length": first.max_length,
        },
        "depths": sorted({c.depth for c in cases}),
        "seed": first.seed,
        "workload": plan.workload,
    }
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=reference_main, args=(sender, payload), daemon=True)
    process.start()
    sender.close()
    scores: dict[int, list[list[float]]] = {}
    problem: str | None = None
    deadline = time.monotonic() + settings.first_query_timeout_s
    try:
        while True:
            if receiver.poll(0.1):
                try:
                    message = receiver.recv()
                except (EOFError, OSError):
                    problem = "the reference worker died"
                    break
                if message[0] == "reference":
                    scores[message[1]] = message[2]
                elif message[0] == "fatal":
                    problem = message[2]
                    break
                elif message[0] == "finished":
                    break
            elif not process.is_alive():
                problem = f"the reference worker died ({_signal_name(process.exitcode)})"
                break
            elif time.monotonic() > deadline:
                problem = "the reference worker timed out"
                break
    finally:
        _stop(process, finished=problem is None)
        receiver.close()
    return (scores, None) if not problem else ({}, problem)


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
                writer.write_samples(run_id, case.case_id, latencies)
                full["samples_file"] = writer.samples_path.name
            writer.write_row(full)
            rows.append(full)
            events.case_finished(case, full)

        references: dict[tuple[Any, ...], dict[int, list[list[float]]]] = {}
        try:
            to_run = plan.to_run()
            for case in to_run:
                if case.skip is not None:
                    write(case, {**case.key(), "status": "skipped", "status_reason": case.skip}, [])
            runnable = [c for c in to_run if c.skip is None]
            for group in _load_groups(runnable):
                first = group[0]
                ref_key = (first.model.spec, first.device, first.max_length, first.seed)
                same_model = [c for c in runnable if (c.model.spec, c.device, c.max_length, c.seed) == ref_key]
                if plan.agreement and ref_key not in references and _needs_reference(same_model):
                    events.notice(
                        f"{first.model.name}: scoring the agreement requests with the reference (torch fp32, given order)"
                    )
                    references[ref_key], problem = _reference_scores(same_model, plan, settings)
                    if problem:
                        events.notice(f"{first.model.name}: no ranking agreement: {problem}")
                run = _GroupRun(group, plan, settings, write, events, machine.fingerprint, references.get(ref_key))
                run.run()
                if run.fatal:
                    fatal.append(run.fatal)
                    events.notice(f"{group[0].model.name}: {run.fatal[1]}")
        except KeyboardInterrupt:
            outcome.interrupted = True
    return outcome
