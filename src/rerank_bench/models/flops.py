"""Work done by a cross-encoder, counted from its shape and the exact token lengths (no padding).

A multiply-add is 2 FLOPs. Per layer, for a pair of L tokens, hidden size h, feed-forward size f:
  Q, K, V and output projections   4 * 2 * L * h * h
  attention scores and weighted sum 2 * 2 * L * L * h
  feed-forward (two matmuls)        2 * 2 * L * h * f
plus the pooler (2 h^2) and classifier (2 h * labels) on the first token. Embedding lookups, layer norms,
softmax and activations are left out: they are under 1% for these models and are memory-bound anyway.
torch's FlopCounterMode counts the same matmuls (tests/test_flops.py checks the two agree on a real graph).

The same count serves the sweep (achieved GFLOP/s) and will-it-run (predicted time per batch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EncoderShape:
    layers: int
    hidden: int
    intermediate: int
    labels: int = 1

    @classmethod
    def from_config(cls, config: Any) -> EncoderShape:
        return cls(
            layers=int(config.num_hidden_layers),
            hidden=int(config.hidden_size),
            intermediate=int(config.intermediate_size),
            labels=int(getattr(config, "num_labels", 1) or 1),
        )


def pair_flops(shape: EncoderShape, tokens: int) -> float:
    h, f, n = shape.hidden, shape.intermediate, tokens
    per_layer = 8 * n * h * h + 4 * n * n * h + 4 * n * h * f
    return float(shape.layers * per_layer + 2 * h * h + 2 * h * shape.labels)


def request_flops(shape: EncoderShape, pair_tokens: Iterable[int]) -> float:
    """Useful FLOPs of one query: the sum over its pairs at their real lengths."""
    return sum(pair_flops(shape, n) for n in pair_tokens)
