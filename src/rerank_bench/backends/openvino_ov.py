"""The openvino backend: the model converted to OpenVINO IR and compiled for the CPU at the case's precision.

Why not `CrossEncoder(backend="openvino")`: sentence-transformers delegates to optimum-intel, whose release
(2.2.0) requires transformers < 5.6, huggingface-hub < 1.22 and torchvision (which does not import beside
the CPU torch wheel), so it cannot be installed with this stack. OpenVINO's own `convert_model` takes the
PyTorch module directly. The IR is cached in fp32; the precision is a compile-time hint
(`INFERENCE_PRECISION_HINT`: f32, bf16 or f16), as optimum-intel's `ov_config` sets it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from rerank_bench.backends import get_spec
from rerank_bench.backends.base import Backend, LoadInfo
from rerank_bench.backends.export_cache import cached_export, example_inputs, export_key, exports_root
from rerank_bench.backends.hf_checkpoint import model_source
from rerank_bench.backends.padded_scorer import RuntimeScorer, effective_max_length
from rerank_bench.errors import EnvironmentProblem, ModelError
from rerank_bench.models.resolve import ResolvedModel

PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def ensure_ir(model: ResolvedModel, path: str) -> tuple[Path, dict[str, Any], float]:
    import openvino as ov
    import torch

    versions = {"torch": torch.__version__, "openvino": ov.__version__}
    final = exports_root() / export_key(model, path, "openvino", "fp32", versions)

    def build(hf_model: Any, tokenizer: Any, folder: Path) -> dict[str, Any]:
        inputs = example_inputs(tokenizer)
        with torch.inference_mode():
            converted = ov.convert_model(hf_model, example_input=dict(inputs))
        ov.save_model(converted, str(folder / "model.xml"), compress_to_fp16=False)
        return {"inputs": list(inputs.keys()), "options": "IR from torch (convert_model)"}

    return cached_export(model, path, final, "sdpa", build)


class OpenVinoScorer(RuntimeScorer):
    def __init__(
        self,
        compiled: Any,
        tokenizer: Any,
        max_length: int,
        activation: str,
        inputs: list[str],
        info: LoadInfo,
        shape: dict[str, int] | None = None,
    ) -> None:
        super().__init__(tokenizer, max_length, activation, inputs, shape)
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.output = compiled.outputs[0]
        self.info = info

    def _run(self, features: dict[str, np.ndarray]) -> np.ndarray:
        return self.request.infer(features)[self.output]


class OpenVinoBackend(Backend):
    name = "openvino"

    def load(
        self, model: ResolvedModel, device: str, dtype: str, threads: int, max_length: int | None
    ) -> OpenVinoScorer:
        try:
            import openvino as ov
        except ImportError:
            raise EnvironmentProblem(
                "the openvino backend needs openvino", "pip install 'rerank-bench[openvino]'"
            ) from None
        get_spec(self.name).check(dtype, device)
        path, tokenizer_source = model_source(model, max_length)
        folder, meta, export_s = ensure_ir(model, path)
        from transformers import AutoTokenizer

        started = time.perf_counter()
        config = {
            "INFERENCE_PRECISION_HINT": PRECISION_HINTS[dtype],
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        try:
            compiled = ov.Core().compile_model(str(folder / "model.xml"), "CPU", config)
            tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        except Exception as exc:  # noqa: BLE001
            raise ModelError(
                f"could not compile the OpenVINO model in {folder}: {exc}".splitlines()[0],
                "delete that folder to convert again",
            ) from None
        length = effective_max_length(max_length, tokenizer)
        weights = model.weights + ("+random-head" if meta.get("random_head") else "")
        hint = ", ".join(f"{k}={v}" for k, v in config.items())
        info = LoadInfo(
            load_s=time.perf_counter() - started,
            weights=weights,
            tokenizer=tokenizer_source,
            max_length=length,
            revision=model.revision,
            export_s=export_s,
            backend_options=f"{meta['options']}, {hint}, openvino {ov.__version__}",
        )
        return OpenVinoScorer(compiled, tokenizer, length, meta["activation"], meta["inputs"], info, meta.get("shape"))
