"""What the ONNX Runtime and OpenVINO scorers share: tokenize a request, form batches in the case's order,
pad each batch to its own longest pair, run it, apply the model's activation, return scores in the
request's order.

This is the loop sentence-transformers' `CrossEncoder.predict` runs, written out because those runtimes are
driven directly (see backends/onnx_ort.py for why), and because `--order` must control the batches exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rerank_bench.backends.base import LoadInfo, Scorer
from rerank_bench.workload.records import Request
from rerank_bench.workload.requests import single_token_words


def batch_indices(lengths: list[int], batch_size: int, order: str) -> list[list[int]]:
    """Which pairs go into each batch. given: as they come; length: ascending token length, so each batch
    pads to a length close to all of its pairs (a stable sort, so ties keep the given order); tokens:N: in
    length order, each batch as many pairs as keep pairs x its longest within N padded tokens (a pair longer
    than N goes alone), at most `batch_size`: short pairs share big batches, long ones small."""
    from rerank_bench.backends import token_budget

    indices = list(range(len(lengths)))
    if order == "given":
        return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    indices.sort(key=lambda i: lengths[i])
    budget = token_budget(order)
    if budget is None:
        return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    batches: list[list[int]] = []
    current: list[int] = []
    for i in indices:  # ascending, so the pair joining is the batch's longest
        if current and ((len(current) + 1) * lengths[i] > budget or len(current) == batch_size):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    values = logits[:, 0] if logits.ndim == 2 else logits
    values = values.astype(np.float64)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-values))
    return values


def effective_max_length(requested: int | None, tokenizer: Any, config_limit: int | None = None) -> int:
    if requested is not None:
        return requested
    limit = getattr(tokenizer, "model_max_length", None) or 512
    return int(limit if limit < 100_000 else config_limit or 512)


class RuntimeScorer(Scorer):
    """A scorer over a tokenizer and a runtime's `run(features) -> logits` (an ONNX Runtime session, a compiled
    OpenVINO model): the one scorer for every exported model."""

    def __init__(
        self,
        run: Callable[[dict[str, np.ndarray]], np.ndarray],
        tokenizer: Any,
        max_length: int,
        activation: str,
        input_names: list[str],
        info: LoadInfo,
        shape: dict[str, int] | None = None,
    ) -> None:
        self._run = run
        self.info = info
        self.shape = shape
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.activation = activation
        self.input_names = input_names

    def encoder_shape(self) -> Any:
        from rerank_bench.models.flops import EncoderShape

        return EncoderShape(**self.shape) if self.shape else None

    def words(self) -> list[str]:
        return single_token_words(self.tokenizer)

    def _encode(self, request: Request) -> dict[str, list[list[int]]]:
        return self.tokenizer(
            [request.query] * len(request.documents),
            list(request.documents),
            truncation=True,
            max_length=self.max_length,
        )

    def pair_token_counts(self, request: Request) -> list[int]:
        return [len(ids) for ids in self._encode(request)["input_ids"]]

    def query_token_count(self, query: str) -> int:
        return len(self.tokenizer(query, add_special_tokens=False)["input_ids"])

    def score(self, request: Request, batch_size: int) -> list[float]:
        encoded = self._encode(request)
        ids = encoded["input_ids"]
        lengths = [len(x) for x in ids]
        scores = np.empty(len(ids), dtype=np.float64)
        pad_id = self.tokenizer.pad_token_id or 0
        for batch in batch_indices(lengths, batch_size, self.order):
            width = max(lengths[i] for i in batch)
            features: dict[str, np.ndarray] = {}
            for name in self.input_names:
                fill = pad_id if name == "input_ids" else 0
                array = np.full((len(batch), width), fill, dtype=np.int64)
                for row, i in enumerate(batch):
                    values = (
                        encoded[name][i]
                        if name in encoded
                        else [1] * lengths[i]
                        if name == "attention_mask"
                        else [0] * lengths[i]
                    )
                    array[row, : lengths[i]] = values
                features[name] = array
            self.count_batch(len(batch) * width, sum(lengths[i] for i in batch))
            scores[batch] = activate(np.asarray(self._run(features)), self.activation)
        return scores.tolist()
