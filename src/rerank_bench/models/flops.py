"""Work done by a cross-encoder, counted from its shape and the exact token lengths (no padding).

A multiply-add is 2 FLOPs. Per layer, for a pair of L tokens, hidden size h, feed-forward size f:
  Q, K, V and output projections   4 * 2 * L * h * h
  attention scores and weighted sum 2 * 2 * L * L * h
  feed-forward (two matmuls)        2 * 2 * L * h * f
plus the pooler (2 h^2) and classifier (2 h * labels) on the first token. Embedding lookups, layer norms,
softmax and activations are left out: they are under 1% for these models and are memory-bound anyway.

Families differ in two terms. ModernBERT's feed-forward is gated (GeGLU): its first matrix is 2f wide, so three
f x h matmuls instead of two (6 * L * h * f). DeBERTa's disentangled attention adds content-to-position and
position-to-content scores against 2k relative positions (k = position_buckets): 2 * 2 * L * 2k * h. Its
projections of the 2k position embeddings (4 * 2k * h^2 a layer) are done once per forward pass, whatever the
batch, and are left out like the embedding lookups (at batch 1 and short pairs they are not small: the measured
time says so, the count of useful work does not). ModernBERT's local layers attend to 128 neighbours, but
transformers' eager and SDPA paths compute every score and mask the rest, so L^2 is what runs and is counted.
Decoder rerankers (Qwen3-Reranker) have grouped-query attention, so the projections are q = H x head_dim and
kv = kv_heads x head_dim wide: 2 L h (2q + 2kv) instead of 8 L h^2, scores 4 L^2 q; a gated (SwiGLU) feed-forward
of three matmuls; and instead of a pooler and classifier, the language-model head at the last position only:
2 h V per pair (the whole vocabulary, which is what transformers computes for logits_to_keep=1; the yes/no
scorer then reads two of its entries).
torch's FlopCounterMode counts the same matmuls (tests/test_flops.py checks the two agree on a real graph, per
family).

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
    ffn_matmuls: int = 2  # f x h matmuls in the feed-forward: 2, or 3 where it is gated (GeGLU, SwiGLU)
    relative_span: int = 0  # DeBERTa's 2k relative positions each token scores against (0: none)
    q_width: int = 0  # query (and output) projection width, heads x head_dim; 0: hidden
    kv_width: int = 0  # key and value projection width, kv_heads x head_dim; 0: hidden
    lm_head_vocab: int = 0  # decoders: the vocabulary the last position's logits span (replaces the pooler)

    @classmethod
    def from_config(cls, config: Any, causal: bool = False) -> EncoderShape:
        model_type = getattr(config, "model_type", "")
        hidden, heads = int(config.hidden_size), int(config.num_attention_heads)
        head_dim = int(getattr(config, "head_dim", 0) or 0) or hidden // heads
        kv_heads = int(getattr(config, "num_key_value_heads", 0) or 0) or heads
        return cls(
            layers=int(config.num_hidden_layers),
            hidden=hidden,
            intermediate=int(config.intermediate_size),
            labels=int(getattr(config, "num_labels", 1) or 1),
            ffn_matmuls=3 if model_type == "modernbert" or causal else 2,
            relative_span=relative_span(config),
            q_width=heads * head_dim if causal else 0,
            kv_width=kv_heads * head_dim if causal else 0,
            lm_head_vocab=int(config.vocab_size) if causal else 0,
        )


def relative_span(config: Any) -> int:
    """DeBERTa's relative positions per token: 2 x position_buckets (or 2 x max_relative_positions, or the
    positions themselves, as DebertaV2 reads them); 0 for a model without relative attention."""
    if getattr(config, "model_type", "") not in ("deberta-v2", "deberta") or not getattr(
        config, "relative_attention", False
    ):
        return 0
    buckets = int(getattr(config, "position_buckets", -1) or -1)
    if buckets > 0:
        return 2 * buckets
    span = int(getattr(config, "max_relative_positions", -1) or -1)
    return 2 * (span if span > 0 else int(config.max_position_embeddings))


def pair_flops(shape: EncoderShape, tokens: int) -> float:
    h, f, n = shape.hidden, shape.intermediate, tokens
    q, kv = shape.q_width or h, shape.kv_width or h
    projections = 2 * n * h * (2 * q + 2 * kv)  # 8 n h^2 where every projection is h wide
    per_layer = projections + 4 * n * n * q + 2 * shape.ffn_matmuls * n * h * f + 4 * n * shape.relative_span * h
    head = 2 * h * shape.lm_head_vocab if shape.lm_head_vocab else 2 * h * h + 2 * h * shape.labels
    return float(shape.layers * per_layer + head)


def request_flops(shape: EncoderShape, pair_tokens: Iterable[int]) -> float:
    """Useful FLOPs of one query: the sum over its pairs at their real lengths."""
    return sum(pair_flops(shape, n) for n in pair_tokens)
