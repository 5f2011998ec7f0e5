"""What a sweep is asked to do: the request and its defaults, defined once for the command line and the library
(light to import, so the command line builds its help from it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rerank_bench.errors import UsageError
from rerank_bench.sweep.timing import MeasureSettings

DEFAULT_MODEL = "minilm-l6"
DEFAULT_BATCH_SIZES = (8, 16, 32, 64)
DEFAULT_DEPTHS = (10, 20, 50, 100)

# The default batch sizes are a search for the fastest, not a list the user asked for: at a depth, once a batch
# size runs below this fraction of the best pairs/s so far, the larger default ones are skipped. On CPUs
# throughput falls with batch size past a small one (each batch pads to its longest pair), and these cases
# were the slowest of the default sweep (depth 100 batch 64: 11 s a query on a 2-core host). Batch sizes given
# with --batch-size are all measured.
DEFAULT_PRUNE_RATIO = 0.65


@dataclass(frozen=True)
class SweepRequest:
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    batch_sizes: tuple[int, ...] | None = None  # None: DEFAULT_BATCH_SIZES, pruned (see DEFAULT_PRUNE_RATIO)
    depths: tuple[int, ...] = DEFAULT_DEPTHS
    backends: tuple[str, ...] = ("torch",)
    dtypes: tuple[str, ...] = ("fp32",)
    orders: tuple[str, ...] = ("given",)
    attentions: tuple[str, ...] = ("",)  # sweep/cases.ATTENTIONS; "": the runtime's own
    prefixes: tuple[str, ...] = ("",)  # "shared" (decoder rerankers); "": every pair whole
    thread_counts: tuple[int, ...] | None = None  # None: the usable cores
    max_length: int | None = None
    instruction: str | None = None  # yes/no rerankers: the template's instruction (None: the model card's)
    doc_tokens: str | None = None
    workload_file: Path | None = None
    sample_with_replacement: bool = False
    weights: str = "auto"
    revision: str | None = None
    device: str = "auto"
    threads: int | None = None
    output: Path | None = None
    resume: Path | None = None
    retry_oom: bool = False  # with resume: measure out-of-memory cases again too
    seed: int = 0
    trust_remote_code: bool = False
    allow_random_head: bool = False
    settings: MeasureSettings = field(default_factory=MeasureSettings)
    shard: tuple[int, int] | None = None  # (K, N): the K-th of N slices, 1-based


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`--shard K/N`."""
    if text is None:
        return None
    k, sep, n = text.partition("/")
    try:
        shard = (int(k), int(n))
    except ValueError:
        shard = (0, 0)
    if not sep or not 1 <= shard[0] <= shard[1]:
        raise UsageError(f"--shard {text!r} is not K/N with 1 <= K <= N", "for example --shard 2/4")
    return shard
