"""The child process that measures one load group (one model on one backend, dtype and device).

It loads the model once, runs its cases in order and sends each result to the parent over a pipe as soon
as it is measured; the parent writes it. A crash or out-of-memory kill of this process therefore loses
at most the case in progress, and the next model starts in a fresh process.

What it sends the parent is named in messages.py.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from dataclasses import asdict
from typing import Any

from rerank_bench.backends import CALIBRATED, USER_BACKENDS
from rerank_bench.backends.base import describe_exception, is_out_of_memory
from rerank_bench.backends.quantize import calibration_recipe
from rerank_bench.common.stats import distribution, summarize_latencies
from rerank_bench.common.vocab import Status
from rerank_bench.errors import EnvironmentProblem, RerankBenchError
from rerank_bench.models.resolve import ResolvedModel
from rerank_bench.sweep import background
from rerank_bench.sweep.jobs import CaseJob, GroupJob, LoadSpec, ReferenceJob
from rerank_bench.sweep.messages import (
    Done,
    Fatal,
    Finished,
    Loaded,
    Preparing,
    ReferenceScores,
    Started,
    Warm,
)
from rerank_bench.sweep.quality import labelled, quality_fields
from rerank_bench.sweep.timing import request_set, run_timed
from rerank_bench.workload.build import build_requests
from rerank_bench.workload.records import Request


def measured_fields(scorer: Any, requests: list[Request], measurement: Any, depth: int) -> dict[str, Any]:
    """The case's figures. `requests` is its request set: every timed query was one of them, in whole
    passes, so the token statistics are the set's."""
    summary = summarize_latencies(measurement.latencies_ms)
    used = requests
    pair_tokens = [n for request in used for n in scorer.pair_token_counts(request)]
    tokens = distribution(pair_tokens)
    queries = distribution([scorer.query_token_count(r.query) for r in used])
    fields = {
        "n_queries": summary.n,
        "warmup_queries": measurement.warmup_queries,
        "measure_s": measurement.measure_s,
        "stop_reason": measurement.stop_reason,
        "pairs_per_s": summary.n * depth / measurement.measure_s if measurement.measure_s > 0 else None,
        "queries_per_s": summary.n / measurement.measure_s if measurement.measure_s > 0 else None,
        "percentile_note": summary.note(),
        "query_tokens_mean": queries["mean"],
        "pair_tokens_mean": tokens["mean"],
        "pair_tokens_p50": tokens["p50"],
        "pair_tokens_p95": tokens["p95"],
        "padding_efficiency": (
            measurement.real_tokens / measurement.tokens_computed if measurement.tokens_computed else None
        ),
        # Comparable across workloads, where pairs/s is not: real tokens, and tokens computed (padding included).
        "tokens_per_s": measurement.real_tokens / measurement.measure_s if measurement.measure_s > 0 else None,
        "padded_tokens_per_s": (
            measurement.tokens_computed / measurement.measure_s if measurement.measure_s > 0 else None
        ),
    }
    fields.update(summary.columns())
    return fields


def _free_device_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


AGREEMENT_REQUESTS = 8  # requests scored once per case for ranking agreement with the reference


def work_fields(
    scorer: Any, requests: list[Request], n_queries: int, measure_s: float, peak_gflops: float | None
) -> dict[str, Any]:
    """FLOPs of the timed queries (they cycle through `requests`) at their real token lengths, and the rate."""
    shape = scorer.encoder_shape()
    if shape is None or n_queries == 0:
        return {}
    from rerank_bench.models.flops import request_flops

    per_request = [request_flops(shape, scorer.pair_token_counts(r)) for r in requests[: min(len(requests), n_queries)]]
    total = sum(per_request[i % len(per_request)] for i in range(n_queries))
    rate = total / measure_s / 1e9 if measure_s > 0 else None
    return {
        "gflop_per_query": total / n_queries / 1e9,
        "gflop_per_s": rate,
        "peak_gflop_per_s": peak_gflops,
        "fraction_of_peak": rate / peak_gflops if rate is not None and peak_gflops else None,
    }


def _peak(load: LoadSpec, refresh: bool = False) -> float | None:
    if load.backend == "fake" or not load.fingerprint:
        return None
    try:
        from rerank_bench.backends import base_dtype
        from rerank_bench.sweep.matmul_peak import cached_peak_gflops

        return cached_peak_gflops(load.fingerprint, load.device, load.threads, base_dtype(load.dtype), refresh=refresh)
    except Exception:  # noqa: BLE001 - a missing peak leaves a column empty, never fails a case
        return None


def _load(conn: Any, model: ResolvedModel, load: LoadSpec, calibration: dict[str, Any] | None = None) -> Any:
    try:
        from rerank_bench.backends import get_backend

        backend = get_backend(load.backend)
        scorer = backend.load(
            model, load.device, load.dtype, load.threads, load.max_length, calibration, attention=load.attention
        )
        scorer.words()
        return scorer
    except RerankBenchError as exc:
        kind = "environment" if isinstance(exc, EnvironmentProblem) else "model"
        conn.send(Fatal(kind, exc.one_line()))
    except Exception as exc:  # noqa: BLE001 - report any load failure as rows, never a traceback
        kind = "oom" if is_out_of_memory(exc) else "error"
        conn.send(Fatal(kind, f"loading failed: {describe_exception(exc)}"))
    return None


def prepare_environment(models: list[ResolvedModel]) -> None:
    """The one setup of every measuring child (sweep workers, the reference worker, ab's workers)."""
    # Ctrl-C reaches the whole process group: the parent decides what happens, this process just stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    offline = bool(models) and all(m.local_files_only for m in models)
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"  # resolution found them locally: no network calls, no retries
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # its load report is read, not printed
    # A child forked from the preloading forkserver (processes.py) has these libraries imported already, and
    # they read the variables above at import: tell them directly too.
    if "huggingface_hub" in sys.modules:
        import huggingface_hub

        huggingface_hub.utils.disable_progress_bars()
        if offline:
            huggingface_hub.constants.HF_HUB_OFFLINE = True
    if "transformers" in sys.modules:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()


def _prepare(payload: dict[str, Any]) -> ResolvedModel:
    model = ResolvedModel.from_payload(payload)
    prepare_environment([model])
    return model


def reference_main(conn: Any, job: ReferenceJob) -> None:
    """Scores the agreement requests of each depth with the reference configuration (torch fp32, given)."""
    model = _prepare(job.model)
    scorer = _load(conn, model, job.load)
    if scorer is None:
        return
    words = scorer.words()
    scorer.set_order("given")
    for depth in job.depths:
        requests = build_requests(job.workload, words, depth, scorer.info.max_length, job.seed)
        scores, quality = _untimed_scores(scorer, requests, 32, job.quality_requests)
        conn.send(ReferenceScores(depth, scores[:AGREEMENT_REQUESTS], quality))
    scorer.close()
    conn.send(Finished())


def _untimed_scores(
    scorer: Any, pool: list[Any], batch: int, quality_requests: int
) -> tuple[list[list[float]], dict[str, Any] | None]:
    """After timing: scores of the agreement requests, and where the workload is labelled, of the first
    `quality_requests` requests with their relevance metrics (the agreement requests are among them)."""
    count = max(AGREEMENT_REQUESTS, quality_requests) if labelled(pool) else AGREEMENT_REQUESTS
    chosen = pool[:count]
    scores = [scorer.score(r, batch) for r in chosen]
    return scores, quality_fields(chosen, scores) if labelled(chosen) else None


def _loading(model: ResolvedModel, load: LoadSpec) -> str:
    what = f"loading {model.name} ({load.backend} {load.dtype})"
    if model.source == "twin":
        what += "; its random-weight twin is built on first use"
    if load.backend != "torch" and load.backend in USER_BACKENDS:
        what += "; exported on first use"
        if load.dtype in CALIBRATED:
            what += " (and calibrated: minutes)"
    return what


class SkipRules:
    """Which of a group's cases are not run, and why, keyed by (order, depth): larger batch sizes after one ran
    out of memory, and (tune, and the sweep's default batch sizes) larger ones after one ran below
    `prune_ratio` of the best smaller one's pairs/s (throughput against batch size rises then falls on every
    backend measured here)."""

    def __init__(self, prune_ratio: float | None) -> None:
        self.prune_ratio = prune_ratio
        self.oom_at: dict[tuple[str, int], int] = {}  # the smallest batch size that ran out of memory
        self.best: dict[tuple[str, int], tuple[float, int]] = {}  # (pairs/s, batch size) of the fastest so far
        self.pruned: dict[tuple[str, int], str] = {}

    def why_skip(self, case: CaseJob) -> str | None:
        at = (case.order, case.depth)
        if at in self.oom_at and case.batch_size > self.oom_at[at]:
            return f"batch {self.oom_at[at]} ran out of memory at depth {case.depth}"
        return self.pruned.get(at)

    def ran_out_of_memory(self, case: CaseJob) -> None:
        at = (case.order, case.depth)
        self.oom_at[at] = min(case.batch_size, self.oom_at.get(at, case.batch_size))

    def measured(self, case: CaseJob, pairs_per_s: float) -> None:
        at, batch = (case.order, case.depth), case.batch_size
        top, top_batch = self.best.get(at, (0.0, batch))
        if self.prune_ratio and top and pairs_per_s < self.prune_ratio * top:
            self.pruned[at] = (
                f"pruned: batch {batch} ran at {pairs_per_s / top:.0%} of batch {top_batch}'s pairs/s at depth "
                f"{case.depth} (below {self.prune_ratio:.0%}), so larger batch sizes were not measured"
            )
        if pairs_per_s > top:
            self.best[at] = (pairs_per_s, batch)


class GroupWorker:
    """A loaded scorer and what its cases share: the words to build requests from and the machine's peak."""

    def __init__(self, conn: Any, job: GroupJob, scorer: Any) -> None:
        self.conn, self.job, self.scorer = conn, job, scorer
        self.words = scorer.words()
        self.peak: float | None = None

    def measure(self, case: CaseJob) -> Done:
        scorer, job, settings = self.scorer, self.job, self.job.settings
        scorer.set_order(case.order)
        scorer.set_prefix(case.prefix)
        pool = build_requests(job.workload, self.words, case.depth, scorer.info.max_length, case.seed)
        requests = request_set(pool, settings.request_set_size(case.depth), lambda r: sum(scorer.pair_token_counts(r)))
        tracker = scorer.memory_tracker()
        tracker.begin()
        cpu_before = background.sample()

        def on_warm(seconds: float) -> None:
            self.conn.send(Warm(case.index, seconds))

        measurement = run_timed(scorer, requests, case.batch_size, settings, on_warm=on_warm)
        busy = background.background_pct(cpu_before, background.sample())
        memory = tracker.end()
        fields = {
            "status": Status.OK,
            "status_reason": "",
            **measured_fields(scorer, requests, measurement, case.depth),
            **memory,
            "background_cpu_pct": busy,
            **self._work(requests, measurement),
        }
        agreement = None
        if job.agreement or labelled(pool):
            scores, quality = _untimed_scores(scorer, pool, case.batch_size, settings.quality_requests)
            fields.update(quality or {})
            agreement = scores[:AGREEMENT_REQUESTS] if job.agreement else None
        return Done(case.index, fields, measurement.latencies_ms, agreement)

    def _work(self, requests: list[Request], measurement: Any) -> dict[str, Any]:
        timed = len(measurement.latencies_ms)
        work = work_fields(self.scorer, requests, timed, measurement.measure_s, self.peak)
        if (work.get("fraction_of_peak") or 0.0) > 1.0:
            # Faster than the "peak" means the peak is wrong (measured while the machine was busy, say):
            # measure it again now; if the case still beats it, write no fraction rather than a false one.
            self.peak = _peak(self.job.load, refresh=True)
            work = work_fields(self.scorer, requests, timed, measurement.measure_s, self.peak)
            if (work.get("fraction_of_peak") or 0.0) > 1.0:
                work["fraction_of_peak"] = None
        return work


def worker_main(conn: Any, job: GroupJob) -> None:
    model = _prepare(job.model)
    load = job.load
    conn.send(Preparing(_loading(model, load)))
    # static int8 calibrates on workload requests, never on the ones scored for agreement or relevance
    reserved = max(AGREEMENT_REQUESTS, job.settings.quality_requests)
    scorer = _load(conn, model, load, calibration_recipe(job.workload, reserved))
    if scorer is None:
        return
    worker = GroupWorker(conn, job, scorer)
    conn.send(Loaded(asdict(scorer.info)))
    if load.backend != "fake":
        conn.send(Preparing(f"this machine's {load.dtype} matmul peak (measured once, then cached)"))
    worker.peak = _peak(load)
    rules = SkipRules(job.prune_ratio)
    for case in job.cases:
        conn.send(Started(case.index))
        reason = rules.why_skip(case)
        if reason is not None:
            conn.send(Done(case.index, {"status": Status.SKIPPED, "status_reason": reason}))
            continue
        try:
            done = worker.measure(case)
            rules.measured(case, done.fields.get("pairs_per_s") or 0.0)
        except Exception as exc:  # noqa: BLE001 - a failed case is a row; the sweep goes on
            if scorer.is_out_of_memory(exc):
                rules.ran_out_of_memory(case)
                done = Done(case.index, {"status": Status.OOM, "status_reason": describe_exception(exc)})
            else:
                done = Done(case.index, {"status": Status.ERROR, "status_reason": describe_exception(exc)})
            _free_device_memory(load.device)
        conn.send(done)
    scorer.close()
    conn.send(Finished())
