"""Ready-to-paste settings for the configuration `tune` chose: code that runs it where the tool ran (sentence-
transformers for torch; the runtime itself for an ONNX or OpenVINO export) and serving flags."""

from __future__ import annotations

import math
from typing import Any

from rerank_bench.backends import token_budget
from rerank_bench.backends.openvino_ov import PRECISION_HINTS

ST_DTYPES = {"fp32": "torch.float32", "bf16": "torch.bfloat16", "fp16": "torch.float16"}
OV_HINTS = PRECISION_HINTS  # the backend's own hints, int8 variants included


def sentence_transformers_snippet(model_id: str, config: dict[str, Any]) -> str:
    """The torch configuration as sentence-transformers code (what the torch backend runs)."""
    dtype, batch, threads = config["dtype"], config["batch_size"], config["threads"]
    device = config.get("device") or "cpu"
    lines = ["import torch", "from sentence_transformers import CrossEncoder", ""]
    if device == "cpu":
        lines.append(f"torch.set_num_threads({threads})")
    attention = f', "attn_implementation": "{config["attention"]}"' if config.get("attention") else ""
    kwargs = f'{{"dtype": {ST_DTYPES[dtype]}{attention}}}'
    lines.append(f'model = CrossEncoder("{model_id}", device="{device}", model_kwargs={kwargs})')
    lines.append("")
    budget = token_budget(str(config.get("order") or ""))
    if budget is not None:
        lines += [
            "pairs = [(query, doc) for doc in candidates]",
            "lengths = [len(ids) for ids in model.tokenizer([q for q, _ in pairs], [d for _, d in pairs], "
            'truncation=True)["input_ids"]]',
            *_token_batches(budget, batch),
            "scores = [0.0] * len(pairs)",
            "for group in batches:",
            "    for i, value in zip(group, model.predict([pairs[i] for i in group], batch_size=len(group))):",
            "        scores[i] = float(value)",
        ]
        return "\n".join(lines)
    if config.get("order") == "length":
        lines.append("# length order: predict() sorts pairs by length before batching (sentence-transformers >= 6)")
    lines.append(f"scores = model.predict([(query, doc) for doc in candidates], batch_size={batch})")
    return "\n".join(lines)


def _token_batches(budget: int, batch: int, indent: str = "") -> list[str]:
    """Code forming tokens:N batches from `lengths` as the tool did (padded_scorer.batch_indices)."""
    return [
        f"{indent}# tokens:{budget}: by length, each batch within {budget} padded tokens, at most {batch} pairs",
        f"{indent}batches, current = [], []",
        f"{indent}for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):",
        f"{indent}    if current and ((len(current) + 1) * lengths[i] > {budget} or len(current) == {batch}):",
        f"{indent}        batches.append(current)",
        f"{indent}        current = []",
        f"{indent}    current.append(i)",
        f"{indent}batches += [current] if current else []",
    ]


def runtime_snippet(folder: str, config: dict[str, Any], meta: dict[str, Any], max_length: int | None) -> str:
    """The onnx or openvino configuration as code that loads its export with the runtime itself and scores
    one request the way the tool measured it: pairs in length order, each batch padded to its longest pair,
    the model's activation on the logits. Runs wherever rerank-bench ran (numpy, transformers and the
    runtime are its own dependencies)."""
    backend, batch, threads = config["backend"], config["batch_size"], config["threads"]
    inputs = meta.get("inputs") or ["input_ids", "attention_mask", "token_type_ids"]
    lines = ["import numpy as np", "from transformers import AutoTokenizer"]
    if backend == "onnx":
        lines += [
            "import onnxruntime as ort",
            "",
            "options = ort.SessionOptions()",
            f"options.intra_op_num_threads = {threads}",
            f'session = ort.InferenceSession("{folder}/model.onnx", options, providers=["CPUExecutionProvider"])',
            "run = lambda features: session.run(None, features)[0]",
        ]
    else:
        config_dict = (
            f'{{"INFERENCE_PRECISION_HINT": "{OV_HINTS[config["dtype"]]}", "INFERENCE_NUM_THREADS": {threads}, '
            '"PERFORMANCE_HINT": "LATENCY"}'
        )
        lines += [
            "import openvino as ov",
            "",
            f'compiled = ov.Core().compile_model("{folder}/model.xml", "CPU", {config_dict})',
            "run = lambda features: compiled(features)[0]",
        ]
    limit = f", max_length={max_length}" if max_length else ""
    budget = token_budget(str(config.get("order") or ""))
    batching = (
        _token_batches(budget, batch, "    ")
        if budget is not None
        else [
            "    order = sorted(range(len(documents)), key=lambda i: lengths[i])  # length order: little padding",
            "    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]",
        ]
    )
    activation = "1.0 / (1.0 + np.exp(-logits))" if meta.get("activation") == "sigmoid" else "logits"
    lines += [
        f'tokenizer = AutoTokenizer.from_pretrained("{folder}/tokenizer")',
        f"INPUTS = {inputs!r}",
        "",
        "",
        f"def score(query, documents, batch_size={batch}):",
        f"    lengths = [len(ids) for ids in tokenizer([query] * len(documents), documents, truncation=True{limit})"
        '["input_ids"]]',
        *batching,
        "    scores = np.empty(len(documents))",
        "    for batch in batches:",
        "        features = tokenizer([query] * len(batch), [documents[i] for i in batch], padding=True,",
        f'                             truncation=True{limit}, return_tensors="np")',
        "        logits = run({name: features[name].astype(np.int64) for name in INPUTS})[:, 0].astype(np.float64)",
        f"        scores[batch] = {activation}",
        "    return scores",
        "",
        "",
        "scores = score(query, candidates)",
    ]
    return "\n".join(lines)


def tei_flags(config: dict[str, Any], depth: int, pair_tokens_p95: float | None) -> str:
    """text-embeddings-inference batches by tokens: --max-batch-tokens holds one batch of p95-length pairs, or
    the tokens:N budget the chosen configuration batched by."""
    budget = token_budget(str(config.get("order") or ""))
    tokens = budget if budget is not None else math.ceil(config["batch_size"] * (pair_tokens_p95 or 512))
    flags = f"--max-batch-tokens {tokens} --max-client-batch-size {depth}"
    if config["dtype"] == "fp16" or (config.get("device", "cpu").startswith("cuda") and config["dtype"] != "fp32"):
        flags += " --dtype float16"
    return flags


def yes_no_snippet(model_id: str, config: dict[str, Any], instruction: str | None, max_length: int | None) -> str:
    """A decoder reranker's configuration as the code that measured it: rerank-bench's own yes/no scorer (the
    model card's template and score; the shared prefix and token batching are its own code, not a library's)."""
    device = config.get("device") or "cpu"
    attention = f', attention="{config["attention"]}"' if config.get("attention") else ""
    lines = ["import dataclasses"] if instruction is not None else []
    lines += [
        "from rerank_bench.backends.torch_st import TorchBackend",
        "from rerank_bench.models.resolve import resolve_model",
        "from rerank_bench.workload.records import Request",
        "",
        f'model = resolve_model("{model_id}", weights="real")',
    ]
    if instruction is not None:
        lines.append(f"model = dataclasses.replace(model, instruction={instruction!r})")
    lines += [
        f'scorer = TorchBackend().load(model, "{device}", "{config["dtype"]}", {config["threads"]}, {max_length!r}'
        f"{attention})",
        f'scorer.set_order("{config.get("order") or "given"}")',
    ]
    if config.get("prefix"):
        lines.append(f'scorer.set_prefix("{config["prefix"]}")  # the prompt and query once per request')
    lines.append(f"scores = scorer.score(Request(query, tuple(candidates)), batch_size={config['batch_size']})")
    return "\n".join(lines)


def settings_for(result: Any, choice: Any) -> dict[str, str]:
    """Code that runs the chosen configuration where the tool ran, and TEI's flags for serving it."""
    config = choice.config
    if getattr(result, "scoring", "classifier") == "yes-no":
        model_id = str(result.model_id or result.model)
        code = yes_no_snippet(model_id, config, getattr(result, "instruction", None), result.max_length)
        # no TEI flags: a decoder reranker is served as a sequence classifier by vLLM (docs/commands.md, endpoint)
        return {"kind": "rerank-bench", "code": code, "text_embeddings_inference": ""}
    if config["backend"] == "torch":
        code, kind = (
            sentence_transformers_snippet(str(result.export_folder or result.model_id or result.model), config),
            "sentence-transformers",
        )
    else:
        code = runtime_snippet(str(result.export_folder), config, result.export_meta or {}, result.max_length)
        kind = "onnxruntime" if config["backend"] == "onnx" else "openvino"
    return {
        "kind": kind,
        "code": code,
        "text_embeddings_inference": tei_flags(config, result.depth, result.pair_tokens_p95),
    }
