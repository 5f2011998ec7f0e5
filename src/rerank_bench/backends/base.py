"""The backend interface: load a model once, then score requests end to end."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

from rerank_bench.models.resolve import ResolvedModel
from rerank_bench.workload.records import Request


class MemoryTracker(Protocol):
    def begin(self) -> None: ...
    def end(self) -> dict[str, float | None]: ...


@dataclass
class LoadInfo:
    """What loading found out, for every row of the model's cases."""

    load_s: float
    weights: str  # "real", "random" or "real+random-head"
    tokenizer: str  # "own" or "offline"
    max_length: int
    revision: str | None = None
    gpu_name: str | None = None
    export_s: float | None = None  # time spent exporting/quantizing in this run; 0 when found in the cache
    backend_options: str = ""  # what the runtime was set up with (opset, fusion, quantization, hints)


class Scorer(ABC):
    """One model loaded on one device. `score` is what a timed query runs."""

    info: LoadInfo
    # How the request's candidates are batched: "given" or "length" (see README, --order). Set per case.
    order: str = "given"

    # How a request's pairs are laid out: "" each pair whole, as a user's code sends it; "shared": the tokens
    # every pair begins with (instruction and query) run once per request and each pair's rest against their
    # keys and values (decoder rerankers; a scorer that can says so in supports_shared_prefix). Set per case.
    prefix_mode: str = ""
    supports_shared_prefix: bool = False

    def set_order(self, order: str) -> None:
        self.order = order

    def set_prefix(self, mode: str) -> None:
        if mode and not self.supports_shared_prefix:
            raise ValueError(f"this scorer has no {mode!r} prefix layout")  # the planner skips such cases
        self.prefix_mode = mode

    @abstractmethod
    def words(self) -> list[str]:
        """Single-token words of this model's tokenizer, for synthetic workloads."""

    @abstractmethod
    def pair_token_counts(self, request: Request) -> list[int]:
        """Tokens per (query, document) pair after truncation, special tokens included."""

    @abstractmethod
    def query_token_count(self, query: str) -> int: ...

    @abstractmethod
    def score(self, request: Request, batch_size: int) -> list[float]:
        """Scores for the request's documents, in their given order; returns after the device is done."""

    # Tokens computed (padding included) and real tokens since the last reset; `score` adds to them.
    _computed: int = 0
    _real: int = 0

    def count_batch(self, computed: int, real: int) -> None:
        self._computed += computed
        self._real += real

    def padding_counters(self) -> tuple[int, int]:
        """(tokens computed including padding, real tokens) since the last reset."""
        return self._computed, self._real

    def reset_padding_counters(self) -> None:
        self._computed = self._real = 0

    def memory_tracker(self) -> MemoryTracker:
        """Peak memory of this process during a case; GPU backends return their device's tracker."""
        from rerank_bench.backends.memory import RssTracker

        return RssTracker()

    def encoder_shape(self) -> Any:
        """The model's EncoderShape (flops.py) for counting work, or None where unknown."""
        return None

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return is_out_of_memory(exc)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class Backend(ABC):
    name: str

    @abstractmethod
    def load(
        self,
        model: ResolvedModel,
        device: str,
        dtype: str,
        threads: int,
        max_length: int | None,
        calibration: dict[str, Any] | None = None,  # static int8: where its calibration requests come from
        attention: str = "",  # torch: the attention implementation asked of transformers ("": its own)
    ) -> Scorer: ...


# What running out of memory says, wherever it happens: CUDA and MPS ("out of memory"), torch's CPU allocator
# ("DefaultCPUAllocator: can't allocate memory"), mmap under `ulimit -v` ("Cannot allocate memory", ENOMEM),
# C++ allocators (std::bad_alloc) and ONNX Runtime's arena ("Failed to allocate memory").
OOM_MESSAGES = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "bad_alloc",
    "failed to allocate memory",
    "unable to allocate",
)


def is_out_of_memory(exc: BaseException) -> bool:
    """The one classifier of out-of-memory failures, for every backend and device."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return any(message in text for message in OOM_MESSAGES)


def describe_exception(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
