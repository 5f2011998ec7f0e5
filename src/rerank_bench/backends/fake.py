"""A simulated backend: scripted latencies and failures, no model, no torch.

Model spec: `fake:` followed by options separated by ';' (or ',' where no model list is split on commas, as
--model's is), e.g. `fake:ms_per_pair=0.05;oom_at_batch=32`. Options:
  ms_per_pair, ms_per_batch   simulated cost (sleep) per pair and per batch
  ms_per_pair_squared         a further cost per batch of this times its size squared (as padding makes
                              large batches slower per pair on CPUs)
  oom_at_batch=B              batches of B pairs or more raise an out-of-memory error
  cpu_oom_at_batch=B          batch size B fails as torch's CPU allocator does when memory runs out
  error_at_batch=B            batch size B raises RuntimeError
  crash_at_batch=B            batch size B kills the worker process (as the kernel's OOM killer would)
  hang_at_batch=B             batch size B never returns (for the per-case timeout)
  random_head=1               loading reports a newly initialised classifier head
Tokens are words: one word is one token, plus 3 special tokens per pair.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from typing import Any

from rerank_bench.backends.base import Backend, LoadInfo, Scorer
from rerank_bench.errors import ModelError
from rerank_bench.models.heads import refuse_random_head
from rerank_bench.models.resolve import ResolvedModel
from rerank_bench.workload.records import Request

SPECIAL_TOKENS = 3


class OutOfMemoryError(RuntimeError):
    """Named like torch's, which is how the worker recognises it."""


def parse_fake_spec(spec: str) -> dict[str, float]:
    options: dict[str, float] = {}
    body = spec.removeprefix("fake:")
    for part in filter(None, (p.strip() for p in body.replace(";", ",").split(","))):
        key, _, value = part.partition("=")
        try:
            options[key.strip()] = float(value)
        except ValueError:
            raise ModelError(f"fake model option {part!r} is not key=number") from None
    return options


class FakeScorer(Scorer):
    def __init__(self, options: dict[str, float], max_length: int, weights: str) -> None:
        self.options = options
        self.max_length = max_length
        self.info = LoadInfo(load_s=0.0, weights=weights, tokenizer="offline", max_length=max_length)

    def encoder_shape(self) -> Any:
        from rerank_bench.models.flops import EncoderShape

        return EncoderShape(layers=2, hidden=64, intermediate=256)  # a nominal shape, so FLOP columns are tested

    def words(self) -> list[str]:
        return [f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}x" for i in range(600)]

    def _pair_len(self, query: str, doc: str) -> int:
        return min(self.max_length, len(query.split()) + len(doc.split()) + SPECIAL_TOKENS)

    def pair_token_counts(self, request: Request) -> list[int]:
        return [self._pair_len(request.query, d) for d in request.documents]

    def query_token_count(self, query: str) -> int:
        return len(query.split())

    def _trigger(self, name: str, batch_size: int) -> bool:
        value = self.options.get(name)
        return value is not None and batch_size == int(value)

    def score(self, request: Request, batch_size: int) -> list[float]:
        oom_at = self.options.get("oom_at_batch")
        if oom_at is not None and batch_size >= int(oom_at):
            raise OutOfMemoryError(f"fake out of memory at batch {batch_size}")
        if self._trigger("cpu_oom_at_batch", batch_size):
            raise RuntimeError(
                "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1073741824 bytes. "
                "Error code 12 (Cannot allocate memory)"
            )
        if self._trigger("error_at_batch", batch_size):
            raise RuntimeError(f"fake failure at batch {batch_size}")
        if self._trigger("crash_at_batch", batch_size):
            os.kill(os.getpid(), signal.SIGKILL)
        if self._trigger("hang_at_batch", batch_size):
            time.sleep(3600)
        lengths = sorted(self.pair_token_counts(request), reverse=True)
        if self.order == "given":  # as CrossEncoder.predict batches: longest first
            batches = [lengths[i : i + batch_size] for i in range(0, len(lengths), batch_size)]
        else:  # length or tokens:N: the batches the real scorers form
            from rerank_bench.backends.padded_scorer import batch_indices

            batches = [[lengths[i] for i in b] for b in batch_indices(lengths, batch_size, self.order)]
        self.count_batch(sum(max(b) * len(b) for b in batches), sum(lengths))
        options = self.options
        cost_ms = (
            options.get("ms_per_pair", 0.05) * len(lengths)
            + options.get("ms_per_batch", 0.2) * len(batches)
            + options.get("ms_per_pair_squared", 0.0) * sum(len(b) ** 2 for b in batches)
        )
        time.sleep(cost_ms / 1000.0)
        return [int(hashlib.sha256(d.encode()).hexdigest()[:8], 16) / 2**32 for d in request.documents]


class FakeBackend(Backend):
    name = "fake"

    def load(
        self,
        model: ResolvedModel,
        device: str,
        dtype: str,
        threads: int,
        max_length: int | None,
        calibration: dict[str, Any] | None = None,  # unused: nothing here is calibrated
        attention: str = "",  # recorded only, so tests see it reach the worker
    ) -> FakeScorer:
        if model.source != "fake":
            raise ModelError(f"the fake backend measures only fake: models, not {model.spec!r}")
        options = parse_fake_spec(model.spec)
        weights = "random"
        if options.get("random_head"):
            refuse_random_head(
                f"loading {model.spec} left its classifier head newly initialised (fake)", model.allow_random_head
            )
            weights = "random+random-head"
        scorer = FakeScorer(options, max_length or model.max_length or 512, weights)
        if attention:
            scorer.info.backend_options = f"attention {attention}"
        return scorer
