"""The openvino backend: the model converted to OpenVINO IR and compiled for the CPU at the case's precision.

Why not `CrossEncoder(backend="openvino")`: sentence-transformers delegates to optimum-intel, whose release
(2.2.0) requires transformers < 5.6, huggingface-hub < 1.22 and torchvision (which does not import beside
the CPU torch wheel), so it cannot be installed with this stack. OpenVINO's own `convert_model` takes the
PyTorch module directly. The IR is cached in fp32; the precision is a compile-time hint
(`INFERENCE_PRECISION_HINT`: f32, bf16 or f16), as optimum-intel's `ov_config` sets it.
"""

from __future__ import annotations

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

# The int8 variants run what NNCF left unquantized (layer norms, softmax, the head) in f32: the point of a
# calibrated int8 is to keep the ranking.
PRECISION_HINTS = {
    "fp32": "f32",
    "bf16": "bf16",
    "fp16": "f16",
    "int8-static": "f32",
    "int8-sq": "f32",
    "int8-ac": "f32",
}


def ensure_ir(
    model: ResolvedModel, path: str, dtype: str = "fp32", calibration: dict[str, Any] | None = None
) -> tuple[Path, dict[str, Any], float]:
    """The fp32 IR (fp32, bf16 and fp16 share it: their precision is a compile-time hint), or an int8
    variant's IR quantized by NNCF (backends/quantize.py)."""
    import openvino as ov
    import torch

    from rerank_bench.backends import CALIBRATED
    from rerank_bench.backends.quantize import AC_FLOOR, quantize_openvino, quantize_openvino_ac, recipe_digest

    calibrated = dtype in CALIBRATED
    versions = {"torch": torch.__version__, "openvino": ov.__version__}
    if calibrated:
        import nncf

        versions.update(nncf=nncf.__version__, calibration=recipe_digest(calibration))
        if dtype == "int8-ac":
            versions["floor"] = str(AC_FLOOR)
    final = exports_root() / export_key(model, path, "openvino", dtype if calibrated else "fp32", versions)

    def build(hf_model: Any, tokenizer: Any, folder: Path) -> dict[str, Any]:
        inputs = example_inputs(tokenizer)
        with torch.inference_mode():
            converted = ov.convert_model(hf_model, example_input=dict(inputs))
        options = "IR from torch (convert_model)"
        if calibrated:
            features = calibration_inputs(calibration, tokenizer, list(inputs.keys()), hf_model)
            if dtype == "int8-ac":
                held = validation_inputs(calibration, tokenizer, list(inputs.keys()), hf_model)
                converted, how = quantize_openvino_ac(converted, features, held)
            else:
                converted, how = quantize_openvino(converted, features, dtype)
            options += f", {how}"
        ov.save_model(converted, str(folder / "model.xml"), compress_to_fp16=False)
        return {"inputs": list(inputs.keys()), "options": options}

    return cached_export(model, path, final, "sdpa", build)


class OpenVinoBackend(ExportedBackend):
    name = "openvino"
    runtime_module = "openvino"

    def export(
        self, model: ResolvedModel, path: str, dtype: str, calibration: dict[str, Any] | None = None
    ) -> tuple[Path, dict[str, Any], float]:
        return ensure_ir(model, path, dtype, calibration)

    def open(self, runtime: Any, folder: Path, device: str, dtype: str, threads: int) -> tuple[Any, str]:
        config = {
            "INFERENCE_PRECISION_HINT": PRECISION_HINTS[dtype],
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        compiled = runtime.Core().compile_model(str(folder / "model.xml"), "CPU", config)
        request, output = compiled.create_infer_request(), compiled.outputs[0]
        hint = ", ".join(f"{k}={v}" for k, v in config.items())
        # The converter drops inputs the graph does not use (DeBERTa-v3 has no token types): feed only its own.
        accepted = {name for port in compiled.inputs for name in port.get_names()}

        def run(features: dict[str, Any]) -> Any:
            return request.infer({k: v for k, v in features.items() if k in accepted})[output]

        return run, f"{hint}, openvino {runtime.__version__}"
