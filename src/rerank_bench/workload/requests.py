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
from rerank_bench.workload.records import FileRequest, Request

RAG_QUERY_TOKENS = (8, 20)
RAG_DOC_MEAN_TOKENS = 150.0
RAG_DOC_SIGMA = 0.6  # log-normal shape: p50 about 125, p95 about 330, p99 about 500 tokens
RAG_DOC_MIN_TOKENS = 16
PAIR_SPECIAL_TOKENS = 4  # [CLS] q [SEP] d [SEP] is 3, <s> q </s></s> d </s> is 4: leave room for the larger
REQUESTS_PER_CASE = 32  # distinct requests a case cycles through


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
    seed: int | str,
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


def _labels(obj: dict[str, Any], where: str, count: int) -> tuple[int, ...] | None:
    """A line's "labels" (a graded relevance per document) or "relevant" (indices of the relevant ones)."""
    labels, relevant = obj.get("labels"), obj.get("relevant")
    if labels is not None and relevant is not None:
        raise WorkloadError(f'{where}: give "labels" or "relevant", not both')
    if labels is not None:
        if not isinstance(labels, list) or len(labels) != count:
            raise WorkloadError(f'{where}: "labels" must be a list of {count} grades, one per document')
        if not all(isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in labels):
            raise WorkloadError(f'{where}: "labels" must hold whole numbers 0 or more (graded relevance)')
        return tuple(labels)
    if relevant is not None:
        if not isinstance(relevant, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in relevant):
            raise WorkloadError(f'{where}: "relevant" must be a list of document indices (0-based)')
        bad = [i for i in relevant if not 0 <= i < count]
        if bad:
            raise WorkloadError(f'{where}: "relevant" index {bad[0]} is outside the {count} documents (0-based)')
        return tuple(1 if i in set(relevant) else 0 for i in range(count))
    return None


def load_workload_file(path: Path) -> list[FileRequest]:
    """JSONL: one {"query": str, "documents": [str, ...]} per line, optionally with "labels" or "relevant";
    or a BEIR-format folder (workload/beir.py). Errors name the file and line."""
    if path.is_dir():
        from rerank_bench.workload.beir import load_beir

        return load_beir(path)
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
        labels = _labels(obj, f"{path}:{number}", len(docs))
        requests.append(FileRequest(number, obj["query"], tuple(docs), labels))
    if not requests:
        raise WorkloadError(f"workload file {path} holds no requests")
    labelled = sum(r.labels is not None for r in requests)
    if 0 < labelled < len(requests):
        first = next(r.line for r in requests if r.labels is None)
        raise WorkloadError(f"{path}:{first}: no labels, where {labelled} other lines have them; label every line")
    return requests


def labelled_workload(path: Path) -> bool:
    """Whether the workload file or folder carries relevance labels (a file labels every line or none)."""
    return load_workload_file(path)[0].labels is not None


def workload_digest(path: Path) -> str:
    """8 hex digits of the workload's content (a folder: its files, names included), for the row's label."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path)).encode() if path.is_dir() else b"")
        digest.update(file.read_bytes())
    return digest.hexdigest()[:8]


def requests_from_file(
    file_requests: list[FileRequest], depth: int, seed: int, with_replacement: bool, path: str = "workload"
) -> list[Request]:
    """Cut (or, with replacement, sample) each request to `depth` documents; the labels go with them, and
    relevant documents cut off join the ones the candidates miss."""
    rng = random.Random(seed)
    out = []
    for req in file_requests:
        n = len(req.documents)
        if n >= depth:
            keep = list(range(depth))
        elif with_replacement:
            keep = rng.choices(range(n), k=depth)
        else:
            raise WorkloadError(
                f"{path}:{req.line}: depth {depth} needs {depth} documents, this request has {n}",
                "lower --depth, or pass --sample-with-replacement",
            )
        docs = tuple(req.documents[i] for i in keep)
        if req.labels is None:
            out.append(Request(req.query, docs))
            continue
        kept = set(keep)
        dropped = tuple(req.labels[i] for i in range(n) if i not in kept and req.labels[i] > 0)
        labels = tuple(req.labels[i] for i in keep)
        out.append(Request(req.query, docs, labels, req.outside + dropped))
    return out


def single_token_words(tokenizer: Any, limit: int = 4000) -> list[str]:
    """Lowercase alphabetic vocabulary words that the tokenizer encodes as exactly one token where a workload
    puts them: after a space. (A byte-level BPE without a prefix space, as Qwen2's, has "Ġword" in its vocabulary
    but splits "word" at the start of a text; WordPiece, SentencePiece and prefix-space BPE encode both alike.)"""
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
    words: list[str] = []
    for start in range(0, len(candidates), 512):
        chunk = candidates[start : start + 512]
        encoded = tokenizer([" " + w for w in chunk], add_special_tokens=False)["input_ids"]
        words.extend(w for w, ids in zip(chunk, encoded, strict=False) if len(ids) == 1)
        if len(words) >= limit:
            break
    return words[:limit]
