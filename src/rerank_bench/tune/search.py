"""`tune`: the fastest way to run one reranker at one depth on this machine, and what it costs in ranking.

Two stages, both ordinary sweep cases (written to a result CSV like any sweep):
1. Search: the naive default (sentence-transformers' `CrossEncoder.predict`, fp32, given order, its default
   batch size 32) and backend x dtype x threads x batch size in length order, and x token budget (tokens:N
   order: each batch as many pairs as fit N padded tokens), each briefly. Pruned: what
   this device cannot run is a skipped row without a process; batch sizes ascend and stop once one is well
   below the best smaller one; given order is measured for the naive default only (sorting by length only
   removes padding, it never adds any).
2. Confirm: the naive default, the fastest configuration above the agreement floor and the fastest at any
   agreement are measured again, on more requests, in alternating rounds with fresh processes, so the
   reported speed-up is not one lucky case against one unlucky one.
Every configuration times the same first requests of the workload (a fixed count, not a time budget), so
rates compare the same work.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_bench.common.stats import min_samples_for
from rerank_bench.common.vocab import Status
from rerank_bench.errors import UsageError
from rerank_bench.probe import MachineReport
from rerank_bench.sweep.cases import Case
from rerank_bench.sweep.planner import SweepPlan, plan_sweep
from rerank_bench.sweep.request import SweepRequest
from rerank_bench.sweep.scheduler import QuietEvents, SweepEvents, run_sweep
from rerank_bench.sweep.timing import MeasureSettings
from rerank_bench.tune.request import TuneRequest
from rerank_bench.workload.requests import labelled_workload

NAIVE: dict[str, Any] = {"backend": "torch", "dtype": "fp32", "order": "given", "batch_size": 32}
CONFIG_FIELDS = ("backend", "dtype", "order", "attention", "prefix", "batch_size", "threads", "device")


@dataclass
class Choice:
    config: dict[str, Any]
    pairs_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    agreement: dict[str, Any]
    gflop_per_s: float | None = None
    fraction_of_peak: float | None = None
    rounds: list[float] = field(default_factory=list)  # pairs/s of each confirmation round

    def budget_ms(self) -> tuple[float | None, str]:
        """The latency the budget is checked on: p95, or the slowest query when too few ran for a p95."""
        return (self.p95_ms, "p95") if self.p95_ms is not None else (self.max_ms, "max")

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "pairs_per_s": self.pairs_per_s,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "max_ms": self.max_ms,
            "agreement": self.agreement,
            "gflop_per_s": self.gflop_per_s,
            "fraction_of_peak": self.fraction_of_peak,
            "confirm_rounds_pairs_per_s": self.rounds,
        }


@dataclass
class TuneResult:
    model: str
    depth: int
    naive: Choice | None
    best: Choice | None
    best_any_agreement: Choice | None
    candidates: list[dict[str, Any]]
    output: Path
    min_agreement: float
    budget_ms: float | None
    notes: list[str]
    model_id: str = ""
    weights: str = ""
    pair_tokens_p95: float | None = None
    export_folder: Path | str | None = None  # what the best configuration loads (a folder, or a Hub id)
    export_meta: dict[str, Any] | None = None
    max_length: int | None = None
    max_ndcg_drop: float | None = None
    scoring: str = "classifier"  # "yes-no": a decoder reranker (its snippet runs rerank-bench's own scorer)
    instruction: str | None = None

    @property
    def speedup(self) -> float | None:
        if self.best and self.naive and self.naive.pairs_per_s:
            return self.best.pairs_per_s / self.naive.pairs_per_s
        return None

    @property
    def speedup_any_agreement(self) -> float | None:
        if self.best_any_agreement and self.naive and self.naive.pairs_per_s:
            return self.best_any_agreement.pairs_per_s / self.naive.pairs_per_s
        return None

    def to_dict(self) -> dict[str, Any]:
        from rerank_bench.tune.snippets import settings_for

        return {
            "model": self.model,
            "model_id": self.model_id,
            "weights": self.weights,
            "depth": self.depth,
            "min_agreement": self.min_agreement,
            "max_ndcg_drop": self.max_ndcg_drop,
            "budget_ms": self.budget_ms,
            "naive": self.naive.to_dict() if self.naive else None,
            "best": self.best.to_dict() if self.best else None,
            "best_any_agreement": self.best_any_agreement.to_dict() if self.best_any_agreement else None,
            "speedup": self.speedup,
            "speedup_any_agreement": self.speedup_any_agreement,
            "settings": settings_for(self, self.best) if self.best else None,
            "export_folder": str(self.export_folder) if self.export_folder else None,
            "candidates": self.candidates,
            "output": str(self.output),
            "notes": self.notes,
        }


def config_of(row: dict[str, Any]) -> dict[str, Any]:
    config = {name: row.get(name) for name in CONFIG_FIELDS}
    return config


def agreement_of(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "spearman_mean": row.get("agreement_spearman_mean"),
        "spearman_worst": row.get("agreement_spearman_worst"),
        "top10_overlap": row.get("agreement_top10_overlap"),
        "max_abs_diff": row.get("agreement_max_abs_diff"),
        "ndcg_at_10": row.get("ndcg_at_10"),
        "ndcg_drop": row.get("ndcg_drop"),
    }


def _is_reference(row: dict[str, Any]) -> bool:
    return (row.get("backend"), row.get("dtype")) == ("torch", "fp32")


def meets_agreement(row: dict[str, Any], floor: float) -> bool:
    value = row.get("agreement_spearman_mean")
    if value is None:
        # the reference configuration itself has no comparison to make: it is the reference
        return _is_reference(row)
    return value >= floor


def meets_quality(row: dict[str, Any], max_drop: float | None) -> bool:
    """nDCG@10 within max_drop of the reference's on the same labelled requests (no floor: always)."""
    if max_drop is None:
        return True
    drop = row.get("ndcg_drop")
    if drop is None:
        return _is_reference(row) and row.get("ndcg_at_10") is not None
    return drop <= max_drop


def within_budget(row: dict[str, Any], budget_ms: float | None) -> bool:
    if budget_ms is None:
        return True
    latency = row.get("p95_ms")
    if latency is None:
        latency = row.get("max_ms")
    return latency is not None and latency <= budget_ms


def choose(
    rows: list[dict[str, Any]], floor: float | None, budget_ms: float | None, max_ndcg_drop: float | None = None
) -> dict[str, Any] | None:
    """The fastest ok row within the budget (and above the agreement floor and within the nDCG drop, when
    they are given)."""
    fits = [
        r
        for r in rows
        if r.get("status") == Status.OK
        and r.get("pairs_per_s") is not None
        and within_budget(r, budget_ms)
        and (floor is None or meets_agreement(r, floor))
        and meets_quality(r, max_ndcg_drop)
    ]
    return max(fits, key=lambda r: r["pairs_per_s"] or 0.0) if fits else None


def is_naive(row_or_case: Any) -> bool:
    """sentence-transformers' default: torch fp32, given order, batch 32 (a depth below 32 is one batch)."""
    get = row_or_case.get if isinstance(row_or_case, dict) else lambda k: getattr(row_or_case, k)
    depth: Any = get("depth")
    naive = {**NAIVE, "batch_size": min(int(NAIVE["batch_size"]), int(depth))}
    return all(str(get(k)) == str(v) for k, v in naive.items())


def _feature_skipped(case: Case) -> bool:
    from rerank_bench.sweep.cases import feature_skip

    return feature_skip(case.model, case.backend, case.device, case.attention, case.prefix) is not None


def _reindex(cases: list[Case]) -> list[Case]:
    return [dataclasses.replace(c, index=i) for i, c in enumerate(cases)]


def _sweep_request(request: TuneRequest, **overrides: Any) -> SweepRequest:
    base: dict[str, Any] = dict(
        models=(request.model,),
        depths=(request.depth,),
        weights=request.weights,
        revision=request.revision,
        allow_random_head=request.allow_random_head,
        trust_remote_code=request.trust_remote_code,
        workload_file=request.workload_file,
        doc_tokens=request.doc_tokens,
        max_length=request.max_length,
        instruction=request.instruction,
        device=request.device,
        seed=request.seed,
        output=request.output,
    )
    base.update(overrides)
    return SweepRequest(**base)


def plan_tune(request: TuneRequest, machine: MachineReport) -> tuple[SweepPlan, list[Case]]:
    """The search plan (naive default first) and, separately, nothing else: confirmation is planned later."""
    if request.depth < 1:
        raise UsageError("--depth must be at least 1")
    if request.search_queries < 1 or request.confirm_queries < 1:
        raise UsageError("--search-queries and --confirm-queries must be at least 1")
    export = request.export_dir
    if export is not None and export.exists() and (not export.is_dir() or any(export.iterdir())):
        raise UsageError(f"--export {export} exists and is not an empty folder", "choose a new folder")
    if not 0 < request.min_agreement <= 1:
        raise UsageError("--min-agreement is a Spearman correlation within (0, 1]", "for example --min-agreement 0.99")
    if request.max_ndcg_drop is not None:
        if not 0 <= request.max_ndcg_drop < 1:
            raise UsageError("--max-ndcg-drop is an nDCG@10 difference within [0, 1)", "for example 0.005")
        if request.workload_file is None or not labelled_workload(request.workload_file):
            raise UsageError(
                "--max-ndcg-drop needs relevance labels",
                'pass --workload with "labels" or "relevant" on each line, or a BEIR folder',
            )
    if request.budget_ms is not None and request.budget_ms <= 0:
        raise UsageError("--budget-ms must be positive")
    # The naive default runs with the threads the user allows at most (all usable cores unless --threads).
    naive_threads = (max(request.thread_counts),) if request.thread_counts else None
    naive_plan = plan_sweep(
        _sweep_request(
            request,
            batch_sizes=(NAIVE["batch_size"],),
            backends=("torch",),
            dtypes=("fp32",),
            orders=("given",),
            thread_counts=naive_threads,
        ),
        machine,
    )
    grid_plan = plan_sweep(
        _sweep_request(
            request,
            batch_sizes=request.batch_sizes,
            backends=request.backends,
            dtypes=request.dtypes,
            orders=("length",),
            attentions=request.attentions,
            prefixes=request.prefixes,
            thread_counts=request.thread_counts,
        ),
        machine,
    )
    # The speed features searched are those that apply to this model and runtime (eager attention on torch; a
    # shared prompt prefix for decoder rerankers): the rest are not cases at all, rather than skipped rows.
    grid_cases = [c for c in grid_plan.cases if not _feature_skipped(c)]
    token_cases: list[Case] = []
    if request.token_budgets:
        token_cases = plan_sweep(
            _sweep_request(
                request,
                batch_sizes=(max(request.batch_sizes),),
                backends=request.backends,
                dtypes=request.dtypes,
                orders=tuple(f"tokens:{n}" for n in request.token_budgets),
                thread_counts=request.thread_counts,
            ),
            machine,
        ).cases
    output = request.output or naive_plan.output.with_name(naive_plan.output.stem + "-tune.csv")
    cases = _reindex(naive_plan.cases + grid_cases + token_cases)
    plan = SweepPlan(
        cases=cases,
        output=output,
        workload=naive_plan.workload,
        notices=naive_plan.notices,
        already_done=set(),
        resumed_rows=[],
        prune_ratio=request.prune_ratio,
    )
    return plan, cases


def _choice(rows: list[dict[str, Any]]) -> Choice:
    """One configuration's figures over its confirmation rounds: pairs/s is the mean of the rounds' rates,
    latencies the median of the rounds' values (each round a fresh process)."""
    import statistics

    def med(name: str) -> float | None:
        values = [v for v in (r.get(name) for r in rows) if v is not None]
        return statistics.median(values) if values else None

    rates = [r.get("pairs_per_s") or 0.0 for r in rows]
    first = rows[0]
    return Choice(
        config=config_of(first),
        pairs_per_s=sum(rates) / len(rates),
        p50_ms=med("p50_ms"),
        p95_ms=med("p95_ms"),
        max_ms=max((r.get("max_ms") or 0.0) for r in rows) or None,
        agreement=agreement_of(first),
        gflop_per_s=med("gflop_per_s"),
        fraction_of_peak=med("fraction_of_peak"),
        rounds=rates,
    )


CANDIDATE_FIELDS = (
    "status",
    "pairs_per_s",
    "p50_ms",
    "max_ms",
    "agreement_spearman_mean",
    "agreement_top10_overlap",
    "gflop_per_s",
    "fraction_of_peak",
)


def candidate(row: dict[str, Any]) -> dict[str, Any]:
    """One searched configuration as `tune --json` lists it."""
    return {
        **config_of(row),
        **{name: row.get(name) for name in CANDIDATE_FIELDS},
        "status_reason": row.get("status_reason") or "",
        "backend_options": row.get("backend_options") or "",
    }


def _fixed_count(queries: int, request: TuneRequest) -> MeasureSettings:
    """Every configuration times the same first `queries` requests (see TuneRequest.search_queries)."""
    return MeasureSettings(
        min_queries=queries,
        max_queries=queries,
        min_seconds=0.0,
        max_seconds=request.max_seconds,
        set_size=queries,
        quality_requests=request.quality_requests,
    )


def run_tune(request: TuneRequest, machine: MachineReport, events: SweepEvents | None = None) -> TuneResult:
    events = events or QuietEvents()
    plan, cases = plan_tune(request, machine)
    events.notice(
        f"search: {sum(c.skip is None for c in cases)} configurations to measure, "
        f"{sum(c.skip is not None for c in cases)} skipped as impossible here"
    )
    outcome = run_sweep(plan, machine, _fixed_count(request.search_queries, request), events)
    rows = outcome.rows
    first = rows[0] if rows else {}
    result = TuneResult(
        model=request.model,
        depth=request.depth,
        naive=None,
        best=None,
        best_any_agreement=None,
        candidates=sorted((candidate(r) for r in rows), key=lambda c: -(c["pairs_per_s"] or 0.0)),
        output=outcome.output,
        min_agreement=request.min_agreement,
        max_ndcg_drop=request.max_ndcg_drop,
        budget_ms=request.budget_ms,
        notes=[],
        model_id=str(first.get("model_id", "")),
        weights=str(first.get("weights", "")),
        max_length=request.max_length,
        scoring=cases[0].model.scoring if cases else "classifier",
        instruction=request.instruction,
    )
    naive_row = next((r for r in rows if is_naive(r) and r.get("status") == Status.OK), None)
    if outcome.interrupted or naive_row is None:
        if naive_row is None:
            result.notes.append("the naive default did not run, so there is no speed-up to report")
        return result
    best_row = choose(rows, request.min_agreement, request.budget_ms, request.max_ndcg_drop)
    any_row = choose(rows, None, request.budget_ms)
    rounds = _confirm(request, plan, cases, [naive_row, best_row, any_row], machine, events, result.notes)

    def confirmed(row: dict[str, Any] | None) -> Choice | None:
        if row is None:
            return None
        choice = _choice(rounds.get(str(row["case_id"])) or [row])
        choice.agreement = agreement_of(row)  # agreement comes from the search row (same configuration)
        return choice

    result.naive, result.best, result.best_any_agreement = map(confirmed, (naive_row, best_row, any_row))
    result.pair_tokens_p95 = naive_row.get("pair_tokens_p95")
    if result.best is not None:
        from rerank_bench.tune.export import export_choice, locate_choice

        source, result.export_meta = locate_choice(request, result.best.config)
        result.export_folder = export_choice(source, request.export_dir) if request.export_dir else source
    result.notes.extend(_notes(result, request, str(first.get("weights", "")), bool(first.get("random_head"))))
    if (note := peak_note(result.best, machine.cpu.isa_flags if result.best else [])) is not None:
        result.notes.append(note)
    return result


def _confirm(
    request: TuneRequest,
    plan: SweepPlan,
    cases: list[Case],
    rows: list[dict[str, Any] | None],
    machine: MachineReport,
    events: SweepEvents,
    notes: list[str],
) -> dict[str, list[dict[str, Any]]]:
    """The finalists (naive, best, best-any; each once) again, longer, in alternating order, a fresh process
    each round: case id -> its ok rows, one per round."""
    finalists: list[dict[str, Any]] = []
    for row in rows:
        if row is not None and all(config_of(row) != config_of(f) for f in finalists):
            finalists.append(row)
    by_key = {c.case_id: c for c in cases}
    confirm_cases = [by_key[str(r["case_id"])] for r in finalists]
    rounds: dict[str, list[dict[str, Any]]] = {c.case_id: [] for c in confirm_cases}
    for n in range(request.confirm_rounds):
        ordered = confirm_cases if n % 2 == 0 else list(reversed(confirm_cases))
        round_plan = dataclasses.replace(plan, cases=_reindex(ordered), prune_ratio=None, agreement=False)
        events.notice(f"confirm: round {n + 1} of {request.confirm_rounds}")
        round_outcome = run_sweep(round_plan, machine, _fixed_count(request.confirm_queries, request), events)
        for row in round_outcome.rows:
            if row.get("status") == Status.OK:
                rounds[str(row["case_id"])].append(row)
        if round_outcome.interrupted:
            notes.append("interrupted during confirmation: figures are from the rounds that finished")
            break
    return rounds


def peak_note(best: Choice | None, cpu_flags: list[str]) -> str | None:
    """How close the chosen configuration runs to this machine's measured matmul peak for its dtype, and what
    the CPU lacks that a faster precision would need (VNNI for int8 dot products, native bf16)."""
    if best is None or best.fraction_of_peak is None or best.config.get("device", "cpu") != "cpu":
        return None
    dtype = str(best.config.get("dtype", "fp32"))
    note = f"the best runs at {best.fraction_of_peak:.0%} of this machine's measured {dtype} matmul peak"
    flags = set(cpu_flags)
    missing: list[str] = []
    if not any(f.startswith("avx") for f in flags):  # not x86 (Arm has its own dot products): say nothing of it
        return note
    if not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        missing.append("no VNNI, so int8 has no dot-product instruction to gain from")
    if not flags & {"avx512_bf16", "amx_bf16"}:
        missing.append("no native bf16, so bf16 runs emulated")
    return note + ("; this CPU has " + " and ".join(missing) if missing else "")


def _notes(result: TuneResult, request: TuneRequest, weights: str, random_head: bool) -> list[str]:
    notes = []
    for choice, label in ((result.best, "best"), (result.best_any_agreement, "best at any agreement")):
        if choice is not None and request.budget_ms is not None:
            latency, metric = choice.budget_ms()
            if latency is None or latency > request.budget_ms:
                notes.append(f"{label}: met the budget in the search but {metric} {latency} ms in confirmation")
    if result.best is not None and result.best.p95_ms is None:
        notes.append(
            f"p95 needs {min_samples_for(95)} timed queries; where it is missing the budget was checked on the "
            "slowest query"
        )
    if weights.startswith("random"):
        notes.append("random-weight twin: speeds are real, agreement compares random scores")
    elif random_head:
        notes.append("the classifier head is random (seeded, the same in every backend): agreement is of that head")
    return notes
