"""Planning a sweep: everything that can be checked before anything is measured (models, device, workload,
output, resume state), ending in the explicit list of cases (plan.py) that the scheduler runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rerank_bench.common.vocab import DONE_STATUSES, Status
from rerank_bench.errors import UsageError
from rerank_bench.models.resolve import HubClient, ResolvedModel, length_limit, resolve_model
from rerank_bench.probe import MachineReport
from rerank_bench.results.provenance import default_output
from rerank_bench.results.schema import ResultRow
from rerank_bench.results.store import check_output, read_rows
from rerank_bench.sweep.cases import Case, Grid, clamped_batches_note, effective_batches, expand_cases
from rerank_bench.sweep.request import DEFAULT_BATCH_SIZES, DEFAULT_PRUNE_RATIO, SweepRequest
from rerank_bench.sweep.support import DeviceTraits, missing_packages, skip_reason
from rerank_bench.workload.requests import (
    LengthSpec,
    load_workload_file,
    parse_doc_tokens,
    requests_from_file,
    workload_digest,
)

# What --resume does not measure again: a crash, an error or a timeout is tried again; out of memory only with
# --retry-oom (the same configuration on the same machine would most likely run out again).


@dataclass
class SweepPlan:
    cases: list[Case]
    output: Path
    workload: dict[str, Any]
    notices: list[str]
    already_done: set[str]  # case ids --resume found measured
    resumed_rows: list[ResultRow]
    prune_ratio: float | None = None  # tune: stop larger batch sizes once one is this fraction of the best
    agreement: bool = True  # score the agreement requests against the reference where it applies

    def to_run(self) -> list[Case]:
        return [c for c in self.cases if c.case_id not in self.already_done]

    def dry_run(self) -> list[dict[str, Any]]:
        """The case list as data: key, state and the job a worker would run."""
        return [
            {
                "index": c.index,
                "case_id": c.case_id,
                **c.key(),
                "resumed": c.case_id in self.already_done,
                "skip": c.skip,
                "job": c.job(self.workload),
            }
            for c in self.cases
        ]


def _workload(request: SweepRequest) -> tuple[dict[str, Any], str]:
    if request.workload_file is not None:
        if request.doc_tokens is not None:
            raise UsageError("--workload and --doc-tokens both set lengths; pass one of them")
        path = request.workload_file
        file_requests = load_workload_file(path)
        for depth in request.depths:  # a depth the file cannot serve is an error before anything runs
            requests_from_file(file_requests, depth, request.seed, request.sample_with_replacement, str(path))
        digest = workload_digest(path)
        payload = {"kind": "file", "path": str(path.resolve()), "with_replacement": request.sample_with_replacement}
        return payload, f"file:{path.name}@{digest}"
    spec: LengthSpec = parse_doc_tokens(request.doc_tokens)
    return {"kind": "synthetic", "doc_tokens": asdict(spec)}, spec.label()


def _checked(resolved: ResolvedModel, request: SweepRequest) -> ResolvedModel:
    """A model's options checked against it: --max-length within what it takes, --instruction only for a
    yes/no reranker (and carried to its scorer)."""
    limit = length_limit(resolved)
    if request.max_length is not None and limit is not None and request.max_length > limit:
        raise UsageError(
            f"--max-length {request.max_length} is more than {resolved.name} takes ({limit} tokens)",
            f"use --max-length {limit} or less",
        )
    if request.instruction is None:
        return resolved
    if resolved.scoring != "yes-no":
        raise UsageError(
            f"--instruction is for decoder rerankers scored through yes/no; {resolved.name} is a classifier",
            "drop --instruction",
        )
    return dataclasses.replace(resolved, instruction=request.instruction)


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
        resolved = _checked(resolved, request)
        models.append(resolved)
        if resolved.notice:
            notices.append(f"{resolved.name}: {resolved.notice}")
    if any(m.source == "fake" for m in models) != ("fake" in request.backends):
        raise UsageError("fake: models run only on --backend fake, and the fake backend only runs fake: models")
    only_fake = all(m.source == "fake" for m in models)
    device = "cpu" if only_fake else resolve_device(request.device, torch_module)
    threads = request.threads or machine.cpu.usable_cores
    traits = device_traits(device, machine)
    missing = {(b, d): missing_packages(b, d) for b in request.backends for d in request.dtypes}

    def skip(backend: str, dtype: str) -> str | None:
        return skip_reason(backend, dtype, traits, missing[backend, dtype])

    counts = request.thread_counts if device == "cpu" else None
    batch_sizes = request.batch_sizes or DEFAULT_BATCH_SIZES
    grid = Grid(
        models=tuple(models),
        batch_sizes=batch_sizes,
        depths=request.depths,
        device=device,
        thread_counts=counts or (threads,),
        workload=label,
        seed=request.seed,
        max_length=request.max_length,
        backends=request.backends,
        dtypes=request.dtypes,
        orders=request.orders,
        attentions=request.attentions,
        prefixes=request.prefixes,
    )
    cases = expand_cases(grid, skip)
    notices.extend(clamped_batches_note(batch_sizes, request.depths))
    prune_ratio = None
    if request.batch_sizes is None and len(effective_batches(batch_sizes, max(request.depths))) > 1:
        prune_ratio = DEFAULT_PRUNE_RATIO
        notices.append(
            f"default batch sizes {','.join(map(str, batch_sizes))}: at each depth the larger ones are skipped "
            f"once one runs below {prune_ratio:.0%} of the best pairs/s so far; --batch-size "
            f"{','.join(map(str, batch_sizes))} measures every one"
        )
    if request.shard is not None:
        k, n = request.shard
        # By case index over the full grid: every shard sees the same grid, so the slices never overlap.
        cases = [c for c in cases if c.index % n == k - 1]
    output = request.resume or request.output or default_output(machine)
    check_output(output, "--resume" if request.resume else "--output")
    done: set[str] = set()
    resumed: list[ResultRow] = []
    if request.resume is not None:
        if not request.resume.exists():
            raise UsageError(f"--resume {request.resume}: no such file")
        planned = {c.case_id for c in cases}
        for row in read_rows(request.resume):
            done_statuses = (Status.OK,) if request.retry_oom else DONE_STATUSES
            if row.get("status") in done_statuses and row.get("case_id") in planned:
                done.add(row["case_id"])
                resumed.append(row)
    return SweepPlan(
        cases=cases,
        output=output,
        workload=workload,
        notices=notices,
        already_done=done,
        resumed_rows=resumed,
        prune_ratio=prune_ratio,
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
