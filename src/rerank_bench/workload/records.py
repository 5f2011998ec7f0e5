"""The request records every workload source yields (synthetic mix, JSONL file, BEIR folder)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    query: str
    documents: tuple[str, ...]
    # Graded relevance of each document where the workload is labelled (None: unlabelled), and the grades of
    # relevant documents the candidates miss (a first stage that did not retrieve them): recall and nDCG's
    # ideal ranking count those too.
    labels: tuple[int, ...] | None = None
    outside: tuple[int, ...] = ()


@dataclass(frozen=True)
class FileRequest:
    line: int  # the line of a JSONL file; for a BEIR folder, the query's position in its qrels
    query: str
    documents: tuple[str, ...]
    labels: tuple[int, ...] | None = None
    outside: tuple[int, ...] = ()
