"""What a reranking request looks like: one query and D candidate documents.

Synthetic workloads are built in token space: every word is a vocabulary entry that the model's own
tokenizer encodes as exactly one token, so a document of n words is n tokens long, whatever the tokenizer.
The lengths actually seen by the model are then measured with its tokenizer (token statistics in each row).

The default length mix (`rag`) imitates retrieval-augmented generation: queries of 8-20 tokens, documents
drawn from a log-normal distribution of chunk lengths (mean about 150 tokens, long tail up to the model's
maximum), seeded and reproducible.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerank_bench.errors import WorkloadError

RAG_QUERY_TOKENS = (8, 20)
RAG_DOC_MEAN_TOKENS = 150.0
RAG_DOC_SIGMA = 0.6  # log-normal shape: p50 about 125, p95 about 330, p99 about 500 tokens
RAG_DOC_MIN_TOKENS = 16
PAIR_SPECIAL_TOKENS = 4  # [CLS] q [SEP] d [SEP] is 3, <s> q </s></s> d </s> is 4: leave room for the larger
REQUESTS_PER_CASE = 32  # distinct requests a case cycles through


@dataclass(frozen=True)
class Request:
    query: str
    documents: tuple[str, ...]


@dataclass(frozen=True)
class LengthSpec:
    """How long documents are: the RAG mix, a fixed length, or uniform in [low, high] (tokens)."""

    kind: str  # "rag", "fixed", "uniform"
    low: int = 0
    high: int = 0

    def label(self) -> str:
        if self.kind == "fixed":
            return f"fixed:{self.low}"
        if self.kind == "uniform":
            return f"uniform:{self.low}:{self.high}"
        return "rag"


def parse_doc_tokens(text: str | None) -> LengthSpec:
    """`--doc-tokens`: None or "rag" for the RAG mix, "N" for fixed, "A:B" for uniform."""
    if text is None or text.strip().lower() == "rag":
        return LengthSpec("rag")
    match = re.fullmatch(r"\s*(\d+)\s*(?::\s*(\d+)\s*)?", text)
    if not match:
        raise WorkloadError(
            f"--doc-tokens {text!r} is not N or A:B", "for example --doc-tokens 200 or --doc-tokens 50:400"
        )
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) else low
    if low < 1 or high < low:
        raise WorkloadError(f"--doc-tokens {text!r} needs 1 <= A <= B", "for example --doc-tokens 50:400")
    return LengthSpec("fixed" if low == high else "uniform", low, high)


def _doc_length(rng: random.Random, spec: LengthSpec, cap: int) -> int:
    if spec.kind == "fixed":
        n = spec.low
    elif spec.kind == "uniform":
        n = rng.randint(spec.low, spec.high)
    else:
        mu = math.log(RAG_DOC_MEAN_TOKENS) - RAG_DOC_SIGMA**2 / 2
        n = round(rng.lognormvariate(mu, RAG_DOC_SIGMA))
        n = max(RAG_DOC_MIN_TOKENS, n)
    return max(1, min(n, cap))


def synthetic_requests(
    words: list[str],
    depth: int,
    doc_tokens: LengthSpec,
    max_length: int,
    seed: int,
    count: int = REQUESTS_PER_CASE,
) -> list[Request]:
    """`count` requests of `depth` documents each, from single-token `words`; the same for the same seed.

    Documents longer than max_length - query - specials are cut there: beyond that the tokenizer would
    truncate them anyway. An explicit --doc-tokens longer than that is truncated by the tokenizer, as in use.
    """
    if not words:
        raise WorkloadError("the tokenizer offers no single-token words to build a workload from")
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        q_len = rng.randint(*RAG_QUERY_TOKENS)
        cap = max(1, max_length - q_len - PAIR_SPECIAL_TOKENS)
        if doc_tokens.kind != "rag":
            cap = max(cap, doc_tokens.high)
        query = " ".join(rng.choices(words, k=q_len))
        docs = tuple(" ".join(rng.choices(words, k=_doc_length(rng, doc_tokens, cap))) for _ in range(depth))
        requests.append(Request(query, docs))
    return requests


@dataclass(frozen=True)
class FileRequest:
    line: int
    query: str
    documents: tuple[str, ...]


def load_workload_file(path: Path) -> list[FileRequest]:
    """JSONL: one {"query": str, "documents": [str, ...]} per line. Errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkloadError(f"workload file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"cannot read workload file {path}: {exc}") from None
    requests: list[FileRequest] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("query"), str):
            raise WorkloadError(
                f'{path}:{number}: needs a string "query"', 'each line: {"query": "...", "documents": ["...", ...]}'
            )
        docs = obj.get("documents")
        if not isinstance(docs, list) or not docs or not all(isinstance(d, str) for d in docs):
            raise WorkloadError(f'{path}:{number}: "documents" must be a non-empty list of strings')
        requests.append(FileRequest(number, obj["query"], tuple(docs)))
    if not requests:
        raise WorkloadError(f"workload file {path} holds no requests")
    return requests


def requests_from_file(
    file_requests: list[FileRequest], depth: int, seed: int, with_replacement: bool, path: str = "workload"
) -> list[Request]:
    """Cut (or, with replacement, sample) each request to `depth` documents."""
    rng = random.Random(seed)
    out = []
    for req in file_requests:
        if len(req.documents) >= depth:
            out.append(Request(req.query, req.documents[:depth]))
        elif with_replacement:
            out.append(Request(req.query, tuple(rng.choices(req.documents, k=depth))))
        else:
            raise WorkloadError(
                f"{path}:{req.line}: depth {depth} needs {depth} documents, this request has {len(req.documents)}",
                "lower --depth, or pass --sample-with-replacement",
            )
    return out


def single_token_words(tokenizer: Any, limit: int = 4000) -> list[str]:
    """Lowercase alphabetic vocabulary words that the tokenizer encodes, alone, as exactly one token."""
    vocab = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_tokens", []))
    candidates = []
    for token in sorted(vocab, key=vocab.__getitem__):
        if token in special:
            continue
        word = token[1:] if token.startswith(("\u2581", "\u0120")) else token  # sentencepiece / byte-level BPE
        if 3 <= len(word) <= 12 and word.isascii() and word.isalpha() and word.islower():
            candidates.append(word)
    candidates = list(dict.fromkeys(candidates))
    words = []
    for start in range(0, len(candidates), 512):
        chunk = candidates[start : start + 512]
        encoded = tokenizer(chunk, add_special_tokens=False)["input_ids"]
        words.extend(w for w, ids in zip(chunk, encoded, strict=False) if len(ids) == 1)
        if len(words) >= limit:
            break
    return words[:limit]
