"""Loading a Hugging Face checkpoint for a backend: where it comes from (a folder, a Hub id, or the
random-weight twin), which keys transformers initialised anew (its load report), and the activation
sentence-transformers applies to the logits. Shared by every backend; the head rules are models/heads.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rerank_bench.errors import ModelError
from rerank_bench.models.heads import HEAD_SEED, apply_num_labels_rule, head_keys, refuse_random_head
from rerank_bench.models.resolve import ResolvedModel


def model_source(model: ResolvedModel, max_length: int | None) -> tuple[str, str]:
    """(what from_pretrained loads, tokenizer source "own" or "offline")."""
    if model.source != "twin":
        return model.load_path, "own"
    from rerank_bench.models.twin import build_twin

    entry = model.catalog_entry()
    if entry is None:
        raise ModelError(f"{model.name} has no catalog entry to build a twin from")
    path, tokenizer_source = build_twin(entry, model.revision)
    return str(path), tokenizer_source


@contextmanager
def capture_missing_keys() -> Iterator[set[str]]:
    """Collect the keys transformers reports as newly initialised while loading (its "load report")."""
    missing: set[str] = set()
    try:
        from transformers import modeling_utils
    except ImportError:
        yield missing
        return
    original = getattr(modeling_utils, "log_state_dict_report", None)
    if original is None:  # an older transformers: the architecture check before loading still applies
        yield missing
        return

    def recording(*args: Any, **kwargs: Any) -> Any:
        info = kwargs.get("loading_info", args[3] if len(args) > 3 else None)
        missing.update(getattr(info, "missing_keys", set()) or set())
        missing.update(k[0] for k in getattr(info, "mismatched_keys", set()) or set())
        return original(*args, **kwargs)

    modeling_utils.log_state_dict_report = recording
    try:
        yield missing
    finally:
        modeling_utils.log_state_dict_report = original


def score_activation(config: Any) -> str:
    """The activation sentence-transformers' CrossEncoder applies by default: the one saved in the config,
    else sigmoid for a single-label head, else none. Our own runtimes apply the same, so their scores are
    comparable with torch's."""
    saved = (getattr(config, "sentence_transformers", None) or {}).get("activation_fn")
    if saved:
        return "identity" if saved.endswith("Identity") else "sigmoid" if saved.endswith("Sigmoid") else "identity"
    return "sigmoid" if getattr(config, "num_labels", 1) == 1 else "identity"


def supports_sdpa(config: Any) -> bool:
    """Whether transformers' sequence classifier for this config has an SDPA attention path."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    try:
        return bool(getattr(MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)], "_supports_sdpa", False))
    except KeyError:
        return False


def load_classifier(model: ResolvedModel, path: str, attn_implementation: str | None = None) -> tuple[Any, Any, bool]:
    """(fp32 transformers model in eval mode, its tokenizer, whether its head is random) for exporting;
    refuses an untrained head unless the user allowed it, as the torch backend does."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    kwargs = model.loading_kwargs()
    torch.manual_seed(HEAD_SEED)
    try:
        config = AutoConfig.from_pretrained(path, **kwargs)
        apply_num_labels_rule(config)
        if attn_implementation and (attn_implementation != "sdpa" or supports_sdpa(config)):
            kwargs["attn_implementation"] = attn_implementation  # DeBERTa has its own attention only
        with capture_missing_keys() as missing:
            hf_model = AutoModelForSequenceClassification.from_pretrained(
                path, config=config, dtype=torch.float32, **kwargs
            )
        tokenizer = AutoTokenizer.from_pretrained(
            path, **{k: v for k, v in kwargs.items() if k != "attn_implementation"}
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not load {model.spec}: {exc}".splitlines()[0]) from None
    head = head_keys(missing) if model.source != "twin" else []
    if head:
        refuse_random_head(
            f"loading {model.spec} left {', '.join(head[:3])} newly initialised", model.allow_random_head
        )
    return hf_model.eval(), tokenizer, bool(head)
