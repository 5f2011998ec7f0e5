"""The cache of exported models (ONNX, OpenVINO IR) that the onnx and openvino backends share: one key per
model, weights, recipe and library versions; built in a temporary folder and renamed into place when whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rerank_bench.backends import get_spec
from rerank_bench.backends.base import Backend, LoadInfo, Scorer
from rerank_bench.backends.hf_checkpoint import load_classifier, model_source, score_activation
from rerank_bench.backends.padded_scorer import RuntimeScorer, effective_max_length
from rerank_bench.errors import EnvironmentProblem, ModelError
from rerank_bench.models.heads import refuse_random_head
from rerank_bench.models.resolve import ResolvedModel
from rerank_bench.paths import cache_root

EXPORT_FORMAT = 2  # bump when an export recipe changes, so cached exports are rebuilt


def exports_root() -> Path:
    return cache_root() / "exports"


def weights_fingerprint(path: str, revision: str | None) -> str:
    """Identifies the weights an export was made from: the Hub revision, or a local folder's weight files
    by name, size and modification time (hashing gigabytes of weights on every run would cost more than
    the export it saves)."""
    folder = Path(path)
    if not folder.is_dir():
        return f"hub:{path}@{revision or 'main'}"
    parts = []
    for file in sorted(folder.iterdir()):
        if file.suffix in (".safetensors", ".bin", ".json", ".txt", ".model"):
            stat = file.stat()
            parts.append(f"{file.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def export_key(model: ResolvedModel, path: str, backend: str, dtype: str, versions: dict[str, str]) -> str:
    identity = {
        "model": model.model_id,
        "weights": weights_fingerprint(path, model.revision),
        "backend": backend,
        "dtype": dtype,
        "format": EXPORT_FORMAT,
        **versions,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model.name)[:60]
    return f"{safe}-{backend}-{dtype}-{digest}"


def calibration_inputs(
    recipe: dict[str, Any] | None, tokenizer: Any, names: list[str], hf_model: Any
) -> list[dict[str, Any]]:
    """Static int8's calibration batches, tokenized for the exported graph's inputs."""
    from rerank_bench.backends.quantize import calibration_features, calibration_pairs

    limit = min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)
    limit = min(limit, int(getattr(hf_model.config, "max_position_embeddings", limit)))
    return calibration_features(calibration_pairs(recipe, tokenizer, limit), tokenizer, names, limit)


def validation_inputs(
    recipe: dict[str, Any] | None, tokenizer: Any, names: list[str], hf_model: Any
) -> list[list[dict[str, Any]]]:
    """int8-ac's held-apart requests, each as its batches of the exported graph's inputs."""
    from rerank_bench.backends.quantize import validation_features

    limit = min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)
    limit = min(limit, int(getattr(hf_model.config, "max_position_embeddings", limit)))
    return validation_features(recipe, tokenizer, names, limit)


def example_inputs(tokenizer: Any) -> dict[str, Any]:
    return tokenizer(
        ["what is a reranker", "a query"],
        ["a model that scores pairs", "a document"],
        padding=True,
        return_tensors="pt",
    )


def shape_dict(config: Any) -> dict[str, int]:
    from dataclasses import asdict

    from rerank_bench.models.flops import EncoderShape

    return asdict(EncoderShape.from_config(config))


def cached_export(
    model: ResolvedModel,
    path: str,
    final: Path,
    attn_implementation: str,
    build: Callable[[Any, Any, Path], dict[str, Any]],
) -> tuple[Path, dict[str, Any], float]:
    """(export folder, its metadata, seconds spent exporting now: 0 when cached).

    `build(hf_model, tokenizer, folder)` writes the runtime's files into a temporary folder and returns what
    it wants remembered; the tokenizer, the head's state and the model's shape and activation are added
    here, and the folder is renamed into place only when complete."""
    meta_file = final / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("random_head"):
            refuse_random_head(
                f"the cached export of {model.spec} has a newly initialised head", model.allow_random_head
            )
        return final, meta, 0.0
    started = time.perf_counter()
    hf_model, tokenizer, random_head = load_classifier(model, path, attn_implementation=attn_implementation)
    folder = atomic_dir(final)
    try:
        meta = build(hf_model, tokenizer, folder)
        tokenizer.save_pretrained(str(folder / "tokenizer"))
        meta.update(
            random_head=random_head,
            activation=score_activation(hf_model.config),
            shape=shape_dict(hf_model.config),
            source=path,
        )
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        if final.exists() and not meta_file.exists():  # a leftover without metadata: never trusted
            shutil.rmtree(final, ignore_errors=True)
        try:
            folder.rename(final)
        except OSError:
            # Another process (a second sweep, a parallel test worker) finished the same export first: keep
            # theirs, which may be open already, and drop ours.
            if not meta_file.exists():
                raise
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    return final, meta, time.perf_counter() - started


def atomic_dir(final: Path) -> Path:
    """A sibling temporary folder to build an export in, renamed to `final` when complete, so an interrupted
    export never leaves a half-written model that a later run would trust."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


class ExportedBackend(Backend):
    """The load path the onnx and openvino backends share: import the runtime, check the spec, export (or find
    the cached export), open it with the runtime, read its tokenizer, and describe what was set up. Subclasses
    say how to import, export and open."""

    runtime_module: str  # what to import; its absence is an environment problem naming the extra

    def export(
        self, model: ResolvedModel, path: str, dtype: str, calibration: dict[str, Any] | None = None
    ) -> tuple[Path, dict[str, Any], float]:
        raise NotImplementedError

    def open(
        self, runtime: Any, folder: Path, device: str, dtype: str, threads: int
    ) -> tuple[Callable[[dict[str, Any]], Any], str]:
        """(features -> logits, how the runtime was set up, for backend_options)."""
        raise NotImplementedError

    def load(
        self,
        model: ResolvedModel,
        device: str,
        dtype: str,
        threads: int,
        max_length: int | None,
        calibration: dict[str, Any] | None = None,
        attention: str = "",  # not theirs to choose: each export fixes its attention (the planner skips)
    ) -> Scorer:
        import importlib

        spec = get_spec(self.name)
        try:
            runtime = importlib.import_module(self.runtime_module)
        except ImportError:
            raise EnvironmentProblem(
                f"the {self.name} backend needs {self.runtime_module}", f"pip install '{spec.extra}'"
            ) from None
        spec.check(dtype, device)
        if model.scoring == "yes-no":
            raise ModelError(
                f"the {self.name} backend cannot score {model.name} yet: a decoder reranker's yes/no answer is read "
                "from its language-model head, which this export does not keep",
                "measure it with --backend torch",
            )
        path, tokenizer_source = model_source(model, max_length)
        folder, meta, export_s = self.export(model, path, dtype, calibration)
        from transformers import AutoTokenizer

        started = time.perf_counter()
        try:
            runner, setup = self.open(runtime, folder, device, dtype, threads)
            tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        except Exception as exc:  # noqa: BLE001 - a broken cached export is the user's to clear, with the path
            raise ModelError(
                f"could not open the {self.name} export in {folder}: {exc}".splitlines()[0],
                "delete that folder to export again",
            ) from None
        length = effective_max_length(max_length, tokenizer)
        info = LoadInfo(
            load_s=time.perf_counter() - started,
            weights=model.weights + ("+random-head" if meta.get("random_head") else ""),
            tokenizer=tokenizer_source,
            max_length=length,
            revision=model.revision,
            export_s=export_s,
            backend_options=f"{meta['options']}, {setup}",
        )
        return RuntimeScorer(runner, tokenizer, length, meta["activation"], meta["inputs"], info, meta.get("shape"))
