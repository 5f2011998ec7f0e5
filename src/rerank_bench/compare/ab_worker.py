"""The worker side of `ab`: load one case, warm up, then time one query whenever the parent says so.

`ab` has the baseline, a second independent copy of the baseline (the A/A check) and the candidate take
turns query by query, on the same request each turn. This machine's speed drifts by several percent over
seconds (other tenants, clocks); runs of a few seconds one after the other carry that drift into the
comparison, turns of a tenth of a second do not. One worker may hold several jobs (arms that share an
environment), or each arm has its own worker (arms from different environments).

Protocol, JSON lines: parent -> {"jobs": [...]}; worker -> {"ready": true, "load": [...]}; then parent ->
{"query": i, "job": k} and worker -> {"ms": latency} as often as the parent likes; parent -> {"stop": true};
worker -> {"done": true, "memory": {...}}. Any failure: worker -> {"error": "one line"} and exits.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import IO, Any

from rerank_bench.backends.base import describe_exception


def _send(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(inp: IO[str], out: IO[str]) -> None:
    try:
        jobs = json.loads(inp.readline())["jobs"]
        from rerank_bench.backends import get_backend
        from rerank_bench.backends.quantize import calibration_recipe
        from rerank_bench.errors import RerankBenchError
        from rerank_bench.models.resolve import ResolvedModel
        from rerank_bench.sweep.child import AGREEMENT_REQUESTS, prepare_environment
        from rerank_bench.sweep.timing import MeasureSettings, warmup_requests
        from rerank_bench.workload.build import build_requests

        models = [ResolvedModel.from_payload(job["model"]) for job in jobs]
        prepare_environment(models)
        loaded = []
        reserved = max(AGREEMENT_REQUESTS, MeasureSettings().quality_requests)  # as the sweep's workers do
        for job, model in zip(jobs, models, strict=True):
            calibration = calibration_recipe(job["workload"], reserved)
            scorer = get_backend(job["backend"]).load(
                model,
                job["device"],
                job["dtype"],
                job["threads"],
                job["max_length"],
                calibration,
                attention=job.get("attention", ""),
            )
            scorer.set_order(job.get("order", "given"))
            scorer.set_prefix(job.get("prefix", ""))
            requests = build_requests(
                job["workload"], scorer.words(), job["depth"], scorer.info.max_length, job["seed"]
            )
            loaded.append((scorer, requests, job["batch_size"]))
        for scorer, requests, batch in loaded:
            for request in warmup_requests(requests, 2):
                scorer.score(request, batch)
        tracker = loaded[0][0].memory_tracker()
        tracker.begin()
        _send(out, {"ready": True, "load": [asdict(scorer.info) for scorer, _, _ in loaded]})
        for line in inp:
            message = json.loads(line)
            if message.get("stop"):
                break
            scorer, requests, batch = loaded[int(message.get("job", 0))]
            request = requests[int(message["query"]) % len(requests)]
            start = time.perf_counter()
            scorer.score(request, batch)
            _send(out, {"ms": (time.perf_counter() - start) * 1000.0})
        _send(out, {"done": True, "memory": tracker.end()})
    except RerankBenchError as exc:
        _send(out, {"error": exc.one_line()})
    except Exception as exc:  # noqa: BLE001 - the parent turns this into a one-line error
        _send(out, {"error": describe_exception(exc)})
