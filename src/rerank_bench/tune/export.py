"""Where the configuration `tune` chose lives, and a copy of it for the user (`tune --export DIR`).

sentence-transformers' own onnx/openvino backends cannot be installed beside sentence-transformers 6 (see
backends/onnx_ort.py), so printing `CrossEncoder(..., backend="openvino")` would hand the user code that fails
where the tool ran. Instead the chosen ONNX or OpenVINO export (already in the rerank-bench cache) is located,
optionally copied to a folder, and the printed code loads it with the runtime itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rerank_bench.errors import UsageError
from rerank_bench.results.store import output_error


def locate_choice(request: Any, config: dict[str, Any]) -> tuple[Path | str, dict[str, Any]]:
    """(what the chosen configuration loads, its export metadata): the model folder or Hub id for torch; the
    cached export folder for onnx and openvino (found in the cache, not exported again)."""
    from rerank_bench.backends import get_backend
    from rerank_bench.backends.hf_checkpoint import model_source
    from rerank_bench.models.resolve import resolve_model

    model = resolve_model(
        request.model, request.weights, request.revision, request.trust_remote_code, request.allow_random_head
    )
    path, _ = model_source(model, request.max_length)
    if config["backend"] == "torch":
        return (Path(path) if Path(path).is_dir() else path), {}
    backend: Any = get_backend(config["backend"])  # an exporting backend (onnx, openvino): it has export()
    folder, meta, _ = backend.export(model, path, config["dtype"], _calibration(request))
    return folder, meta


def _calibration(request: Any) -> dict[str, Any]:
    """The calibration recipe the tune's own workers used (so the cached int8 export is found, not rebuilt)."""
    from dataclasses import asdict

    from rerank_bench.backends.quantize import calibration_recipe
    from rerank_bench.sweep.child import AGREEMENT_REQUESTS
    from rerank_bench.workload.requests import parse_doc_tokens

    workload: dict[str, Any]
    if request.workload_file is not None:
        workload = {"kind": "file", "path": str(Path(request.workload_file).resolve())}
    else:
        workload = {"kind": "synthetic", "doc_tokens": asdict(parse_doc_tokens(request.doc_tokens))}
    return calibration_recipe(workload, max(AGREEMENT_REQUESTS, request.quality_requests))


def export_choice(source: Path | str, dest: Path) -> Path:
    """Copy the chosen model (folder) to `dest`, which must be new or empty: nothing there is overwritten."""
    if not isinstance(source, Path):
        raise UsageError(f"--export: the chosen configuration loads {source} from the Hub; there is no folder to copy")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"--export {dest} exists and is not an empty folder", "choose a new folder")
    try:
        shutil.copytree(source, dest, dirs_exist_ok=True)
    except OSError as exc:
        raise output_error(dest, exc) from None
    return dest
