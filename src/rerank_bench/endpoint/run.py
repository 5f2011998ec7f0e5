"""`rerank-bench endpoint`: measure a served reranker under load, level by level, into the sweep's result files.

For each depth: the request list is built once (256 distinct requests of the sweep's workload, as text), the
API is told or detected, warm-up requests show whether the endpoint answers at all (a server that refuses every
request is one clear error, not a table of failures), an optional reference check compares its scores with the
same model run in process, then each level runs (closed loop at each concurrency, open loop at each rate, then
the capacity search): connections are opened before it, the server's metrics scraped before and after it, its
row and raw latencies written as it ends, and the server's queue drained before the next one.

An open-loop level is a fixed number of scheduled arrivals (`--requests`), not a duration: an untimed warm-up
at the level's own rate, the window, a cool-down (endpoint/window.py). Every rate scales the same random gaps
(common random numbers), so two levels differ only by their rate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from rerank_bench.common.capacity_search import (
    CONFIRM_FACTOR,
    ROLE_CEILING,
    ROLE_CONFIRMATION,
    ROLE_LIGHT,
    ROLE_ONE_CLIENT,
    ROLE_SEARCH,
    CapacityResult,
    Trial,
    light_level,
    search_capacity,
)
from rerank_bench.common.slo import (
    LEVEL_WARMUP_S,
    MAX_LEVEL_S,
    WARMUP_REQUESTS,
    Verdict,
    first_window,
    level_confidence,
    level_looks,
    level_warmup,
    min_window,
)
from rerank_bench.common.vocab import ErrorKind
from rerank_bench.endpoint import server_metrics
from rerank_bench.endpoint.apis import APIS, DETECTION_ROUTES, Api, ServerInfo, get_api, identify, public_url, split_url
from rerank_bench.endpoint.loadgen import LiveCounts, Outcome, RerankClient, closed_loop, open_loop, schedule, unit_gaps

# rows at import, not after a level: a level at the file-descriptor limit must not need a file to import one
from rerank_bench.endpoint.rows import capacity_row, level_row
from rerank_bench.endpoint.settle import SETTLE_WAIT_S, Settle, settle
from rerank_bench.endpoint.summary import Level, LevelState, LevelSummary, Window, summarize_level
from rerank_bench.endpoint.window import WindowJudge, WindowPlan
from rerank_bench.errors import EXIT_TERMINATED, EnvironmentProblem, Interrupted, UsageError
from rerank_bench.probe import MachineReport
from rerank_bench.sweep.agreement import Agreement, compare_scores
from rerank_bench.workload.records import Request

DRAIN_TIMEOUT_S = 30.0
REFERENCE_REQUESTS = 5  # requests scored by both the server and the in-process reference
API_KEY_ENV = "RERANK_BENCH_API_KEY"  # read when --api-key-env is not given
DISTINCT_REQUESTS = 256  # request bodies per depth: a response or prefix cache must not flatter a server
MAX_PRE_OPEN = 256  # connections opened before a level, at most
FD_RESERVE = 32  # file descriptors kept free of connections: the result files, the event loop, a scrape


def file_room() -> int | None:
    """How many connections this process can open beside what it has open, after raising its soft limit on
    open files to the hard one (as wrk and locust do: the soft default of 1,024 would cut --concurrency). None
    where the platform does not say (no resource module, or the limit is unlimited)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        if soft == resource.RLIM_INFINITY:
            return None
        in_use = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
    except (ImportError, OSError, ValueError):
        return None
    return max(0, soft - in_use - FD_RESERVE)


CEILING_CONCURRENCY = 16  # the capacity search's closed loop that finds the server's throughput ceiling


@dataclass(frozen=True)
class EndpointRequest:
    url: str
    api: str | None = None  # None: detect from the server's info routes
    model: str | None = None  # the API's "model" field, where the server needs one
    depths: tuple[int, ...] = (50,)
    concurrency: tuple[int, ...] = ()
    rates: tuple[float, ...] = ()
    duration_s: float = 20.0  # closed-loop levels
    warmup_requests: int = WARMUP_REQUESTS
    requests: int | None = None  # open-loop levels: arrivals in the first window (None: the default for q)
    warmup_s: float = LEVEL_WARMUP_S  # open-loop levels: untimed arrivals at the level's rate over this long first
    max_level_s: float = MAX_LEVEL_S  # an open-loop level's time limit, warm-up included
    ceiling_concurrency: int = CEILING_CONCURRENCY
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
    keepalive_s: float = 4.0  # below uvicorn's 5 s (infinity, vLLM): see loadgen.KEEPALIVE_S
    ready_wait_s: float = 60.0  # before a level: how long a server that refuses connections is waited for
    settle_wait_s: float = SETTLE_WAIT_S  # before a level: how long a server slower than at the start is waited for
    ca_bundle: Path | None = None  # https: certificates to trust instead of the system's
    metrics: bool = True  # scrape the server's /metrics before and after each level
    max_length: int | None = None
    seed: int = 0
    output: Path | None = None
    template: str | None = None  # a decoder reranker's prompt template (models/prompts.TEMPLATES) the client adds
    instruction: str | None = None  # with template: its instruction (None: the model card's)

    def _check_connection(self) -> None:
        """How the client reaches the server: credentials, certificates, waiting for it."""
        env = self.api_key_env or API_KEY_ENV
        if urlsplit(self.url).username is not None and os.environ.get(env):
            # aiohttp sends the URL's user:password as Basic auth and refuses a second Authorization header
            raise UsageError(
                f"{public_url(self.url)}: the URL carries a user name and password and {env} an API key; a request "
                "carries one Authorization",
                f"drop user:password@ from the URL to send the key, or unset {env} to send the password",
            )
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise UsageError(f"--ca-bundle {self.ca_bundle}: no such file", "give a PEM file of CA certificates")
        if self.ready_wait_s < 0:
            raise UsageError(f"--ready-wait-s {self.ready_wait_s:g} must be at least 0")
        if self.settle_wait_s < 0:
            raise UsageError(f"--settle-wait-s {self.settle_wait_s:g} must be at least 0")

    def _check_template(self) -> None:
        from rerank_bench.models.prompts import TEMPLATES

        if self.template is not None and self.template not in TEMPLATES:
            raise UsageError(f"--template {self.template!r} is not one of {', '.join(TEMPLATES)}")
        if self.instruction is not None and self.template is None:
            raise UsageError("--instruction goes into a template: add --template (e.g. --template qwen3)")
        if self.template is not None and self.workload_file is not None:
            raise UsageError("--template wraps the synthetic workload; a --workload file's texts are sent as written")

    def check(self) -> None:
        """Usage errors, before anything is sent."""
        split_url(self.url)
        self._check_connection()
        if self.api is not None:
            get_api(self.api)
        self._check_template()
        if self.capacity and self.slo_ms is None:
            raise UsageError("--capacity needs --slo-ms", "for example --slo-ms 200 --capacity")
        if self.slo_ms is not None and self.slo_ms <= 0:
            raise UsageError(f"--slo-ms {self.slo_ms:g} must be positive")
        if not 0 < self.percentile < 100:
            raise UsageError(f"--percentile {self.percentile:g} must be between 0 and 100", "for example 95 or 99")
        if self.duration_s <= 0 or self.timeout_s <= 0 or self.max_level_s <= 0 or self.warmup_s < 0:
            raise UsageError("--duration, --timeout and --max-level-s must be positive, --warmup-s at least 0")
        if self.requests is not None and self.requests < 1:
            raise UsageError("--requests must be at least 1")
        floor = self.min_requests()
        if self.slo_ms is not None and self.requests is not None and self.requests < floor:
            raise UsageError(
                f"--requests {self.requests} is too few for p{self.percentile:g} <= --slo-ms to pass at "
                f"{100 * self.confidence():.3g}% confidence even with no request over it",
                f"at least {floor}: the fewest n with (q/100)^n <= 1 - confidence",
            )
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

    def confidence(self) -> float:
        """Each look's confidence: 95% shared among the looks an open-loop window may take (Bonferroni)."""
        return level_confidence()

    def min_requests(self) -> int:
        return min_window(self.percentile, self.confidence())

    def first_window(self) -> int:
        return first_window(self.percentile, self.requests)

    def window_plan(self, rate_rps: float, factor: int = 1) -> WindowPlan:
        """The open-loop level at `rate_rps`: warm-up, looks (one without an SLO) and time limit."""
        first = self.first_window() * factor
        looks = level_looks(first) if self.slo_ms is not None else (first,)
        warmup = level_warmup(rate_rps, self.warmup_requests, self.warmup_s)
        # a level `factor` times as long (the capacity's confirmation) gets as much more time
        return WindowPlan(warmup, looks, self.max_level_s * factor, self.slo_ms, self.percentile, 0.95)

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
    capacity_levels: list[LevelSummary] = field(default_factory=list)  # closed x1, the ceiling, light, the search
    confirmation: LevelSummary | None = None
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
    in_progress: str | None = None  # the level being measured ("depth 50 closed x2"), None between levels

    def gate_failures(self) -> list[str]:
        """Why --slo-ms fails the command: every open-loop rate asked for must pass, and a capacity search's
        confirmation; with neither, every closed-loop level. Empty when it passes."""
        out = []
        for depth in self.depths:
            gated = [s for s in depth.levels if s.level.mode == "open"] or depth.levels
            for summary in gated:
                met, why = summary.meets()
                if not met:
                    out.append(f"depth {depth.depth} {summary.level.label()}: {why}")
            if depth.capacity is not None:
                if depth.capacity.capacity_rps is None:
                    out.append(f"depth {depth.depth}: {depth.capacity.note()}")
                elif not depth.capacity.confirmed:
                    out.append(f"depth {depth.depth}: capacity {depth.capacity.capacity_rps:.3g}/s not confirmed")
        return out


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
    requests = build_requests(payload, text.words, depth, text.max_length, request.seed, count=DISTINCT_REQUESTS)
    if request.template is None:
        return requests, spec.label()
    return templated(requests, request.template, request.instruction), f"{spec.label()}+template:{request.template}"


def templated(requests: list[Request], name: str, instruction: str | None) -> list[Request]:
    """--template: each request's query and documents wrapped as a served decoder reranker needs them."""
    from rerank_bench.models.prompts import TEMPLATES, served_texts

    out = []
    for r in requests:
        texts = [served_texts(TEMPLATES[name], instruction, r.query, d) for d in r.documents]
        query = texts[0][0] if texts else r.query
        out.append(dataclasses.replace(r, query=query, documents=tuple(doc for _, doc in texts)))
    return out


def first_failure(outcomes: list[Outcome], url: str, depth: int) -> Exception:
    """Every warm-up request failed: one clear error for the commonest kind."""
    kinds = [o.kind for o in outcomes]
    kind = max(set(kinds), key=kinds.count)
    detail = next(o.detail for o in outcomes if o.kind == kind)
    if kind == ErrorKind.CONNECTION:
        return EnvironmentProblem(f"cannot reach {url}: {detail}", "is the server running on that host and port?")
    if kind == ErrorKind.TIMEOUT:
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
    if kind == ErrorKind.MALFORMED:
        return UsageError(f"{url} did not answer as a rerank API: {detail}", "check --api")
    return EnvironmentProblem(f"{url} failed every warm-up request ({kind}): {detail}")


async def _identify(client: RerankClient, base: str, api: Api | None) -> ServerInfo:
    routes = api.info_routes if api is not None else DETECTION_ROUTES
    answers = {route: await client.get_json(base + route) for route in routes}
    return identify({route: body for route, body in answers.items() if body is not None})


async def _queue_length(client: RerankClient, base: str, api: Api, metrics: bool = True) -> int | None:
    """Requests the server still holds, from its own report where it gives one: infinity's /models stats, TEI's
    `te_queue_size` and vLLM's waiting and running gauges on /metrics (server_metrics.queued_requests). None where
    it does not say."""
    if api.name == "infinity":
        body = await client.get_json(base + "/models")
        if body is None:
            return None
        try:
            stats = body["data"][0]["stats"]
            return int(stats.get("queue_absolute", 0)) + int(stats.get("results_pending", 0))
        except (TypeError, KeyError, IndexError, ValueError):
            return None
    if metrics and api.name in ("tei", "vllm"):
        return server_metrics.queued_requests(server_metrics.parse(await client.get_text(base + "/metrics")))
    return None


async def drain(client: RerankClient, base: str, api: Api, metrics: bool = True) -> None:
    """After a level every request of ours has its reply (or was abandoned at the stop); wait until the server's
    own queue is empty too, where it reports one, so the next level does not start behind the last one's backlog.
    (What the queue does not show, a server still computing abandoned work, the settle probes see.)"""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        pending = await _queue_length(client, base, api, metrics)
        if not pending:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.2)


def run_endpoint(
    request: EndpointRequest, machine: MachineReport, progress: Progress | None = None, threads: int | None = None
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
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (cli/common.py turns it into Terminated)
        cut = f"; {run.in_progress} was cut short and is not written" if run.in_progress else ""
        error = Interrupted(f"every finished level is in {output}{cut}")
        if getattr(stop, "signal_name", "") == "SIGTERM":
            error.exit_code, error.label = EXIT_TERMINATED, "terminated"
        raise error from None
    finally:
        text.close()
    return run


async def _connect(
    request: EndpointRequest, client: RerankClient, run: EndpointRun, progress: Progress
) -> tuple[RerankClient, Api]:
    """Tell or detect the API (over the session-only client), check the depths against the server's limit, and
    return a client for its rerank route."""
    base, path = split_url(request.url)
    api = get_api(request.api) if request.api else None
    info = await _identify(client, base, api)
    if client.tls_error is not None:
        raise EnvironmentProblem(
            f"{run.url}: its TLS certificate is not trusted ({client.tls_error})",
            "pass --ca-bundle FILE with the certificate of the authority that signed it (verification is never "
            "turned off)",
        )
    if api is None:
        if info.api is None:
            raise UsageError(
                f"cannot tell which API {run.url} speaks from its info routes", "pass --api tei|infinity|vllm|cohere"
            )
        api = APIS[info.api]
        progress.note(f"{run.url} speaks the {api.name} API ({info.identity})")
    run.api, run.server = api.name, info
    model = request.model or (info.model_id if api.style == "cohere" and api.name != "infinity" else None)
    limit = info.max_client_batch_size
    if limit is not None and max(request.depths) > limit:
        raise UsageError(
            f"{run.url} ({info.identity}) accepts at most {limit} documents per request, --depth asks "
            f"{max(request.depths)}",
            "lower --depth, or restart TEI with a larger --max-client-batch-size",
        )
    return client.routed(base + (path or api.path), api, model), api


@dataclass
class LevelRunner:
    """Runs one level at a time against one depth's requests and writes its row as it ends."""

    request: EndpointRequest
    client: RerankClient
    base: str
    api: Api
    requests: list[Request]
    depth: int
    context: dict[str, Any]
    writer: Any
    progress: Progress
    run_id: str
    unloaded_ms: float
    probes_sent: int = 0  # settle probes so far: each takes the next request body, so no cache answers them

    async def ready(self, level: Level) -> None:
        """Before a level: a server that stopped answering (it died, it is restarting) is waited for, up to
        --ready-wait-s, so that the level measures the server rather than a closed port; if it does not come
        back, the run stops, every finished level kept. Any other answer (an error status included) is the
        level's to measure."""
        reply = await self.client.rerank(self.requests[0])
        if reply.kind not in (ErrorKind.CONNECTION, ErrorKind.TIMEOUT):
            return
        label = f"depth {self.depth} {level.label()}"
        self.progress.note(
            f"{self.context['run'].url} stopped answering ({reply.kind}) before {label}: waiting up to "
            f"{self.request.ready_wait_s:g} s for it"
        )
        deadline = time.monotonic() + self.request.ready_wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            reply = await self.client.rerank(self.requests[0])
            if reply.kind not in (ErrorKind.CONNECTION, ErrorKind.TIMEOUT):
                self.progress.note(f"{self.context['run'].url} answers again; measuring {label}")
                return
        raise EnvironmentProblem(
            f"{self.context['run'].url} did not answer again within {self.request.ready_wait_s:g} s ({reply.kind}: "
            f"{reply.detail}); every finished level is in {self.context['run'].output}, {label} was not run",
            "restart the server, then run the levels left (or raise --ready-wait-s)",
        )

    async def settle(self, level: Level) -> Settle:
        """Before a level, after ready: one request at a time until the server answers near the depth's unloaded
        time (endpoint/settle.py), up to --settle-wait-s; said on stderr when it did not."""

        async def probe() -> float | None:
            body = self.requests[self.probes_sent % len(self.requests)]
            self.probes_sent += 1
            start = time.perf_counter()
            reply = await self.client.rerank(body)
            return 1000.0 * (time.perf_counter() - start) if reply.kind == ErrorKind.OK else None

        found = await settle(probe, self.unloaded_ms, self.request.settle_wait_s)
        if not found.settled:
            self.progress.note(found.note(f"depth {self.depth} {level.label()}"))
        return found

    async def closed(self, concurrency: int, duration_s: float | None = None, role: str = "") -> LevelSummary:
        level = Level("closed", concurrency=concurrency)
        await self.ready(level)
        idle = await self.settle(level)
        duration = duration_s or self.request.duration_s
        room = file_room()
        if room is not None and concurrency > room:
            self.progress.note(
                f"closed x{concurrency} needs {concurrency} connections and this process can open about {room} more "
                "files: the requests beyond that fail as client errors and the level is invalid (raise ulimit -n)"
            )
        await self.client.pre_open(self.base, min(concurrency, MAX_PRE_OPEN, room if room is not None else concurrency))
        await _warm_level(self.client, self.requests, level, self.request.warmup_requests)
        before = await self._scrape()
        mark = _cpu_mark()
        live = LiveCounts()
        self.progress.level_started(self.depth, level, duration, live)
        self.context["run"].in_progress = f"depth {self.depth} {level.label()}"
        connects = len(self.client.connect_ms)
        outcomes = await closed_loop(self.client.rerank, self.requests, concurrency, duration, live)
        elapsed = max((o.done_s for o in outcomes), default=duration)
        window = Window(0, len(outcomes), elapsed)
        connected = self.client.connect_ms[connects:]
        return await self._finish(outcomes, level, window, before, connected, idle, role=role, mark=mark)

    async def open(
        self, rate_rps: float, factor: int = 1, fixed_window: int | None = None, role: str = ""
    ) -> LevelSummary:
        """One open-loop level; `fixed_window`: a window of that many requests, not judged as it runs (the
        capacity search's light level: its p50 is what it is for); `role`: what it is for, said in its row."""
        request = self.request
        level = Level("open", rate_rps=rate_rps, burstiness=request.burstiness)
        await self.ready(level)
        idle = await self.settle(level)
        plan = request.window_plan(rate_rps, factor)
        if fixed_window is not None:
            plan = dataclasses.replace(plan, looks=(fixed_window,), slo_ms=None)
        # The same unit gaps at every rate (seeded by depth and shape, not by rate): common random numbers.
        gaps = unit_gaps(
            plan.arrivals_needed(), f"{request.seed}:{self.depth}:{request.burstiness}", request.burstiness
        )
        blocks = (plan.warmup, plan.looks[0], *(b - a for a, b in zip(plan.looks, plan.looks[1:], strict=False)))
        arrivals = schedule(gaps, rate_rps, blocks)
        judge = WindowJudge(plan, arrivals)
        # as many connections as the level can have out at once near its start: rate x unloaded latency, with room
        wanted = min(MAX_PRE_OPEN, math.ceil(3 * rate_rps * self.unloaded_ms / 1000) + 2)
        room = file_room()
        await self.client.pre_open(self.base, min(wanted, room) if room is not None else wanted)
        before = await self._scrape()
        mark = _cpu_mark()
        live = LiveCounts()
        self.progress.level_started(self.depth, level, arrivals[plan.warmup + plan.looks[0] - 1], live)
        self.context["run"].in_progress = f"depth {self.depth} {level.label()}"
        connects_before = len(self.client.connect_ms)
        started = time.perf_counter()
        outcomes = await open_loop(self.client.rerank, self.requests, arrivals, live, stop=judge)
        window = judge.window()
        # connections opened after the warm-up's last arrival: the window's (pre-opening should leave none)
        window_start = started + (arrivals[plan.warmup - 1] if plan.warmup else 0.0)
        opened = [
            ms
            for at, ms in zip(
                self.client.connect_at[connects_before:], self.client.connect_ms[connects_before:], strict=False
            )
            if at >= window_start
        ]
        return await self._finish(outcomes, level, window, before, opened, idle, plan, role, mark)

    async def _scrape(self) -> server_metrics.Scrape | None:
        if not self.request.metrics:
            return None
        text = await self.client.get_text(self.base + "/metrics")
        return server_metrics.parse(text, time.perf_counter())

    async def _finish(
        self,
        outcomes: list[Outcome],
        level: Level,
        window: Window,
        before: server_metrics.Scrape | None,
        connect_ms: list[float],
        idle: Settle,
        plan: WindowPlan | None = None,
        role: str = "",
        mark: tuple[float, float] | None = None,
    ) -> LevelSummary:
        after = await self._scrape()
        generator = _cpu_cores_since(mark) if mark is not None else None
        route = split_url(self.client.url)[1] or self.api.path
        confidence = plan.sequential.look_confidence if plan is not None else self.request.confidence()
        summary = summarize_level(
            outcomes,
            level,
            self.depth,
            window,
            self.request.slo_ms,
            self.request.percentile,
            confidence,
            (len(connect_ms), sum(connect_ms) / len(connect_ms) if connect_ms else None),
            server_metrics.level_figures(before, after, route),
        )
        summary = dataclasses.replace(summary, settle=idle, role=role, loadgen_cpu_cores=generator)
        row = level_row(summary, {**self.context, "warmup": plan.warmup if plan else self.request.warmup_requests})
        self.writer.write_row({**row, "samples_file": self.writer.samples_path.name})
        self.writer.write_samples(self.run_id, row["case_id"], [v for v in summary.latencies_ms])
        self.context["run"].in_progress = None
        self.progress.level_done(summary)
        await drain(self.client, self.base, self.api, self.request.metrics)
        return summary


def _cpu_mark() -> tuple[float, float]:
    """(this process's CPU seconds, the wall clock) at a level's start."""
    return time.process_time(), time.perf_counter()


def _cpu_cores_since(mark: tuple[float, float]) -> float | None:
    """The cores this process (the load generator: its event loop, the live view's thread) kept busy since
    `mark`. On the server's own machine each of them is taken from the server."""
    cpu, wall = mark
    elapsed = time.perf_counter() - wall
    return (time.process_time() - cpu) / elapsed if elapsed > 0 else None


async def _measure(
    request: EndpointRequest,
    text: TextWorkload,
    run: EndpointRun,
    meta: dict[str, Any],
    writer: Any,
    progress: Progress,
) -> None:
    base, _ = split_url(request.url)
    ca_bundle = str(request.ca_bundle) if request.ca_bundle is not None else None
    session_client = RerankClient.session_only(request.headers(), request.timeout_s, request.keepalive_s, ca_bundle)
    async with session_client as session:
        client, api = await _connect(request, session, run, progress)
        for depth in request.depths:
            result = DepthResult(depth)
            run.depths.append(result)
            requests, workload_label = build_depth_requests(request, text, depth)
            warm = [
                await _timed(client, requests[i % len(requests)], i) for i in range(max(1, request.warmup_requests))
            ]
            if not any(o.kind == ErrorKind.OK for o in warm):
                raise first_failure(warm, client.url, depth)
            unloaded_ms = statistics.median(o.reply_ms for o in warm if o.kind == ErrorKind.OK)
            if request.reference is not None and text.scorer is not None:
                result.agreement = await _reference_check(client, text, requests, depth, progress)
            context = {
                "request": request,
                "run": run,
                "meta": meta,
                "workload": workload_label,
                "tokens": text.pair_tokens(requests),
                "agreement": result.agreement,
            }
            runner = LevelRunner(
                request, client, base, api, requests, depth, context, writer, progress, run.run_id, unloaded_ms
            )
            for level in request.levels():
                if level.mode == "closed":
                    result.levels.append(await runner.closed(level.concurrency or 1))
                else:
                    result.levels.append(await runner.open(level.rate_rps or 1.0))
            if request.capacity and request.slo_ms is not None:
                result.capacity = await _capacity(request, runner, result, writer)


async def _timed(client: RerankClient, req: Request, index: int) -> Outcome:
    start = time.perf_counter()
    reply = await client.rerank(req)
    done = time.perf_counter() - start
    return Outcome(index, 0.0, 0.0, done, reply.kind, reply.detail)


async def _warm_level(client: RerankClient, requests: list[Request], level: Level, count: int) -> None:
    """Untimed requests before a closed-loop level, at its concurrency."""
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
        if reply.kind != ErrorKind.OK or reply.scores is None:
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


def _trial(summary: LevelSummary) -> Trial:
    """A capacity level as the search sees it: a pass only when the SLO test passed on a steady level."""
    met, why = summary.meets()
    verdict = Verdict.PASS if met else (summary.verdict or Verdict.FAIL)
    if not met and verdict == Verdict.PASS:  # the count passed but errors or the generator did not
        verdict = Verdict.FAIL
    if met and summary.state == LevelState.NOT_STEADY:
        # latency still rising through the window: the queue had not settled, and a longer level would see more
        verdict, why = Verdict.UNDECIDED, "passed, but latency was still rising (not steady)"
    return Trial(summary.level.rate_rps or 0.0, verdict, why)


async def _capacity(request: EndpointRequest, runner: LevelRunner, result: DepthResult, writer: Any) -> CapacityResult:
    """The search along the curve (endpoint/capacity.py): one client, the closed-loop ceiling, open-loop rates
    between, bisection, and a confirmation three times as long; then the capacity's own summary row."""
    single = await runner.closed(1, role=ROLE_ONE_CLIENT)
    ceiling = await runner.closed(request.ceiling_concurrency, role=ROLE_CEILING)
    result.capacity_levels += [single, ceiling]
    unloaded_rps = single.achieved_rps
    ceiling_rps = max(ceiling.achieved_rps, unloaded_rps)
    if ceiling_rps <= 0:
        raise EnvironmentProblem(
            f"no request completed at concurrency {request.ceiling_concurrency}: nothing to search"
        )
    if unloaded_rps > 0:  # what a request that finds the server idle waits (common/capacity_search.py)
        light_rps, light_requests = light_level(unloaded_rps)
        result.capacity_levels.append(await runner.open(light_rps, fixed_window=light_requests, role=ROLE_LIGHT))
    # search_capacity is synchronous; each level runs on this loop, driven from a worker thread.
    loop = asyncio.get_running_loop()

    def level_at(rate: float, factor: int, role: str) -> LevelSummary:
        return asyncio.run_coroutine_threadsafe(runner.open(rate, factor, role=role), loop).result()

    def try_rate(rate: float) -> Trial:
        summary = level_at(rate, 1, ROLE_SEARCH)
        result.capacity_levels.append(summary)
        return _trial(summary)

    def confirm(rate: float) -> Trial:
        summary = level_at(rate, CONFIRM_FACTOR, ROLE_CONFIRMATION)
        result.confirmation = summary
        return _trial(summary)

    found = await asyncio.to_thread(search_capacity, try_rate, unloaded_rps, ceiling_rps, confirm=confirm)
    writer.write_row(capacity_row(found, runner.depth, runner.context))
    return found
