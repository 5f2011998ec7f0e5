"""What a measuring child process tells the parent, one named message per event (sent through a pipe).

A group worker sends Preparing (what takes time before the first case), Loaded, then per case Started, Warm
(after its first query) and Done; a reference worker sends ReferenceScores per depth; either ends with
Finished, or Fatal when it cannot go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preparing:
    what: str  # what the worker is doing before the first case: loading, building a twin, probing the peak


@dataclass(frozen=True)
class Loaded:
    info: dict[str, Any]  # the backend's LoadInfo, as a dict


@dataclass(frozen=True)
class Started:
    index: int


@dataclass(frozen=True)
class Warm:
    index: int
    first_query_s: float


@dataclass(frozen=True)
class Done:
    index: int
    fields: dict[str, Any]  # result columns of this case
    latencies_ms: list[float] = field(default_factory=list)
    agreement_scores: list[list[float]] | None = None  # scores of the agreement requests, for the parent to judge


@dataclass(frozen=True)
class ReferenceScores:
    depth: int
    scores: list[list[float]]  # the agreement requests' scores
    quality: dict[str, Any] | None = None  # the reference's relevance metrics where the workload is labelled


@dataclass(frozen=True)
class Fatal:
    kind: str  # "environment", "model" or "error"
    message: str


@dataclass(frozen=True)
class Finished:
    pass


Message = Preparing | Loaded | Started | Warm | Done | ReferenceScores | Fatal | Finished
