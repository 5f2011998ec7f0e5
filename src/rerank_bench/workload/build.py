"""The requests of one case, from the workload description a plan carries (synthetic length mix or a file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rerank_bench.workload.records import Request
from rerank_bench.workload.requests import (
    REQUESTS_PER_CASE,
    LengthSpec,
    load_workload_file,
    requests_from_file,
    synthetic_requests,
)


def build_requests(
    workload: dict[str, Any],
    words: list[str],
    depth: int,
    max_length: int,
    seed: int,
    count: int = REQUESTS_PER_CASE,
) -> list[Request]:
    """The requests of one case; identical for every batch size at the same depth and seed. `count` distinct
    synthetic requests (a served endpoint asks for more: a server with a response or prefix cache must not be
    flattered by a few bodies replayed)."""
    case_seed = f"{seed}:{depth}"
    if workload["kind"] == "file":
        file_requests = load_workload_file(Path(workload["path"]))
        return requests_from_file(file_requests, depth, seed, workload["with_replacement"], workload["path"])
    spec = LengthSpec(**workload["doc_tokens"])
    return synthetic_requests(words, depth, spec, max_length, seed=case_seed, count=count)
