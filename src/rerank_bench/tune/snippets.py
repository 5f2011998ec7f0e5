"""Ready-to-paste settings for a configuration `tune` chose: sentence-transformers code and serving flags."""

from __future__ import annotations

import math
from typing import Any

ST_DTYPES = {"fp32": "torch.float32", "bf16": "torch.bfloat16", "fp16": "torch.float16"}
OV_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def sentence_transformers_snippet(model_id: str, config: dict[str, Any]) -> str:
    backend, dtype, batch, threads = config["backend"], config["dtype"], config["batch_size"], config["threads"]
    device = config.get("device") or "cpu"
    lines = ["from sentence_transformers import CrossEncoder", ""]
    if backend == "torch":
        lines[:0] = ["import torch"]
        if device == "cpu":
            lines.append(f"torch.set_num_threads({threads})")
        lines.append(
            f'model = CrossEncoder("{model_id}", device="{device}", model_kwargs={{"dtype": {ST_DTYPES[dtype]}}})'
        )
    elif backend == "onnx" and dtype == "int8":
        lines[1:1] = ["from sentence_transformers.backend import export_dynamic_quantized_onnx_model"]
        lines += [
            f'model = CrossEncoder("{model_id}", backend="onnx")',
            "# once: dynamic int8 with per-channel weights (what rerank-bench measured), saved next to the model",
            'export_dynamic_quantized_onnx_model(model, "avx512_vnni", "reranker-onnx")',
            'model = CrossEncoder("reranker-onnx", backend="onnx",',
            '                     model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx",',
            '                                   "provider": "CPUExecutionProvider"})'
            f"  # {threads} threads: OMP_NUM_THREADS",
        ]
    elif backend == "onnx":
        lines[1:1] = ["from sentence_transformers.backend import export_optimized_onnx_model"]
        lines += [
            f'model = CrossEncoder("{model_id}", backend="onnx")',
            'export_optimized_onnx_model(model, "O2", "reranker-onnx")  # once: fused graph',
            'model = CrossEncoder("reranker-onnx", backend="onnx", model_kwargs={"file_name": "onnx/model_O2.onnx"})',
        ]
    elif backend == "openvino":
        lines.append(
            f'model = CrossEncoder("{model_id}", backend="openvino", model_kwargs={{"ov_config": '
            f'{{"INFERENCE_PRECISION_HINT": "{OV_HINTS[dtype]}", "INFERENCE_NUM_THREADS": "{threads}", '
            '"PERFORMANCE_HINT": "LATENCY"}})'
        )
    order = config.get("order")
    lines.append("")
    if order == "length":
        lines.append("# length order: predict() sorts pairs by length before batching (sentence-transformers >= 6)")
    lines.append(f"scores = model.predict([(query, doc) for doc in candidates], batch_size={batch})")
    return "\n".join(lines)


def tei_flags(config: dict[str, Any], depth: int, pair_tokens_p95: float | None) -> str:
    """text-embeddings-inference batches by tokens: --max-batch-tokens holds one batch of p95-length pairs."""
    tokens = math.ceil(config["batch_size"] * (pair_tokens_p95 or 512))
    flags = f"--max-batch-tokens {tokens} --max-client-batch-size {depth}"
    if config["dtype"] == "fp16" or (config.get("device", "cpu").startswith("cuda") and config["dtype"] != "fp32"):
        flags += " --dtype float16"
    return flags


def settings_for(result: Any, choice: Any) -> dict[str, str]:
    model_id = result.model_id or result.model
    return {
        "sentence_transformers": sentence_transformers_snippet(model_id, choice.config),
        "text_embeddings_inference": tei_flags(choice.config, result.depth, result.pair_tokens_p95),
    }
