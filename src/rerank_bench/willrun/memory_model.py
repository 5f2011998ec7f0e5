"""Peak memory of a cross-encoder at inference: weights, activations of one layer, and device overheads.

Activations (inference holds one layer's intermediates at a time), for batch B, length L, hidden h,
feed-forward f, heads H, element size e bytes:
  SDPA/flash:  max(5 BLh, 3 BLh + 2 BLf) * e + B L^2                   (boolean padding mask)
  eager:       max(5 BLh + 2 B H L^2, 3 BLh + 2 BLf + B H L^2) * e + 4 B L^2
The eager branch keeps the score matrix and its softmax during attention (2 B H L^2), and the attention
probabilities stay referenced through the feed-forward part of the layer (transformers returns them with
the layer's output); its padding mask is a float tensor. tests/test_memory_model.py checks these against
torch's fake-tensor memory tracker (FakeTensorMode + MemTracker) on a grid of shapes, both attention kinds.

Other families, fitted the same way against the tracker (within 7% on a grid of batch 1-64, length 16-2,048):
  DeBERTa-v2/v3 (no SDPA path in transformers; S = 2 x position_buckets relative positions):
       (4 B H L^2 + B H L S + 2 B S h + 2 S h + 3 BLh) * e + 3 * 8 L^2 + 9 B L^2
    the score matrix, its content-to-position and position-to-content parts before and after their gather,
    the position embeddings projected per batch element, int64 relative-position indices and an int64 mask;
  ModernBERT, SDPA: (5 BLh + 4 BLf) * e + 3 B L^2; eager: max(5 BLh + 4 BLf + B H L^2, 8 BLh + 2 B H L^2) * e
    + 8 B L^2 (its GeGLU feed-forward holds the 2f-wide input, the activation and the product; a global and a
    sliding-window mask);
  decoder rerankers (Qwen3; q = H x head_dim query width, kv = key/value heads x head_dim), one forward pass
    without a KV cache and logits at the last position only (what the yes/no scorer asks transformers for:
    logits_to_keep=1; the full vocabulary at every position would be B L V floats, gigabytes at 32 x 1,024):
    SDPA: (3 BLh + 3 BLf + BLq) * e + 2 B L^2; eager: max((3 BLh + 3 BLf + BLq + B H L^2) * e,
    (BLh + 3 BLq + 2 B H L^2 + 2 BL kv) * e) + 8 B L^2 (within 8%).

Device overheads are named constants, each with its source; a margin covers allocator rounding and
fragmentation. The same numbers feed `will-it-run`'s "max batch that fits".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "int8": 1}
MIB = 2**20

# CUDA context: PyTorch measured 287 MB with lazy module loading and 667 MB without
# (https://github.com/pytorch/pytorch/pull/86509, which made lazy loading PyTorch's default; CUDA itself
# enables it by default on Linux since 12.2: docs.nvidia.com/cuda, programming guide, "Lazy Loading").
# Library handles (cuBLAS, cuDNN) load kernels on first use and add to it. Measured on an H200 (CUDA 13.0,
# driver 580, torch 2.11; benchmarks/gpu_willrun.py, 2026-12-04): NVML's memory of the sweep's process less
# torch's reserved memory, 678-686 MiB over seven models of five families, after their first forward
# passes. The allowance was 500 MiB before that measurement, 180 MiB short of it; now the measured figure.
CUDA_CONTEXT_MIB = 690
# cuBLAS workspace PyTorch allocates per handle: ":4096:2:16:8" = 2 x 4 MiB + 8 x 16 KiB (PyTorch docs,
# CUBLAS_WORKSPACE_CONFIG); Hopper uses 32 MiB. Taken at the larger value.
CUBLAS_WORKSPACE_MIB = 32
# PyTorch's caching allocator keeps the blocks a forward pass freed for reuse, sized for the shapes it saw
# (a query's full batches and its last, partial one differ), so what it reserves exceeds what is allocated
# by a share of the activations, not of the weights. On the H200 (same run as above): torch's allocated
# peak was weights + the activations modelled here within 1% for XLM-R, Gemma and Qwen3-4B, and its
# reserved peak less the weights was 1.13-1.76x the modelled activations (MiniLM-L6 and DeBERTa-v3 at the
# top: the smallest model, where 2 MiB blocks round most, and the one whose activations on CUDA ran 52% over
# the model, fitted on the CPU against the fake-tensor tracker). 1.5x puts the predicted reserved peak at
# -13% to +10% of the measured over the seven, against -30% to +6% with the 10% margin on the whole that
# stood before (a fit to these same seven, not yet checked on another GPU).
ALLOCATOR_ACTIVATION_MARGIN = 0.5
# Apple silicon: Metal keeps at most recommendedMaxWorkingSetSize resident on the GPU, "roughly 65-75% of
# RAM (17.76 GiB on a 24 GB machine)" (https://github.com/sgl-project/sglang/pull/29949; PyTorch exposes it
# as torch.mps.recommended_max_memory(), https://github.com/pytorch/pytorch/pull/128289). The low end:
UNIFIED_MEMORY_FRACTION = 0.67
# A CPU process shares RAM with the OS and everything else: plan on 80% of what the profile has.
CPU_RAM_FRACTION = 0.80
# Fits, but with less than this share of the memory left over: TIGHT.
SAFETY_MARGIN = 0.10


@dataclass(frozen=True)
class ArchShape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    vocab: int
    max_position: int
    params: int  # total parameters (meta-device count)
    linear_params: int  # parameters in Linear weights (what dynamic int8 quantizes)
    family: str = "bert"  # "bert" (BERT, XLM-R, ELECTRA...), "deberta", "modernbert" or "decoder"
    relative_span: int = 0  # DeBERTa's 2k relative positions
    kv_heads: int = 0  # decoders: key/value heads (grouped-query attention); 0: as many as `heads`
    head_dim: int = 0  # decoders: width of one head; 0: hidden / heads


def weights_bytes(shape: ArchShape, dtype: str) -> float:
    if dtype == "int8":  # dynamic quantization: Linear weights int8, embeddings and the rest fp32
        return shape.linear_params * 1 + (shape.params - shape.linear_params) * 4
    return shape.params * BYTES[dtype]


def activation_bytes(shape: ArchShape, batch: int, length: int, dtype: str, attention: str = "sdpa") -> float:
    e = 2 if dtype in ("fp16", "bf16") else 4  # int8 (dynamic) computes activations in fp32
    blh = batch * length * shape.hidden
    blf = batch * length * shape.intermediate
    bl2 = batch * length * length
    if shape.family == "deberta":  # one attention implementation, whatever was asked
        span = shape.relative_span
        scores = batch * shape.heads * length * length
        positions = batch * shape.heads * length * span + 2 * batch * span * shape.hidden + 2 * span * shape.hidden
        return (4 * scores + positions + 3 * blh) * e + 3 * 8 * length * length + 9 * bl2
    if shape.family == "decoder":
        head_dim = shape.head_dim or shape.hidden // shape.heads
        blq = batch * length * shape.heads * head_dim
        blkv = batch * length * (shape.kv_heads or shape.heads) * head_dim
        scores = batch * shape.heads * length * length
        if attention == "eager":
            return max((3 * blh + 3 * blf + blq + scores) * e, (blh + 3 * blq + 2 * scores + 2 * blkv) * e) + 8 * bl2
        return (3 * blh + 3 * blf + blq) * e + 2 * bl2
    if shape.family == "modernbert":
        scores = batch * shape.heads * length * length
        if attention == "eager":
            return max(5 * blh + 4 * blf + scores, 8 * blh + 2 * scores) * e + 8 * bl2
        return (5 * blh + 4 * blf) * e + 3 * bl2
    if attention == "eager":
        scores = batch * shape.heads * length * length
        return max(5 * blh + 2 * scores, 3 * blh + 2 * blf + scores) * e + 4 * bl2
    return max(5 * blh, 3 * blh + 2 * blf) * e + bl2


def usable_memory_mib(kind: str, memory_gib: float, free_gib: float | None = None) -> tuple[float, str]:
    """(MiB a reranker can use, how it was derived)."""
    total = memory_gib * 1024
    if kind in ("nvidia", "amd"):
        base = free_gib * 1024 if free_gib is not None else total
        what = "free now (NVML)" if free_gib is not None else "total"
        return (
            base - CUDA_CONTEXT_MIB - CUBLAS_WORKSPACE_MIB,
            f"{what} minus CUDA context {CUDA_CONTEXT_MIB} MiB and cuBLAS workspace {CUBLAS_WORKSPACE_MIB} MiB",
        )
    if kind == "apple":
        return (
            total * UNIFIED_MEMORY_FRACTION,
            f"{UNIFIED_MEMORY_FRACTION:.0%} of unified memory (Metal working-set limit)",
        )
    base = free_gib * 1024 if free_gib is not None else total * CPU_RAM_FRACTION
    return base, "available RAM now" if free_gib is not None else f"{CPU_RAM_FRACTION:.0%} of RAM"


def peak_mib(shape: ArchShape, batch: int, length: int, dtype: str, attention: str, kind: str) -> float:
    """Weights + activations, plus the caching allocator's margin on the activations on a GPU, in MiB: what
    torch's allocator reserves at the peak (the CUDA context comes off the device's memory separately)."""
    activations = activation_bytes(shape, batch, length, dtype, attention)
    if kind in ("nvidia", "amd", "apple"):
        activations *= 1 + ALLOCATOR_ACTIVATION_MARGIN
    return (weights_bytes(shape, dtype) + activations) / MIB


def max_batch(
    shape: ArchShape,
    length: int,
    dtype: str,
    attention: str,
    kind: str,
    available_mib: float,
    margin: float = SAFETY_MARGIN,
    limit: int = 1024,
) -> int:
    """The largest batch whose peak stays under the available memory less the margin (0: not even 1)."""
    budget = available_mib * (1 - margin)
    best = 0
    batch = 1
    while batch <= limit and peak_mib(shape, batch, length, dtype, attention, kind) <= budget:
        best = batch
        batch += 1 if batch < 8 else 8 if batch < 64 else 32
    return best


def arch_shape(config: Any, causal: bool = False) -> ArchShape:
    """Parameter counts from the model built on the meta device: no weights, no RAM, exact. A reranker scored
    through its language-model head (`causal`) is counted as the causal LM it loads as, lm_head included
    (tied embeddings once)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from rerank_bench.models.flops import relative_span

    builder = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    with torch.device("meta"):
        model = builder.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return ArchShape(
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        intermediate=config.intermediate_size,
        heads=config.num_attention_heads,
        vocab=config.vocab_size,
        max_position=config.max_position_embeddings,
        params=int(params),
        linear_params=int(linear),
        family="decoder" if causal else memory_family(config),
        relative_span=relative_span(config),
        kv_heads=int(getattr(config, "num_key_value_heads", 0) or 0),
        head_dim=int(getattr(config, "head_dim", 0) or 0),
    )


def memory_family(config: Any) -> str:
    model_type = getattr(config, "model_type", "")
    if model_type in ("deberta-v2", "deberta"):
        return "deberta"
    return "modernbert" if model_type == "modernbert" else "bert"
