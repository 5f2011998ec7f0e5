"""A fake rerank server: a real HTTP server on localhost whose service time, parallelism, errors and
malformed replies are set by the caller. It stands beside the real servers the way backends/fake.py stands
beside the real backends: tests check the load generator's schedule, its latency accounting under a stall,
its error kinds and the capacity search against it, and benchmarks/loadgen_ceiling.py measures the
generator's own ceiling against it with zero service time.

A request waits for one of `workers` slots, then holds it for base_ms + per_doc_ms x documents (or what
`service_ms` draws), so the server saturates at workers / service time like a real one, and queues beyond that.
As TEI does, a TEI-style fake sends x-total-time, x-queue-time and x-inference-time headers and keeps its
request and batch histograms on a Prometheus /metrics page (written by prometheus_client itself).

    python -m rerank_bench.endpoint.fake_server --port 8099 --api tei --workers 1 --base-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import math
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web  # the fake server is a test double: never imported by the command line


@dataclass
class FakeSettings:
    api: str = "tei"  # "tei" (POST /rerank, TEI shapes, GET /info) or "cohere" (POST /rerank and /v1|v2/rerank)
    workers: int = 1
    base_ms: float = 0.0
    per_doc_ms: float = 0.0
    fail_every: int = 0  # every Nth request answers 503
    malformed_every: int = 0  # every Nth request answers one result too few
    max_client_batch_size: int = 1000  # TEI: more texts than this answer 422, as TEI does
    stall_at: int = 0  # after this many requests the server stops serving for stall_s
    stall_s: float = 0.0
    fail_fraction: float = 0.0  # this share of requests answers 503 at once (seeded by request number)
    # a server that slows down: service times grow by this share of themselves each second after the first request
    drift_per_s: float = 0.0
    # (request number, seconds since the first request) -> service time in ms; overrides base_ms/per_doc_ms
    service_ms: Callable[[int, float], float] | None = None
    keepalive_s: float = 75.0  # idle connections closed after this (uvicorn: 5 s)
    reply_padding_bytes: int = 0  # whitespace after the JSON of every reply: a server whose replies are huge
    # request number -> a fault to answer it with (FAULTS), or None to serve it: a misbehaving server
    fault: Callable[[int], str | None] | None = None
    redirect_to: str | None = None  # answer every rerank request with a 307 to this URL (another host, say)
    seen_headers: list[dict[str, str]] | None = None  # where given, every rerank request's headers are kept
    seen_queries: list[str] | None = None  # where given, every rerank request's query, in order of arrival
    # the /metrics page also carries the process's CPU (process_cpu_seconds_total), as a Python server's
    # default prometheus_client registry does (infinity's); TEI's Rust exporter does not
    process_metrics: bool = False


# Set when the fake server stops: handlers that never answer end then, so stopping does not wait on them.
CLOSING = web.AppKey("closing", asyncio.Event)


# What a misbehaving server does, by name (FakeSettings.fault).
FAULTS = (
    "429",  # Too Many Requests with Retry-After: 1
    "500-html",  # an HTML error page, as a proxy in front of the server writes one
    "invalid-json",  # 200 with a body that is not JSON
    "nan-score",  # 200 with a NaN score
    "string-score",  # 200 with a score that is a string
    "duplicate-index",  # 200 naming one document twice and another not at all
    "silent",  # accepts the request and never answers
    "drip",  # answers one byte every 0.2 s
    "reset",  # closes the connection without a reply
)


def fake_score(query: str, document: str) -> float:
    """A stable score from the texts, so a reply can be checked against another scoring of the same pair."""
    digest = hashlib.sha256(f"{query}\x00{document}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _fails(number: int, fraction: float) -> bool:
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"fail:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def build_app(settings: FakeSettings) -> Any:
    from prometheus_client import CollectorRegistry, Gauge, Histogram, ProcessCollector, generate_latest

    slots = asyncio.Semaphore(settings.workers)
    closing = asyncio.Event()  # set when the fake server stops: handlers that never answer end then
    state: dict[str, Any] = {"count": 0, "paused_until": 0.0, "started": 0.0}
    registry = CollectorRegistry()
    # TEI's names (router/src/http/server.rs): seconds, and the batches run (one request each here)
    durations = {
        name: Histogram(name, name, registry=registry)
        for name in ("te_request_duration", "te_request_queue_duration", "te_request_inference_duration")
    }
    batches = Histogram("te_batch_next_size", "batch size", registry=registry, buckets=(1, 2, 4, 8, 16, 32))
    waiting = Gauge("te_queue_size", "requests waiting for a worker", registry=registry)  # TEI's queue gauge
    if settings.process_metrics:
        ProcessCollector(registry=registry)

    async def rerank(request: web.Request) -> web.Response:
        if settings.seen_headers is not None:
            settings.seen_headers.append(dict(request.headers))
        if settings.redirect_to is not None:
            raise web.HTTPTemporaryRedirect(settings.redirect_to)
        arrived = time.monotonic()
        body = await request.json()
        if settings.seen_queries is not None:
            settings.seen_queries.append(str(body.get("query")))
        state["count"] += 1
        number = state["count"]
        if number == 1:
            state["started"] = arrived
        if settings.stall_at and number == settings.stall_at:
            state["paused_until"] = time.monotonic() + settings.stall_s
        if _fails(number, settings.fail_fraction):
            return web.json_response({"error": "overloaded", "error_type": "overloaded"}, status=503)
        fault = settings.fault(number) if settings.fault else None
        if fault is not None and fault not in ("nan-score", "string-score", "duplicate-index"):
            return await _misbehave(fault, request)
        texts = body.get("texts") if settings.api == "tei" else body.get("documents")
        if not isinstance(texts, list) or not isinstance(body.get("query"), str):
            return web.json_response({"error": "query and texts/documents are required"}, status=422)
        if len(texts) > settings.max_client_batch_size:
            message = f"batch size {len(texts)} > maximum allowed batch size {settings.max_client_batch_size}"
            return web.json_response({"error": message, "error_type": "Validation"}, status=422)
        waiting.inc()
        try:
            await slots.acquire()
        finally:  # a request its client gave up on while it waited leaves the queue too
            waiting.dec()
        try:
            queued = time.monotonic() - arrived
            pause = state["paused_until"] - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            if settings.service_ms is not None:
                service = settings.service_ms(number, arrived - state["started"]) / 1000.0
            else:
                service = (settings.base_ms + settings.per_doc_ms * len(texts)) / 1000.0
                service *= 1.0 + settings.drift_per_s * (arrived - state["started"])
            if service > 0:
                await asyncio.sleep(service)
        finally:
            slots.release()
        total = time.monotonic() - arrived
        if settings.api == "tei":
            for name, seconds in (
                ("te_request_duration", total),
                ("te_request_queue_duration", queued),
                ("te_request_inference_duration", service),
            ):
                durations[name].observe(seconds)
            batches.observe(1)
        timing = {
            "x-total-time": str(round(total * 1000)),
            "x-queue-time": str(round(queued * 1000)),
            "x-inference-time": str(round(service * 1000)),
        }
        headers = timing if settings.api == "tei" else {}
        if settings.fail_every and number % settings.fail_every == 0:
            return web.json_response({"error": "overloaded"}, status=503)
        scored: list[tuple[int, Any]] = [(i, fake_score(body["query"], t)) for i, t in enumerate(texts)]
        scored.sort(key=lambda item: -item[1])
        if fault == "nan-score":
            scored[0] = (scored[0][0], math.nan)
        elif fault == "string-score":
            scored[0] = (scored[0][0], str(scored[0][1]))
        elif fault == "duplicate-index" and len(scored) > 1:
            scored[1] = (scored[0][0], scored[1][1])
        if settings.malformed_every and number % settings.malformed_every == 0:
            scored = scored[:-1]
        if settings.api == "tei":
            payload: Any = [{"index": i, "score": s} for i, s in scored]
        else:
            results = [{"index": i, "relevance_score": s, "document": None} for i, s in scored]
            payload = {"object": "rerank", "results": results}
        padding = b" " * settings.reply_padding_bytes
        return web.Response(
            body=json.dumps(payload).encode() + padding, content_type="application/json", headers=headers
        )

    async def _misbehave(fault: str, request: web.Request) -> Any:
        if fault == "429":
            return web.json_response({"error": "rate limited"}, status=429, headers={"Retry-After": "1"})
        if fault == "500-html":
            page = "<html><head><title>500 Internal Server Error</title></head><body><h1>Oops</h1></body></html>"
            return web.Response(status=500, text=page, content_type="text/html")
        if fault == "invalid-json":
            return web.Response(status=200, text='{"results": [', content_type="application/json")
        if fault == "silent":
            await closing.wait()  # until the fake server stops, so that stopping it does not wait on this
        if fault == "reset":
            if request.transport is not None:
                request.transport.abort()
            await closing.wait()  # the connection is gone; nothing more is sent
        if fault == "drip":
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            try:
                for byte in b'[{"index": 0, "score": 0.5}]':
                    await response.write(bytes([byte]))
                    await asyncio.sleep(0.2)
            except ConnectionError:  # the client gave up on it (aiohttp raises its reset as one)
                pass
            return response
        raise ValueError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)}")

    async def metrics(request: web.Request) -> web.Response:
        if settings.api != "tei":
            raise web.HTTPNotFound()
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    async def info(request: web.Request) -> web.Response:
        if settings.api != "tei":
            raise web.HTTPNotFound()
        return web.json_response(
            {
                "model_id": "fake/reranker",
                "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}}},
                "version": "fake",
                "max_client_batch_size": settings.max_client_batch_size,
                "max_batch_tokens": 16384,
            }
        )

    async def models(request: web.Request) -> web.Response:
        if settings.api == "tei":
            raise web.HTTPNotFound()
        return web.json_response({"data": [{"id": "fake/reranker", "owned_by": "infinity", "backend": "fake"}]})

    app = web.Application()
    app[CLOSING] = closing
    app.router.add_post("/rerank", rerank)
    app.router.add_post("/v1/rerank", rerank)
    app.router.add_post("/v2/rerank", rerank)
    app.router.add_get("/info", info)
    app.router.add_get("/models", models)
    app.router.add_get("/metrics", metrics)
    return app


class FakeServer:
    """The fake server on a free localhost port (`with FakeServer(...) as url:`), in a thread of this process, or
    with `own_process=True` in a process of its own: a test that judges the load generator's timing needs the
    latter, as a fake in a thread holds the GIL the generator needs for every reply it sends (on a slow 2-core
    host the generator's send lag p99 at 50/s ran 12-20 ms that way, over the 10 ms a level may lag)."""

    def __init__(
        self,
        settings: FakeSettings | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        tls: Any = None,
        own_process: bool = False,
    ) -> None:
        self.settings = settings or FakeSettings()
        self.port = port
        self.host = host  # "::1" for IPv6
        self.tls = tls  # an ssl.SSLContext to serve https with
        self.own_process = own_process
        if own_process and (tls is not None or _shared_fields(self.settings)):
            raise ValueError(
                "a fake server in its own process takes plain settings only (no TLS, and none of "
                f"{', '.join(_shared_fields(self.settings)) or 'tls'}): serve those from a thread"
            )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._runner: Any = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        if self.own_process:
            self._start_process()
        else:
            self._thread = threading.Thread(target=self._serve, daemon=True)
            self._thread.start()
            if not self._ready.wait(10):
                raise RuntimeError("the fake server did not start")
        scheme = "https" if self.tls is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def _start_process(self) -> None:
        fields = json.dumps(dataclasses.asdict(self.settings))
        command = [sys.executable, "-m", "rerank_bench.endpoint.fake_server", "--settings-json", fields]
        command += ["--host", self.host, "--port", str(self.port)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        # "listening on PORT" once bound; "" if it died first; nothing within 30 s: a hung start, not waited on
        ready, _, _ = select.select([self._process.stdout], [], [], 30.0)
        line = self._process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            self._process.kill()
            raise RuntimeError(f"the fake server's process did not start (exit {self._process.wait()})")
        self.port = int(line.split()[-1])

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._runner, self.port = self._loop.run_until_complete(_start(self.settings, self.host, self.port, self.tls))
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
        if self._loop is not None:
            if self._runner is not None:
                self._loop.call_soon_threadsafe(self._runner.app[CLOSING].set)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def _shared_fields(settings: FakeSettings) -> list[str]:
    """The settings a process of its own cannot take: callables, and lists the caller reads back."""
    shared = ("service_ms", "fault", "seen_headers", "seen_queries")
    return [name for name in shared if getattr(settings, name) is not None]


async def _start(settings: FakeSettings, host: str, port: int, tls: Any = None) -> tuple[Any, int]:
    """The app listening on host:port (0: a free one): its runner and the port it got."""
    runner = web.AppRunner(build_app(settings), access_log=None, keepalive_timeout=settings.keepalive_s)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    await site.start()
    server: Any = site._server
    return runner, server.sockets[0].getsockname()[1]  # the port the OS chose for port 0


async def _serve_until_stopped(settings: FakeSettings, host: str, port: int) -> None:
    runner, port = await _start(settings, host, port)
    print(f"listening on {port}", flush=True)  # FakeServer reads the port here
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    runner.app[CLOSING].set()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake rerank server for load-generator tests and benchmarks.")
    parser.add_argument("--port", type=int, default=8099, help="0: a free port, printed once bound")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api", choices=("tei", "cohere"), default="tei")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--base-ms", type=float, default=0.0)
    parser.add_argument("--per-doc-ms", type=float, default=0.0)
    parser.add_argument("--settings-json", help="every FakeSettings field as JSON (FakeServer(own_process=True))")
    args = parser.parse_args()
    if args.settings_json:
        settings = FakeSettings(**json.loads(args.settings_json))
    else:
        settings = FakeSettings(api=args.api, workers=args.workers, base_ms=args.base_ms, per_doc_ms=args.per_doc_ms)
    asyncio.run(_serve_until_stopped(settings, args.host, args.port))


if __name__ == "__main__":
    main()
