"""Where a backend gets the Hugging Face model it runs: the folder or Hub id, or the random-weight twin.

Shared by every backend, together with the one rule that keeps agreement meaningful: a classifier head that
a checkpoint lacks is initialised from a fixed seed, so every process (torch, the ONNX export, OpenVINO)
measures the same random head rather than a different one each.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from rerank_bench.errors import ModelError
from rerank_bench.models.resolve import ResolvedModel

HEAD_SEED = 0


def model_source(model: ResolvedModel, max_length: int | None) -> tuple[str, str]:
    """(what from_pretrained loads, tokenizer source "own" or "offline")."""
    if model.source != "twin":
        return model.load_path, "own"
    from rerank_bench.models.twin import build_twin

    entry = model.catalog_entry()
    if entry is None:
        raise ModelError(f"{model.name} has no catalog entry to build a twin from")
    path, tokenizer_source = build_twin(entry, max_length or entry.max_length, model.revision)
    return str(path), tokenizer_source


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


def score_activation(config: Any) -> str:
    """The activation sentence-transformers' CrossEncoder applies by default: the one saved in the config,
    else sigmoid for a single-label head, else none. Our own runtimes apply the same, so their scores are
    comparable with torch's."""
    saved = (getattr(config, "sentence_transformers", None) or {}).get("activation_fn")
    if saved:
        return "identity" if saved.endswith("Identity") else "sigmoid" if saved.endswith("Sigmoid") else "identity"
    return "sigmoid" if getattr(config, "num_labels", 1) == 1 else "identity"


def load_classifier(model: ResolvedModel, path: str, attn_implementation: str | None = None) -> tuple[Any, Any, bool]:
    """(fp32 transformers model in eval mode, its tokenizer, whether its head is random) for exporting;
    refuses an untrained head unless the user allowed it, as the torch backend does."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from rerank_bench.backends.torch_st import capture_missing_keys, head_keys

    kwargs: dict[str, Any] = {"trust_remote_code": model.trust_remote_code, "local_files_only": model.local_files_only}
    if model.revision and model.source == "hub":
        kwargs["revision"] = model.revision
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    torch.manual_seed(HEAD_SEED)
    try:
        config = AutoConfig.from_pretrained(path, **{k: v for k, v in kwargs.items() if k != "attn_implementation"})
        # sentence-transformers' rule: a base model that is not a sequence classifier gets a 1-label head.
        if not any(a.endswith("ForSequenceClassification") for a in (config.architectures or [])):
            config.num_labels = 1
        with capture_missing_keys() as missing:
            hf_model = AutoModelForSequenceClassification.from_pretrained(path, config=config, dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, **{k: v for k, v in kwargs.items() if k != "attn_implementation"})
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not load {model.spec}: {exc}".splitlines()[0]) from None
    random_head = bool(head_keys(missing)) and model.source != "twin"
    if random_head:
        refuse_random_head(model)
    return hf_model.eval(), tokenizer, random_head


def refuse_random_head(model: ResolvedModel) -> None:
    if not model.allow_random_head:
        raise ModelError(
            f"loading {model.spec} leaves its classifier head newly initialised: it has no trained "
            "classifier head, so it is not a reranker",
            "pass --allow-random-head to measure its speed anyway",
        )


def shape_dict(config: Any) -> dict[str, int]:
    from dataclasses import asdict

    from rerank_bench.models.flops import EncoderShape

    return asdict(EncoderShape.from_config(config))


def exports_root() -> Path:
    from rerank_bench.models.twin import cache_root

    return cache_root() / "exports"


def cached_export(model: ResolvedModel, path: str, final: Path, attn_implementation: str,
                  build: Callable[[Any, Any, Path], dict[str, Any]]) -> tuple[Path, dict[str, Any], float]:  # fmt: skip
    """(export folder, its metadata, seconds spent exporting now: 0 when cached).

    `build(hf_model, tokenizer, folder)` writes the runtime's files into a temporary folder and returns what
    it wants remembered; the tokenizer, the head's state and the model's shape and activation are added
    here, and the folder is renamed into place only when complete."""
    meta_file = final / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("random_head"):
            refuse_random_head(model)
        return final, meta, 0.0
    started = time.perf_counter()
    hf_model, tokenizer, random_head = load_classifier(model, path, attn_implementation=attn_implementation)
    folder = atomic_dir(final)
    try:
        meta = build(hf_model, tokenizer, folder)
        tokenizer.save_pretrained(str(folder / "tokenizer"))
        meta.update(random_head=random_head, activation=score_activation(hf_model.config),
                    shape=shape_dict(hf_model.config), source=path)  # fmt: skip
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        if final.exists():
            shutil.rmtree(final)
        folder.rename(final)
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
