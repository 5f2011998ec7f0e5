"""What `tune` is asked to do: the request and its defaults, defined once for the command line and the library
(light to import, so the command line builds its help from it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rerank_bench.backends import INT8_VARIANTS, USER_BACKENDS


@dataclass(frozen=True)
class TuneRequest:
    model: str
    depth: int = 50
    budget_ms: float | None = None
    min_agreement: float = 0.99
    max_ndcg_drop: float | None = None  # labelled workloads: the most nDCG@10 a configuration may lose
    quality_requests: int = 32  # labelled requests each configuration and the reference score for nDCG
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    # tokens:N batching searched beside the fixed sizes (length order, each batch within N padded tokens, at
    # most the largest batch size): 1,024 holds 16 pairs of 64 tokens, 4,096 the same at 256
    token_budgets: tuple[int, ...] = (1024, 4096)
    backends: tuple[str, ...] = USER_BACKENDS
    dtypes: tuple[str, ...] = ("fp32", "bf16", "fp16", *INT8_VARIANTS)  # every precision, the cheap ones first
    # Speed features searched beside the runtime's defaults, where they apply (sweep/cases.feature_skip): eager
    # attention on torch (SDPA is transformers' default; eager wins at some small shapes on CPUs), and for decoder
    # rerankers the shared prompt prefix.
    attentions: tuple[str, ...] = ("", "eager")
    prefixes: tuple[str, ...] = ("", "shared")
    thread_counts: tuple[int, ...] | None = None
    # Every configuration times the same first N requests, so none is favoured by drawing shorter ones
    # (request lengths vary by about 30% in the RAG mix; a time budget would give each a different set).
    search_queries: int = 4
    confirm_queries: int = 8
    max_seconds: float = 120.0  # cap per case, for a configuration far slower than the rest
    confirm_rounds: int = 2
    prune_ratio: float = 0.90
    weights: str = "auto"
    allow_random_head: bool = False
    trust_remote_code: bool = False
    revision: str | None = None
    workload_file: Path | None = None
    doc_tokens: str | None = None
    max_length: int | None = None
    instruction: str | None = None  # yes/no rerankers: the prompt's instruction
    device: str = "auto"
    seed: int = 0
    output: Path | None = None
    export_dir: Path | None = None  # copy the chosen configuration's model or export here
