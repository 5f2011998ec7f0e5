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
import itertools
import json
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rerank_bench.endpoint.apis import Api, MalformedReply, parse_reply, request_body
from rerank_bench.workload.records import Request


@dataclass(frozen=True)
class Outcome:
    """One request of a level. Times in seconds from the level's start."""

    index: int  # which request of the workload list
    scheduled_s: float  # open loop: when it was due; closed loop: when it was sent
    sent_s: float
    done_s: float
    kind: str  # "ok", "http_<status>", "timeout", "connection" or "malformed"
    detail: str = ""  # the first words of an error: the server's message, the exception

    @property
    def latency_ms(self) -> float:
        return (self.done_s - self.scheduled_s) * 1000.0

    @property
    def lag_ms(self) -> float:
        return (self.sent_s - self.scheduled_s) * 1000.0


@dataclass(frozen=True)
class Reply:
    kind: str
    detail: str = ""
    scores: list[float] | None = None


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
    """One HTTP session to a rerank endpoint: keep-alive connections, the API's request and reply shapes."""

    def __init__(
        self,
        url: str,
        api: Api,
        model: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.url = url
        self.api = api
        self.model = model
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.timeout_s = timeout_s
        self._session: Any = None
        # Encoded bodies by request: a level walks the same few requests over and over, and encoding a
        # 50-document body each time was the generator's largest cost at hundreds of requests a second.
        # (The request is kept beside its body, so its id cannot be reused by another while cached.)
        self._bodies: dict[tuple[int, str, str | None], tuple[Request, bytes]] = {}

    async def __aenter__(self) -> RerankClient:
        import aiohttp

        # No connection limit: a limit would be a hidden client-side queue in front of the server. TLS checks
        # certificates against the system's store (ssl's default context).
        connector = aiohttp.TCPConnector(limit=0, ssl=ssl.create_default_context(), ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s), headers=self.headers
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get_json(self, url: str) -> Any | None:
        """A GET's JSON body, or None for any failure (info routes are optional)."""
        import aiohttp

        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status != 200:
                    return None
                return json.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError):
            return None

    def _body(self, request: Request) -> bytes:
        key = (id(request), self.api.name, self.model)
        cached = self._bodies.get(key)
        if cached is None or cached[0] is not request:
            encoded = json.dumps(request_body(self.api, request.query, request.documents, self.model)).encode()
            cached = self._bodies[key] = (request, encoded)
        return cached[1]

    async def rerank(self, request: Request) -> Reply:
        import aiohttp

        body = self._body(request)
        try:
            async with self._session.post(self.url, data=body) as response:
                raw = await response.read()
                if response.status != 200:
                    return Reply(f"http_{response.status}", _first_words(raw))
        except TimeoutError:
            return Reply("timeout", f"no reply within {self.timeout_s:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Reply("connection", f"{type(exc).__name__}: {exc}"[:200])
        try:
            scores = parse_reply(self.api, json.loads(raw), len(request.documents))
        except ValueError:
            return Reply("malformed", "the reply is not JSON: " + _first_words(raw))
        except MalformedReply as exc:
            return Reply("malformed", str(exc))
        return Reply("ok", scores=scores)


def _first_words(raw: bytes, limit: int = 200) -> str:
    return " ".join(raw[:limit].decode("utf-8", errors="replace").split())


@dataclass
class LiveCounts:
    """What a level has done so far, for the live view."""

    sent: int = 0
    done: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.done += 1
        if outcome.kind == "ok":
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
            outcome = Outcome(i, now, now, time.perf_counter() - start, reply.kind, reply.detail)
            outcomes.append(outcome)
            live.add(outcome)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return sorted(outcomes, key=lambda o: o.index)


async def open_loop(
    send: Sender,
    requests: Sequence[Request],
    arrivals: Sequence[float],
    live: LiveCounts | None = None,
) -> list[Outcome]:
    """Request i sent at arrivals[i] seconds (or as soon after as the generator can), each timed from its
    scheduled time; every request is awaited (the client's timeout bounds the wait)."""
    live = live or LiveCounts()
    outcomes: list[Outcome] = []
    start = time.perf_counter()

    async def fire(i: int, due: float) -> None:
        sent = time.perf_counter() - start
        live.sent += 1
        reply = await send(requests[i % len(requests)])
        outcome = Outcome(i, due, sent, time.perf_counter() - start, reply.kind, reply.detail)
        outcomes.append(outcome)
        live.add(outcome)

    tasks = []
    for i, due in enumerate(arrivals):
        delay = due - (time.perf_counter() - start)
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i, due)))
    await asyncio.gather(*tasks)
    return sorted(outcomes, key=lambda o: o.index)
