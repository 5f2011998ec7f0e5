"""The onnx backend: the model exported to ONNX, transformer-fused, optionally int8-quantized, on ONNX Runtime.

Why not `CrossEncoder(backend="onnx")`: sentence-transformers delegates export to optimum-onnx, whose
releases (0.1.0) require transformers < 4.58 while sentence-transformers 6 requires transformers >= 5, so
the two cannot be installed together. The steps are optimum's own, done with the libraries it calls:
- export with torch's TorchScript exporter (`dynamo=False`) from the eager-attention model: the dynamo
  exporter and the SDPA graph give patterns in which ONNX Runtime's optimizer fuses no attention;
- `onnxruntime.transformers.optimizer.optimize_model` (what `ORTOptimizer` runs), and the fused operator
  counts are recorded, so an export that failed to fuse is visible in the row;
- int8: `onnxruntime.quantization.quantize_dynamic` with per-channel QInt8 weights (what
  `AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True)` sets up); per-tensor loses much
  more ranking agreement.
Exports are cached under the rerank-bench cache, keyed by model, weights, options and library versions.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from rerank_bench.backends.export_cache import (
    ExportedBackend,
    cached_export,
    calibration_inputs,
    example_inputs,
    export_key,
    exports_root,
    validation_inputs,
)
from rerank_bench.models.resolve import ResolvedModel

OPSET = 17


def export_onnx(hf_model: Any, tokenizer: Any, folder: Path) -> tuple[list[str], dict[str, int]]:
    """fp32 ONNX, then fused; returns (input names, fused operator counts)."""
    import torch
    from onnxruntime.transformers.optimizer import optimize_model

    inputs = example_inputs(tokenizer)
    # The TorchScript exporter names graph inputs by position, so they must follow forward()'s parameter
    # order (input_ids, attention_mask, token_type_ids), not the tokenizer's (which puts token_type_ids second).
    names = [p for p in inspect.signature(hf_model.forward).parameters if p in inputs]
    raw = folder / "raw.onnx"
    with torch.inference_mode():
        torch.onnx.export(
            hf_model,
            tuple(inputs[n] for n in names),
            str(raw),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    config = hf_model.config
    optimized = optimize_model(
        str(raw), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size, opt_level=1
    )
    fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    optimized.save_model_to_file(str(folder / "model.onnx"))
    raw.unlink()
    return names, fused


def quantize_int8(folder: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # DefaultTensorType: the fused graph has contrib ops shape inference cannot type.
    quantize_dynamic(
        str(folder / "model.onnx"),
        str(folder / "model_int8.onnx"),
        per_channel=True,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )
    (folder / "model_int8.onnx").replace(folder / "model.onnx")


def ensure_export(
    model: ResolvedModel, path: str, dtype: str, calibration: dict[str, Any] | None = None
) -> tuple[Path, dict[str, Any], float]:
    """(export folder, its metadata, seconds spent exporting now: 0 when cached)."""
    import onnxruntime
    import torch

    from rerank_bench.backends import CALIBRATED
    from rerank_bench.backends.quantize import AC_FLOOR, quantize_onnx_ac, quantize_onnx_static, recipe_digest

    calibrated = dtype in CALIBRATED
    versions = {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "opset": str(OPSET)}
    if calibrated:
        versions["calibration"] = recipe_digest(calibration)
    if dtype == "int8-ac":
        versions["floor"] = str(AC_FLOOR)
    final = exports_root() / export_key(model, path, "onnx", dtype, versions)

    def build(hf_model: Any, tokenizer: Any, folder: Path) -> dict[str, Any]:
        names, fused = export_onnx(hf_model, tokenizer, folder)
        options = [f"opset{OPSET}", f"fused attention {fused.get('Attention', 0)}/{hf_model.config.num_hidden_layers}"]
        if dtype == "int8":
            quantize_int8(folder)
            options.append("dynamic int8, per-channel QInt8 weights")
        elif dtype == "int8-ac":
            options.append(quantize_onnx_ac(folder, validation_inputs(calibration, tokenizer, names, hf_model)))
        elif calibrated:
            options.append(quantize_onnx_static(folder, calibration_inputs(calibration, tokenizer, names, hf_model)))
        return {"inputs": names, "fused": fused, "options": ", ".join(options)}

    return cached_export(model, path, final, "eager", build)


class OnnxBackend(ExportedBackend):
    name = "onnx"
    runtime_module = "onnxruntime"

    def export(
        self, model: ResolvedModel, path: str, dtype: str, calibration: dict[str, Any] | None = None
    ) -> tuple[Path, dict[str, Any], float]:
        return ensure_export(model, path, dtype, calibration)

    def open(self, runtime: Any, folder: Path, device: str, dtype: str, threads: int) -> tuple[Any, str]:
        options = runtime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = runtime.GraphOptimizationLevel.ORT_ENABLE_ALL
        cuda = device.startswith("cuda")
        providers = ["CUDAExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        provider_options = [{"device_id": int(device.split(":")[1]) if ":" in device else 0}] if cuda else None
        session = runtime.InferenceSession(
            str(folder / "model.onnx"), options, providers=providers, provider_options=provider_options
        )
        # The exporter drops inputs the graph does not use (DeBERTa-v3 has no token types): feed only its own.
        accepted = {i.name for i in session.get_inputs()}

        def run(features: dict[str, Any]) -> Any:
            return session.run(None, {k: v for k, v in features.items() if k in accepted})[0]

        return run, f"onnxruntime {runtime.__version__} {providers[0]}"
