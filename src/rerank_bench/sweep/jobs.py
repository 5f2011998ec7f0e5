"""What the parent sends a measuring child process: typed jobs, as the replies are (messages.py).

They cross a process boundary by pickling, so they hold plain data only: the model as its payload, the
workload recipe as a dict (workload/build.py reads it), settings as the dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rerank_bench.sweep.timing import MeasureSettings


@dataclass(frozen=True)
class LoadSpec:
    """How a group's model is loaded: one backend, precision, device, thread count and length."""

    backend: str
    dtype: str
    device: str
    threads: int
    max_length: int | None
    fingerprint: str | None = None  # the machine's, for its cached matmul peak; None: no peak
    attention: str = ""  # the attention implementation asked of transformers; "": the runtime's own


@dataclass(frozen=True)
class CaseJob:
    index: int
    depth: int
    batch_size: int
    seed: int
    order: str
    prefix: str = ""  # "shared": a decoder reranker's common prompt prefix once per request


@dataclass(frozen=True)
class GroupJob:
    """One load group: the model loaded once, then its cases in order."""

    model: dict[str, Any]  # ResolvedModel.to_payload()
    load: LoadSpec
    cases: tuple[CaseJob, ...]
    workload: dict[str, Any]
    settings: MeasureSettings
    agreement: bool  # score the agreement requests after timing, for the parent to judge
    prune_ratio: float | None  # stop larger batch sizes at a depth once one is below this share of the best


@dataclass(frozen=True)
class ReferenceJob:
    """Reference scores (torch fp32, given order) of the agreement requests at each depth."""

    model: dict[str, Any]
    load: LoadSpec
    depths: tuple[int, ...]
    seed: int
    workload: dict[str, Any]
    quality_requests: int
