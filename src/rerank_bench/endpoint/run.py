"""`rerank-bench endpoint`: measure a served reranker under load, level by level, into the sweep's result files.

For each depth: the request list is built once (the sweep's workload, as text), the API is told or detected,
warm-up requests show whether the endpoint answers at all (a server that refuses every request is one clear
error, not a table of failures), an optional reference check compares its scores with the same model run in
process, then each level runs (closed loop at each concurrency, open loop at each rate, then the capacity
search), the server's queue drains, and the level's row and raw latencies are written before the next one.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rerank_bench.common.stats import min_samples_for
from rerank_bench.endpoint.apis import APIS, DETECTION_ROUTES, Api, ServerInfo, get_api, identify, public_url, split_url
from rerank_bench.endpoint.capacity import CapacityResult, Trial, search_capacity
from rerank_bench.endpoint.loadgen import LiveCounts, Outcome, RerankClient, arrival_times, closed_loop, open_loop
from rerank_bench.endpoint.summary import Level, LevelSummary, summarize_level
from rerank_bench.errors import EnvironmentProblem, UsageError
from rerank_bench.sweep.agreement import Agreement, compare_scores
from rerank_bench.workload.records import Request

DRAIN_TIMEOUT_S = 30.0
REFERENCE_REQUESTS = 5  # requests scored by both the server and the in-process reference
API_KEY_ENV = "RERANK_BENCH_API_KEY"  # read when --api-key-env is not given


@dataclass(frozen=True)
class EndpointRequest:
    url: str
    api: str | None = None  # None: detect from the server's info routes
    model: str | None = None  # the API's "model" field, where the server needs one
    depths: tuple[int, ...] = (50,)
    concurrency: tuple[int, ...] = ()
    rates: tuple[float, ...] = ()
    duration_s: float = 20.0
    warmup_requests: int = 3
    burstiness: float = 1.0
    slo_ms: float | None = None
    percentile: float = 95.0
    capacity: bool = False
    timeout_s: float = 60.0
    api_key_env: str | None = None
    tokenizer: str | None = None  # a model whose tokenizer builds the text (exact token counts)
    reference: str | None = None  # a model to score a few requests in process and compare with the server
    doc_tokens: str | None = None
    workload_file: Path | None = None
    sample_with_replacement: bool = False
    max_length: int | None = None
    seed: int = 0
    output: Path | None = None

    def check(self) -> None:
        """Usage errors, before anything is sent."""
        split_url(self.url)
        if self.api is not None:
            get_api(self.api)
        if self.capacity and self.slo_ms is None:
            raise UsageError("--capacity needs --slo-ms", "for example --slo-ms 200 --capacity")
        if self.slo_ms is not None and self.slo_ms <= 0:
            raise UsageError(f"--slo-ms {self.slo_ms:g} must be positive")
        if not 0 < self.percentile < 100:
            raise UsageError(f"--percentile {self.percentile:g} must be between 0 and 100", "for example 95 or 99")
        if self.duration_s <= 0 or self.timeout_s <= 0:
            raise UsageError("--duration and --timeout must be positive")
        if self.burstiness <= 0:
            raise UsageError(f"--burstiness {self.burstiness:g} must be positive", "1 is Poisson, below 1 burstier")
        if any(r <= 0 for r in self.rates):
            raise UsageError("--rate takes positive requests per second", "for example --rate 1,2,5")
        if any(c < 1 for c in self.concurrency) or any(d < 1 for d in self.depths):
            raise UsageError("--concurrency and --depth take positive integers")
        if self.workload_file is not None and self.doc_tokens is not None:
            raise UsageError("--workload and --doc-tokens both set lengths; pass one of them")
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            raise UsageError(
                f"--api-key-env {self.api_key_env}: that environment variable is not set",
                f"export {self.api_key_env}=... first",
            )

    def levels(self) -> list[Level]:
        """The fixed levels, in order: closed loop at each concurrency, then open loop at each rate. With no
        level asked for and no capacity search, one client (closed loop at concurrency 1)."""
        out = [Level("closed", concurrency=c) for c in self.concurrency]
        out += [Level("open", rate_rps=float(r), burstiness=self.burstiness) for r in self.rates]
        if not out and not self.capacity:
            out = [Level("closed", concurrency=1)]
        return out

    def headers(self) -> dict[str, str]:
        """The Authorization header from the named environment variable (never written anywhere)."""
        key = os.environ.get(self.api_key_env or API_KEY_ENV)
        return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass
class TextWorkload:
    """The text the requests are built from, and what is known of how the server's tokenizer sees it."""

    words: list[str]
    tokenizer: str  # "own" / "offline" (the model's tokenizer: exact counts) or "estimated"
    max_length: int
    scorer: Any = None  # the in-process model (torch backend) when --tokenizer or --reference loaded one

    def pair_tokens(self, requests: Sequence[Request]) -> list[int] | None:
        if self.scorer is None:
            return None
        return [n for r in requests for n in self.scorer.pair_token_counts(r)]

    def close(self) -> None:
        if self.scorer is not None:
            self.scorer.close()


@dataclass
class DepthResult:
    depth: int
    levels: list[LevelSummary] = field(default_factory=list)
    capacity: CapacityResult | None = None
    capacity_levels: list[LevelSummary] = field(default_factory=list)
    agreement: Agreement | None = None


@dataclass
class EndpointRun:
    url: str  # public form
    api: str
    server: ServerInfo
    tokenizer: str
    output: Path
    run_id: str
    depths: list[DepthResult] = field(default_factory=list)

    def slo_met(self, slo_ms: float, q: float) -> bool:
        """Whether any level met the SLO (the command fails when --slo-ms is given and none did)."""
        return any(s.meets(slo_ms, q)[0] for d in self.depths for s in [*d.levels, *d.capacity_levels] if s.completed)


class Progress(Protocol):
    def note(self, text: str) -> None: ...
    def level_started(self, depth: int, level: Level, duration_s: float, live: LiveCounts) -> None: ...
    def level_done(self, summary: LevelSummary) -> None: ...


class QuietProgress:
    def note(self, text: str) -> None:
        pass

    def level_started(self, depth: int, level: Level, duration_s: float, live: LiveCounts) -> None:
        pass

    def level_done(self, summary: LevelSummary) -> None:
        pass


def text_workload(request: EndpointRequest, threads: int = 1) -> TextWorkload:
    """Words from the model's own tokenizer when --tokenizer or --reference names one (each word one token),
    else common English words with token counts estimated (one word, one token, as in BERT's vocabulary)."""
    spec = request.tokenizer or request.reference
    if spec is None:
        from rerank_bench.catalog import common_words

        return TextWorkload(common_words(), "estimated", request.max_length or 512)
    from rerank_bench.backends.torch_st import TorchBackend
    from rerank_bench.models.resolve import resolve_model

    resolved = resolve_model(spec, "auto", allow_random_head=True)
    scorer = TorchBackend().load(resolved, "cpu", "fp32", threads, request.max_length)
    return TextWorkload(scorer.words(), scorer.info.tokenizer, scorer.info.max_length, scorer)


def build_depth_requests(request: EndpointRequest, text: TextWorkload, depth: int) -> tuple[list[Request], str]:
    """The sweep's requests for this depth, and the workload label for the rows."""
    from dataclasses import asdict

    from rerank_bench.workload.build import build_requests
    from rerank_bench.workload.requests import load_workload_file, parse_doc_tokens, requests_from_file, workload_digest

    if request.workload_file is not None:
        path = request.workload_file
        file_requests = load_workload_file(path)
        out = requests_from_file(file_requests, depth, request.seed, request.sample_with_replacement, str(path))
        return out, f"file:{path.name}@{workload_digest(path)}"
    spec = parse_doc_tokens(request.doc_tokens)
    payload = {"kind": "synthetic", "doc_tokens": asdict(spec)}
    return build_requests(payload, text.words, depth, text.max_length, request.seed), spec.label()


def first_failure(outcomes: list[Outcome], url: str, depth: int) -> Exception:
    """Every warm-up request failed: one clear error for the commonest kind."""
    kinds = [o.kind for o in outcomes]
    kind = max(set(kinds), key=kinds.count)
    detail = next(o.detail for o in outcomes if o.kind == kind)
    if kind == "connection":
        return EnvironmentProblem(f"cannot reach {url}: {detail}", "is the server running on that host and port?")
    if kind == "timeout":
        return EnvironmentProblem(f"{url} did not answer within the timeout ({detail})", "raise --timeout-s")
    if kind in ("http_401", "http_403"):
        return UsageError(
            f"{url} refused the request ({kind[5:]}): {detail}", f"put the API key in ${API_KEY_ENV} or --api-key-env"
        )
    if kind in ("http_404", "http_405"):
        return UsageError(
            f"{url} has no rerank route ({kind[5:]}): {detail}", "check --api, or give the route in the URL"
        )
    if kind in ("http_413", "http_422", "http_400"):
        return UsageError(
            f"{url} refused a request of {depth} documents ({kind[5:]}): {detail}",
            "lower --depth, or raise the server's limit (TEI: --max-client-batch-size)",
        )
    if kind == "malformed":
        return UsageError(f"{url} did not answer as a rerank API: {detail}", "check --api")
    return EnvironmentProblem(f"{url} failed every warm-up request ({kind}): {detail}")


async def _identify(client: RerankClient, base: str, api: Api | None) -> ServerInfo:
    routes = api.info_routes if api is not None else DETECTION_ROUTES
    answers = {route: await client.get_json(base + route) for route in routes}
    return identify({route: body for route, body in answers.items() if body is not None})


async def _queue_length(client: RerankClient, base: str, api: Api) -> int | None:
    """Requests the server still holds, from its own report where it gives one: infinity's /models stats,
    TEI's te_queue_size metric. None where it does not say."""
    if api.name == "infinity":
        body = await client.get_json(base + "/models")
        try:
            stats = body["data"][0]["stats"]
            return int(stats.get("queue_absolute", 0)) + int(stats.get("results_pending", 0))
        except (TypeError, KeyError, IndexError, ValueError):
            return None
    return None


async def drain(client: RerankClient, base: str, api: Api) -> None:
    """After a level every request of ours has its reply (or its timeout); wait until the server's own queue
    is empty too, where it reports one, so the next level does not start behind the last one's backlog."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        pending = await _queue_length(client, base, api)
        if not pending:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.2)


def capacity_duration(duration_s: float, rate_rps: float, q: float) -> float:
    """A capacity level runs long enough to expect 1.5x the requests its percentile needs."""
    return max(duration_s, 1.5 * min_samples_for(q) / rate_rps)


def run_endpoint(
    request: EndpointRequest, machine: Any, progress: Progress | None = None, threads: int | None = None
) -> EndpointRun:
    """Measure the endpoint as asked; rows are written as each level ends, so an error or Ctrl-C keeps them."""
    from rerank_bench.results.provenance import default_output, new_run_id, run_metadata
    from rerank_bench.results.store import ResultWriter, check_output

    request.check()
    progress = progress or QuietProgress()
    output = request.output or default_output(machine, suffix="-endpoint")
    check_output(output)
    text = text_workload(request, threads or max(1, (os.cpu_count() or 2) // 2))
    run = EndpointRun(
        url=public_url(request.url),
        api=request.api or "",
        server=ServerInfo(),
        tokenizer=text.tokenizer,
        output=output,
        run_id=new_run_id(),
    )
    meta = run_metadata(machine, run.run_id)
    try:
        with ResultWriter(output) as writer:
            asyncio.run(_measure(request, text, run, meta, writer, progress))
    finally:
        text.close()
    return run


async def _measure(
    request: EndpointRequest,
    text: TextWorkload,
    run: EndpointRun,
    meta: dict[str, Any],
    writer: Any,
    progress: Progress,
) -> None:
    from rerank_bench.endpoint.rows import level_row

    base, path = split_url(request.url)
    async with RerankClient("", APIS["tei"], request.model, request.headers(), request.timeout_s) as client:
        api = get_api(request.api) if request.api else None
        info = await _identify(client, base, api)
        if api is None:
            if info.api is None:
                raise UsageError(
                    f"cannot tell which API {run.url} speaks from its info routes",
                    "pass --api tei|infinity|vllm|cohere",
                )
            api = APIS[info.api]
            progress.note(f"{run.url} speaks the {api.name} API ({info.identity})")
        run.api, run.server = api.name, info
        client.api = api
        client.url = base + (path or api.path)
        client.model = request.model or (info.model_id if api.style == "cohere" and api.name != "infinity" else None)
        limit = info.max_client_batch_size
        if limit is not None and max(request.depths) > limit:
            raise UsageError(
                f"{run.url} ({info.identity}) accepts at most {limit} documents per request, --depth asks "
                f"{max(request.depths)}",
                "lower --depth, or restart TEI with a larger --max-client-batch-size",
            )
        for depth in request.depths:
            result = DepthResult(depth)
            run.depths.append(result)
            requests, workload_label = build_depth_requests(request, text, depth)
            warm = [
                await _timed(client, requests[i % len(requests)], i) for i in range(max(1, request.warmup_requests))
            ]
            if not any(o.kind == "ok" for o in warm):
                raise first_failure(warm, client.url, depth)
            unloaded_ms = statistics.median(o.latency_ms for o in warm if o.kind == "ok")
            if request.reference is not None and text.scorer is not None:
                result.agreement = await _reference_check(client, text, requests, depth, progress)
            tokens = text.pair_tokens(requests)
            context = {
                "request": request,
                "run": run,
                "meta": meta,
                "workload": workload_label,
                "tokens": tokens,
                "agreement": result.agreement,
            }

            async def run_level(
                level: Level,
                duration_s: float,
                requests: list[Request] = requests,
                depth: int = depth,
                context: dict[str, Any] = context,
            ) -> LevelSummary:
                await _warm_level(client, requests, level, request.warmup_requests)
                live = LiveCounts()
                progress.level_started(depth, level, duration_s, live)
                if level.mode == "closed":
                    outcomes = await closed_loop(client.rerank, requests, level.concurrency or 1, duration_s, live)
                else:
                    seed = f"{request.seed}:{depth}:{level.rate_rps}"
                    times = arrival_times(level.rate_rps or 1.0, duration_s, seed, level.burstiness)
                    outcomes = await open_loop(client.rerank, requests, times, live)
                summary = summarize_level(outcomes, level, depth, duration_s, request.slo_ms)
                row = level_row(summary, context)
                writer.write_row({**row, "samples_file": writer.samples_path.name})
                writer.write_samples(run.run_id, row["case_id"], list(summary.latencies_ms))
                progress.level_done(summary)
                await drain(client, base, api)
                return summary

            for level in request.levels():
                result.levels.append(await run_level(level, request.duration_s))
            if request.capacity and request.slo_ms is not None:
                result.capacity = await _capacity(request, run_level, result, unloaded_ms)


async def _timed(client: RerankClient, req: Request, index: int) -> Outcome:
    start = time.perf_counter()
    reply = await client.rerank(req)
    done = time.perf_counter() - start
    return Outcome(index, 0.0, 0.0, done, reply.kind, reply.detail)


async def _warm_level(client: RerankClient, requests: list[Request], level: Level, count: int) -> None:
    """Untimed requests before a level, at its concurrency (one at a time for open loop)."""
    queue = list(requests[-count:]) if count > 0 else []

    async def worker() -> None:
        while queue:
            await client.rerank(queue.pop())

    await asyncio.gather(*(worker() for _ in range(min(len(queue), level.concurrency or 1))))


async def _reference_check(
    client: RerankClient, text: TextWorkload, requests: list[Request], depth: int, progress: Progress
) -> Agreement | None:
    """Scores of a few requests from the server against the same model in process (Spearman, top-10 overlap):
    a server that truncates elsewhere or serves another model shows here."""
    chosen = requests[:REFERENCE_REQUESTS]
    served: list[list[float]] = []
    for req in chosen:
        reply = await client.rerank(req)
        if reply.kind != "ok" or reply.scores is None:
            progress.note(f"reference check skipped: the server answered {reply.kind} ({reply.detail})")
            return None
        served.append(reply.scores)
    local = [text.scorer.score(req, min(depth, 32)) for req in chosen]
    agreement = compare_scores(local, served)
    progress.note(
        f"reference check at depth {depth}: Spearman {agreement.spearman_mean:.4f} (worst "
        f"{agreement.spearman_worst:.4f}), top-10 overlap {agreement.top10_overlap:.2f} over {len(chosen)} requests"
        if agreement.spearman_mean is not None
        else "reference check: scores are constant, Spearman undefined"
    )
    return agreement


async def _capacity(
    request: EndpointRequest, run_level: Any, result: DepthResult, unloaded_ms: float
) -> CapacityResult:
    """The open-loop search, starting at half the rate one request at a time would sustain."""
    q = request.percentile
    slo = request.slo_ms or math.inf
    # search_capacity is synchronous; run each level on this loop by driving it from a worker thread.
    loop = asyncio.get_running_loop()

    def try_rate(rate: float) -> Trial:
        level = Level("open", rate_rps=rate, burstiness=request.burstiness)
        future = asyncio.run_coroutine_threadsafe(
            run_level(level, capacity_duration(request.duration_s, rate, q)), loop
        )
        summary = future.result()
        result.capacity_levels.append(summary)
        met, why = summary.meets(slo, q)
        return Trial(rate, met, why)

    start = max(0.05, 0.5 * 1000.0 / max(unloaded_ms, 1e-3))
    return await asyncio.to_thread(search_capacity, try_rate, start)
