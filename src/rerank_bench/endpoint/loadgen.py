"""The load generator: closed loop (N clients, each sending its next request when the last returns) and open
loop (requests sent at scheduled times, whatever the server is doing).

Open-loop latency runs from each request's *scheduled* send time, not from when it was actually sent: a
server that stalls makes the generator's own sends late, and timing from the late send would hide exactly
the queueing the user needs to see (coordinated omission, as wrk2 and HdrHistogram describe it). The send
lag (actual minus scheduled) is kept too, so a level where the generator itself fell behind is marked.

Every level walks the same request list in the same order from the same start, so every configuration and
every server sees the same requests.
"""

from __future__ import annotations

import asyncio
import copy
import errno
import itertools
import json
import math
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rerank_bench.common.arrivals import unit_gaps  # noqa: F401 - endpoint.run and tests import it from here
from rerank_bench.common.vocab import ErrorKind
from rerank_bench.endpoint.apis import Api, MalformedReply, parse_reply, request_body
from rerank_bench.workload.records import Request


@dataclass(frozen=True)
class Outcome:
    """One request of a level. Times in seconds from the level's start."""

    index: int  # which request of the workload list
    scheduled_s: float  # open loop: when it was due; closed loop: when it was sent
    sent_s: float
    done_s: float
    kind: str  # an ErrorKind, or ErrorKind.http(status)
    detail: str = ""  # the first words of an error: the server's message, the exception
    server_ms: tuple[tuple[str, float], ...] = ()  # the server's own times for it (TEI's x-*-time headers)

    @property
    def ok(self) -> bool:
        return self.kind == ErrorKind.OK

    @property
    def latency_ms(self) -> float:
        """From the scheduled time to the reply; a failed request is slower than any reply (inf)."""
        return (self.done_s - self.scheduled_s) * 1000.0 if self.ok else math.inf

    @property
    def reply_ms(self) -> float:
        """From the scheduled time to whatever ended it, a reply or an error."""
        return (self.done_s - self.scheduled_s) * 1000.0

    @property
    def lag_ms(self) -> float:
        return (self.sent_s - self.scheduled_s) * 1000.0


@dataclass(frozen=True)
class Reply:
    kind: str
    detail: str = ""
    scores: list[float] | None = None
    server_ms: tuple[tuple[str, float], ...] = ()


# TEI's per-request timing headers, in milliseconds (router/src/http/server.rs): total, tokenization, queue and
# inference. Other servers send none; a proxy may add its own, which are not read.
SERVER_TIME_HEADERS = {
    "x-total-time": "total",
    "x-tokenization-time": "tokenization",
    "x-queue-time": "queue",
    "x-inference-time": "inference",
}
# Errors of the client's own making (out of file descriptors, ephemeral ports or buffers): they say nothing of
# the server, so a level that has one is invalid rather than blamed on it.
CLIENT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.EADDRINUSE})
# Below uvicorn's 5 s keep-alive (infinity and vLLM serve through uvicorn): a connection the client keeps longer
# than the server may be closed by the server just as a request goes out on it, a failure that is the
# client's, not the server's. TEI (axum) keeps connections open.
KEEPALIVE_S = 4.0
# The most of a reply that is read. A rerank reply is one score per document (a 1,000-document reply is under
# 100 KB); a server that answers more is broken, and reading it whole would cost the client memory and time.
MAX_REPLY_BYTES = 16 << 20


async def read_limited(response: Any, limit: int = MAX_REPLY_BYTES) -> bytes | None:
    """The reply's body, or None once it passes `limit` (the rest is not read; the connection is dropped)."""
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def server_times(headers: Any) -> tuple[tuple[str, float], ...]:
    out = []
    for header, name in SERVER_TIME_HEADERS.items():
        value = headers.get(header)
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number) and number >= 0:
            out.append((name, number))
    return tuple(out)


def schedule(gaps: Sequence[float], rate_rps: float, blocks: Sequence[int] = ()) -> list[float]:
    """Send times for `gaps` at `rate_rps`. Each block (consecutive runs of gaps of the given sizes, then the
    rest) is scaled to a mean gap of exactly 1/rate: a level of n arrivals offers the rate it is labelled with,
    not one 1/sqrt(n) off it, while the gaps keep their spread."""
    if rate_rps <= 0:
        raise ValueError("rate must be positive")
    scaled: list[float] = []
    start = 0
    for size in [*blocks, len(gaps)]:
        block = list(gaps[start : start + size]) if size else []
        if block:
            mean = sum(block) / len(block)
            scaled += [g / mean for g in block]
        start += size
        if start >= len(gaps):
            break
    out, t = [], 0.0
    for gap in scaled:
        t += gap / rate_rps
        out.append(t)
    return out


def arrival_times(rate_rps: float, duration_s: float, seed: int | str, burstiness: float = 1.0) -> list[float]:
    """Send times in [0, duration_s) for an average of `rate_rps` requests per second, seeded.

    Inter-arrival gaps are gamma distributed with shape `burstiness` and mean 1/rate, as vLLM's benchmark
    defines it: 1 is a Poisson process, below 1 burstier, above 1 more even.
    """
    if rate_rps <= 0 or duration_s <= 0 or burstiness <= 0:
        raise ValueError("rate, duration and burstiness must be positive")
    rng = random.Random(seed)
    out: list[float] = []
    t = 0.0
    while True:
        t += rng.gammavariate(burstiness, 1.0 / (rate_rps * burstiness))
        if t >= duration_s:
            return out
        out.append(t)


class RerankClient:
    """One HTTP session to a rerank endpoint: keep-alive connections, the API's request and reply shapes, and
    the time spent opening connections (kept apart, so a level's latencies are the server's, not the TCP
    handshake's)."""

    def __init__(
        self,
        url: str,
        api: Api | None,  # None: only the info routes (session_only)
        model: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 60.0,
        keepalive_s: float = KEEPALIVE_S,
        ca_bundle: str | None = None,  # certificates to trust for https, instead of the system's
    ) -> None:
        self.url = url
        self.api = api
        self.model = model
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        self.ca_bundle = ca_bundle
        self.tls_error: str | None = None  # the last certificate the client refused, for a clear error
        self.connect_ms: list[float] = []  # every connection opened, in order: how long it took
        self.connect_at: list[float] = []  # and when it was open (time.perf_counter)
        self._session: Any = None
        # Encoded bodies by request: a level walks the same requests over and over, and encoding a 50-document
        # body each time was the generator's largest cost at hundreds of requests a second. (The request is
        # kept beside its body, so its id cannot be reused by another while cached.)
        self._bodies: dict[tuple[int, str, str | None], tuple[Request, bytes]] = {}

    @classmethod
    def session_only(
        cls,
        headers: dict[str, str] | None,
        timeout_s: float,
        keepalive_s: float = KEEPALIVE_S,
        ca_bundle: str | None = None,
    ) -> RerankClient:
        """A client for the info routes before the rerank route is known (`routed` then points it at one)."""
        return cls("", None, None, headers, timeout_s, keepalive_s, ca_bundle)

    def routed(self, url: str, api: Api, model: str | None) -> RerankClient:
        """A client for one rerank route on this one's session: the same connections and connection log."""
        other = copy.copy(self)
        other.url, other.api, other.model, other._bodies = url, api, model, {}
        return other

    async def __aenter__(self) -> RerankClient:
        import aiohttp

        trace = aiohttp.TraceConfig()

        async def started(session: Any, context: Any, params: Any) -> None:
            context.connect_start = time.perf_counter()

        async def ended(session: Any, context: Any, params: Any) -> None:
            now = time.perf_counter()
            self.connect_ms.append((now - context.connect_start) * 1000.0)
            self.connect_at.append(now)

        trace.on_connection_create_start.append(started)
        trace.on_connection_create_end.append(ended)
        # No connection limit: a limit would be a hidden client-side queue in front of the server. TLS checks
        # certificates against the system's store (ssl's default context), or --ca-bundle's; never skipped.
        context = ssl.create_default_context(cafile=self.ca_bundle)
        connector = aiohttp.TCPConnector(limit=0, ssl=context, ttl_dns_cache=300, keepalive_timeout=self.keepalive_s)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            headers=self.headers,
            trace_configs=[trace],
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get_json(self, url: str) -> Any | None:
        """A GET's JSON body, or None for any failure (info routes are optional)."""
        text = await self.get_text(url)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    async def get_text(self, url: str, limit_bytes: int = 8 << 20) -> str | None:
        """A GET's body as text where it answers 200 (a metrics page, an info route), else None."""
        import aiohttp

        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status != 200:
                    return None
                raw = await response.content.read(limit_bytes)
                return raw.decode("utf-8", errors="replace")
        except aiohttp.ClientConnectorCertificateError as exc:
            self.tls_error = str(exc.certificate_error)
            return None
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None

    async def pre_open(self, url: str, count: int) -> int:
        """Open up to `count` connections before a level by sending that many GETs at once (any answer will do:
        the connection stays in the pool), so the timed window does not pay for handshakes. Returns how many
        connections were opened."""
        import aiohttp

        before = len(self.connect_ms)

        async def touch() -> None:
            try:
                async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError):
                pass

        await asyncio.gather(*(touch() for _ in range(max(0, count))))
        return len(self.connect_ms) - before

    def _body(self, request: Request) -> bytes:
        if self.api is None:
            raise RuntimeError("a session-only client has no rerank route: use routed()")
        key = (id(request), self.api.name, self.model)
        cached = self._bodies.get(key)
        if cached is None or cached[0] is not request:
            encoded = json.dumps(request_body(self.api, request.query, request.documents, self.model)).encode()
            cached = self._bodies[key] = (request, encoded)
        return cached[1]

    async def rerank(self, request: Request) -> Reply:
        import aiohttp

        body = self._body(request)
        assert self.api is not None  # _body refused a session-only client
        try:
            async with self._session.post(self.url, data=body) as response:
                read = await read_limited(response)
                times = server_times(response.headers)
                if read is None:
                    # a 200 that size is not a reply; an error status stays that status
                    kind = ErrorKind.MALFORMED if response.status == 200 else ErrorKind.http(response.status)
                    return Reply(kind, f"a reply over {MAX_REPLY_BYTES >> 20} MiB, not read further", server_ms=times)
                raw = read
                if response.status != 200:
                    return Reply(ErrorKind.http(response.status), _first_words(raw), server_ms=times)
        except TimeoutError:
            return Reply(ErrorKind.TIMEOUT, f"no reply within {self.timeout_s:g} s")
        except aiohttp.ClientConnectorCertificateError as exc:
            self.tls_error = str(exc.certificate_error)
            return Reply(ErrorKind.CONNECTION, f"TLS certificate not trusted: {exc.certificate_error}"[:200])
        except (aiohttp.ClientError, OSError) as exc:
            kind = ErrorKind.CLIENT if _errno_of(exc) in CLIENT_ERRNOS else ErrorKind.CONNECTION
            return Reply(kind, f"{type(exc).__name__}: {exc}"[:200])
        try:
            scores = parse_reply(self.api, json.loads(raw), len(request.documents))
        except ValueError:
            return Reply(ErrorKind.MALFORMED, "the reply is not JSON: " + _first_words(raw), server_ms=times)
        except MalformedReply as exc:
            return Reply(ErrorKind.MALFORMED, str(exc), server_ms=times)
        return Reply(ErrorKind.OK, scores=scores, server_ms=times)


def _errno_of(exc: BaseException) -> int | None:
    """The OS error number behind an aiohttp error (ClientConnectorError keeps it in os_error)."""
    for candidate in (getattr(exc, "os_error", None), exc, exc.__cause__, exc.__context__):
        number = getattr(candidate, "errno", None)
        if isinstance(number, int):
            return number
    return None


def _first_words(raw: bytes, limit: int = 200) -> str:
    """A reply's start as one line; an HTML error page (a proxy's, a load balancer's) by its title."""
    text = raw[:4096].decode("utf-8", errors="replace")
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title and text.lstrip()[:1] == "<":
        return "an HTML page: " + " ".join(title.group(1).split())[:limit]
    return " ".join(text[:limit].split())


@dataclass
class LiveCounts:
    """What a level has done so far, for the live view."""

    sent: int = 0
    done: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.done += 1
        if outcome.kind == ErrorKind.OK:
            self.latencies_ms.append(outcome.latency_ms)
        else:
            self.failed += 1


Sender = Callable[[Request], Any]  # an async function: request -> Reply (RerankClient.rerank, or a test's)


async def closed_loop(
    send: Sender,
    requests: Sequence[Request],
    concurrency: int,
    duration_s: float,
    live: LiveCounts | None = None,
) -> list[Outcome]:
    """`concurrency` clients, each sending its next request as soon as its last returns, until `duration_s`
    has passed; requests already sent then are awaited and counted."""
    live = live or LiveCounts()
    counter = itertools.count()
    outcomes: list[Outcome] = []
    start = time.perf_counter()

    async def client() -> None:
        while (now := time.perf_counter() - start) < duration_s:
            i = next(counter)
            live.sent += 1
            reply = await send(requests[i % len(requests)])
            outcome = Outcome(i, now, now, time.perf_counter() - start, reply.kind, reply.detail, reply.server_ms)
            outcomes.append(outcome)
            live.add(outcome)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return sorted(outcomes, key=lambda o: o.index)


# (the reply just in, or None on a tick; requests still out: index -> scheduled time; seconds since the start)
# -> whether to stop sending now. Told of every reply once, in the order they arrive.
StopRule = Callable[[Outcome | None, Mapping[int, float], float], bool]


async def open_loop(
    send: Sender,
    requests: Sequence[Request],
    arrivals: Sequence[float],
    live: LiveCounts | None = None,
    stop: StopRule | None = None,
    tick_s: float = 0.1,
) -> list[Outcome]:
    """Request i sent at arrivals[i] seconds (or as soon after as the generator can), each timed from its
    scheduled time. Without `stop`, every arrival is sent and every request awaited (the client's timeout
    bounds the wait). With it, sending goes on (so the server stays under the level's load) until `stop` says
    so, asked after every reply and every `tick_s`; requests still out then are cancelled and returned as
    `abandoned`, their time running to the stop."""
    live = live or LiveCounts()
    done: dict[int, Outcome] = {}
    outstanding: dict[int, float] = {}
    tasks: dict[int, asyncio.Task[None]] = {}
    finished = asyncio.Event()
    start = time.perf_counter()

    def check(outcome: Outcome | None = None) -> None:
        if stop is not None and not finished.is_set() and stop(outcome, outstanding, time.perf_counter() - start):
            finished.set()

    async def fire(i: int, due: float) -> None:
        sent = time.perf_counter() - start
        live.sent += 1
        outstanding[i] = due
        reply = await send(requests[i % len(requests)])
        outcome = Outcome(i, due, sent, time.perf_counter() - start, reply.kind, reply.detail, reply.server_ms)
        outstanding.pop(i, None)
        done[i] = outcome
        live.add(outcome)
        check(outcome)

    async def sender() -> None:
        for i, due in enumerate(arrivals):
            delay = due - (time.perf_counter() - start)
            while delay > 0 and not finished.is_set():
                await asyncio.sleep(min(delay, tick_s))
                check()
                delay = due - (time.perf_counter() - start)
            if finished.is_set():
                return
            tasks[i] = asyncio.create_task(fire(i, due))
        # the schedule ran out: what is out is awaited (with a rule, it still decides when to stop waiting)
        while stop is not None and not finished.is_set() and outstanding:
            await asyncio.sleep(tick_s)
            check()

    await sender()
    if stop is None or not finished.is_set():
        await asyncio.gather(*tasks.values())
    stopped = time.perf_counter() - start
    for i, task in tasks.items():
        if not task.done():
            task.cancel()
            done.setdefault(
                i,
                Outcome(i, arrivals[i], arrivals[i], stopped, ErrorKind.ABANDONED, "still out when the level stopped"),
            )
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    return [done[i] for i in sorted(done)]
