"""The rerank APIs that servers speak: how to ask, how to read the reply, how to tell them apart.

Two request shapes cover the servers people run:
- TEI (Hugging Face text-embeddings-inference) `POST /rerank`: {"query", "texts", "raw_scores", "truncate"};
  the reply is a list of {"index", "score"} sorted by score.
- Cohere-style `POST /rerank`, `/v1/rerank` or `/v2/rerank`, as infinity, vLLM and Cohere speak it:
  {"model", "query", "documents", "top_n", "return_documents"}; the reply holds "results", a list of
  {"index", "relevance_score"}.

A reply must give one finite score per document, with the indices 0..n-1 each once; anything else is
`MalformedReply`, counted as an error of kind `malformed` and never scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rerank_bench.errors import UsageError


@dataclass(frozen=True)
class Api:
    name: str
    path: str  # appended to a base URL that has no path of its own
    style: str  # "tei" or "cohere": the request and reply shapes
    info_routes: tuple[str, ...]  # side-effect-free GET routes that identify the server


APIS: dict[str, Api] = {
    "tei": Api("tei", "/rerank", "tei", ("/info",)),
    "infinity": Api("infinity", "/rerank", "cohere", ("/models",)),
    "vllm": Api("vllm", "/v1/rerank", "cohere", ("/version", "/v1/models")),
    "cohere": Api("cohere", "/v2/rerank", "cohere", ()),
}


class MalformedReply(Exception):
    """The server answered 200 with something that is not one score per document."""


def get_api(name: str) -> Api:
    try:
        return APIS[name.strip().lower()]
    except KeyError:
        raise UsageError(f"--api {name!r} is not known", f"choose one of {', '.join(APIS)}") from None


def public_url(url: str) -> str:
    """The URL as results and logs may show it: no user name, password, query string or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def split_url(url: str) -> tuple[str, str | None]:
    """(base URL, explicit rerank path or None). A URL whose path is more than "/" names the route itself."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{public_url(url) or url!r} is not an http(s) URL", "for example http://localhost:8080")
    base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    path = parts.path.rstrip("/")
    return base, (path or None)


def request_body(api: Api, query: str, documents: tuple[str, ...], model: str | None) -> dict[str, Any]:
    if api.style == "tei":
        # raw_scores false: TEI applies the model's activation, as the Cohere-style servers do.
        return {"query": query, "texts": list(documents), "raw_scores": False, "truncate": True, "return_text": False}
    body: dict[str, Any] = {
        "query": query,
        "documents": list(documents),
        "top_n": len(documents),
        "return_documents": False,
    }
    if model:
        body["model"] = model
    return body


def _score(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedReply(f"score {value!r} is not a finite number")
    return float(value)


def parse_reply(api: Api, payload: Any, n_documents: int) -> list[float]:
    """Scores in the documents' order, or MalformedReply saying what is wrong."""
    if api.style == "tei":
        items, score_key = payload, "score"
    else:
        items = payload.get("results") if isinstance(payload, dict) else None
        score_key = "relevance_score"
    if not isinstance(items, list):
        raise MalformedReply(f"the reply has no list of results ({type(payload).__name__})")
    if len(items) != n_documents:
        raise MalformedReply(f"{len(items)} result(s) for {n_documents} document(s)")
    scores: list[float | None] = [None] * n_documents
    for item in items:
        if not isinstance(item, dict):
            raise MalformedReply("a result is not an object")
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_documents:
            raise MalformedReply(f"index {index!r} is not one of 0..{n_documents - 1}")
        if scores[index] is not None:
            raise MalformedReply(f"index {index} appears twice")
        scores[index] = _score(item.get(score_key))
    return [s for s in scores if s is not None]


@dataclass(frozen=True)
class ServerInfo:
    """What a server says of itself on its info routes (all optional)."""

    api: str | None = None
    identity: str = ""  # e.g. "tei 1.5.0 model=BAAI/bge-reranker-base"
    model_id: str | None = None
    max_client_batch_size: int | None = None  # TEI: most texts one request may carry
    # the server's batching setting, where it says it: will-it-run simulates the rows under the setting they ran
    batch_size: int | None = None  # infinity: --batch-size (its /models stats)
    max_batch_tokens: int | None = None  # TEI: --max-batch-tokens (its /info)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def identify(responses: dict[str, Any]) -> ServerInfo:
    """Tell the API from the JSON of the GET routes that answered (route -> parsed body). Pure, for tests."""
    info = responses.get("/info")
    if isinstance(info, dict) and "model_id" in info and "max_client_batch_size" in info:
        kind = info.get("model_type")
        kind_name = next(iter(kind), "") if isinstance(kind, dict) else str(kind or "")
        tokens = _int(info.get("max_batch_tokens"))
        setting = f" max_batch_tokens={tokens}" if tokens else ""
        return ServerInfo(
            api="tei",
            identity=f"tei {info.get('version', '?')} model={info['model_id']} type={kind_name}".strip() + setting,
            model_id=str(info["model_id"]),
            max_client_batch_size=_int(info.get("max_client_batch_size")),
            max_batch_tokens=tokens,
        )
    models = responses.get("/models")
    data = models.get("data") if isinstance(models, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("owned_by") == "infinity":
        first = data[0]
        stats = first.get("stats")
        batch = _int(stats.get("batch_size")) if isinstance(stats, dict) else None
        return ServerInfo(
            api="infinity",
            identity=f"infinity model={first.get('id')} backend={first.get('backend', '?')}"
            + (f" batch_size={batch}" if batch else ""),
            model_id=str(first.get("id")) if first.get("id") is not None else None,
            batch_size=batch,
        )
    v1 = responses.get("/v1/models")
    data = v1.get("data") if isinstance(v1, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("owned_by") == "vllm":
        version = responses.get("/version")
        number = version.get("version", "?") if isinstance(version, dict) else "?"
        return ServerInfo(
            api="vllm", identity=f"vllm {number} model={data[0].get('id')}", model_id=str(data[0].get("id"))
        )
    return ServerInfo()


# Routes asked, in order, when the API is not given: each a plain GET that changes nothing on the server.
DETECTION_ROUTES = ("/info", "/models", "/v1/models", "/version")
