"""Static (calibrated) int8 for the exported backends: what each variant sets, and the calibration requests.

Calibration requests come from the workload but never from the requests a sweep scores for agreement or
relevance: a synthetic workload's are drawn with their own seed ("calibration", where cases use SEED:DEPTH);
a file's are its requests after the first `reserved` (the agreement and quality requests come from the
front). CALIBRATION_REQUESTS requests of CALIBRATION_DEPTH documents: 128 pairs, the sample size NNCF's
and ONNX Runtime's examples use for BERT-size models.

Variants (the dtype column names them; backend_options says what was set):
- onnx `int8-static`: `onnxruntime.quantization.quantize_static`, QDQ format, per-channel QInt8 weights,
  QUInt8 activations with MinMax ranges, the weight MatMuls only (`MatMulConstBOnly`: attention's
  activation x activation products stay fp32, where a shared scale loses most), on the fused graph, with
  the classifier head left in fp32.
- openvino `int8-static`: `nncf.quantize` with `model_type=TRANSFORMER` (NNCF's transformer patterns: no
  quantizers on softmax, layer-norm and GELU inputs), the MIXED preset (asymmetric activations, symmetric
  weights), fast bias correction, and the classifier head in its ignored scope.
- openvino `int8-sq`: the same with SmoothQuant (alpha 0.95 on MatMuls, NNCF's transformer default), which
  moves activation outliers into the weights before quantizing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rerank_bench.errors import ModelError

CALIBRATION_REQUESTS = 8
CALIBRATION_DEPTH = 16
CALIBRATION_SEED = "calibration"
SMOOTH_QUANT_ALPHA = 0.95


def calibration_recipe(workload: dict[str, Any], reserved: int) -> dict[str, Any]:
    """Where the calibration requests come from, as plain data (part of the export's cache key)."""
    if workload["kind"] == "file":
        return {"kind": "file", "path": workload["path"], "reserved": reserved}
    return {"kind": "synthetic", "doc_tokens": workload["doc_tokens"]}


def recipe_digest(recipe: dict[str, Any] | None) -> str:
    if recipe is None:
        return ""
    identity = dict(recipe)
    if identity.get("kind") == "file":
        from rerank_bench.workload.requests import workload_digest

        identity["content"] = workload_digest(Path(identity["path"]))
        identity.pop("path")
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


def calibration_pairs(recipe: dict[str, Any] | None, tokenizer: Any, max_length: int) -> list[tuple[str, str]]:
    from rerank_bench.workload.requests import (
        LengthSpec,
        load_workload_file,
        single_token_words,
        synthetic_requests,
    )

    recipe = recipe or {"kind": "synthetic", "doc_tokens": {"kind": "rag", "low": 0, "high": 0}}
    if recipe["kind"] == "file":
        file_requests = load_workload_file(Path(recipe["path"]))[recipe["reserved"] :]
        if not file_requests:
            raise ModelError(
                f"calibrating int8 needs requests in {recipe['path']} beyond the first {recipe['reserved']} "
                "(those are scored for agreement and relevance, so they are never calibrated on)",
                "add requests to the workload, or use dynamic int8 (--dtype int8)",
            )
        chosen = file_requests[:CALIBRATION_REQUESTS]
        return [(r.query, d) for r in chosen for d in r.documents[:CALIBRATION_DEPTH]]
    words = single_token_words(tokenizer)
    spec = LengthSpec(**recipe["doc_tokens"])
    requests = synthetic_requests(
        words, CALIBRATION_DEPTH, spec, max_length, seed=CALIBRATION_SEED, count=CALIBRATION_REQUESTS
    )
    return [(r.query, d) for r in requests for d in r.documents]


def calibration_features(
    pairs: list[tuple[str, str]], tokenizer: Any, names: list[str], max_length: int, batch: int = 8
) -> list[dict[str, Any]]:
    """Batches of tokenized pairs as numpy inputs named as the exported graph names them."""
    out = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        encoded = tokenizer(
            [q for q, _ in chunk],
            [d for _, d in chunk],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        out.append({name: encoded[name].astype("int64") for name in names if name in encoded})
    return out


def head_nodes(names: list[str]) -> list[str]:
    """The classifier's nodes in an exported graph (kept in higher precision: one output, tiny work)."""
    return [n for n in names if "classifier" in n or "/pooler/" in n or n.startswith("pooler")]


def quantize_onnx_static(folder: Path, features: list[dict[str, Any]]) -> str:
    """Replace folder/model.onnx (fp32, fused) with its static QDQ int8 form; returns what was set."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(features)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.items, None)

    source = folder / "model.onnx"
    graph = onnx.load(str(source), load_external_data=False).graph
    keep = head_nodes([node.name for node in graph.node])
    target = folder / "model_int8.onnx"
    quantize_static(
        str(source),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=keep,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"MatMulConstBOnly": True, "ActivationSymmetric": False, "WeightSymmetric": True},
    )
    target.replace(source)
    return (
        f"static int8 (QDQ, per-channel QInt8 weights, QUInt8 MinMax activations, weight MatMuls only, "
        f"{len(keep)} head nodes fp32, {len(features)} calibration batches)"
    )


def quantize_openvino(model: Any, features: list[dict[str, Any]], dtype: str) -> tuple[Any, str]:
    """NNCF post-training quantization of an OpenVINO model; returns (quantized model, what was set)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    names = [op.get_friendly_name() for op in model.get_ops()]
    keep = head_nodes(names)
    smooth = SMOOTH_QUANT_ALPHA if dtype == "int8-sq" else -1.0  # -1: SmoothQuant off
    advanced = AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=smooth))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(features),
        preset=nncf.QuantizationPreset.MIXED,
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(features),
        fast_bias_correction=True,
        ignored_scope=nncf.IgnoredScope(names=keep, validate=False) if keep else None,
        advanced_parameters=advanced,
    )
    what = f"SmoothQuant alpha {smooth:.2f}, " if smooth > 0 else ""
    return quantized, (
        f"NNCF {nncf.__version__} static int8 ({what}transformer patterns, mixed preset, fast bias correction, "
        f"{len(keep)} head ops fp32, {len(features)} calibration batches)"
    )
