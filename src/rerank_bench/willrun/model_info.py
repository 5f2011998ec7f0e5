"""A reranker's shape from its config alone (catalog entry, local folder, or a Hub config.json): what
will-it-run's memory and latency models need. Never the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_bench.errors import ModelError, UsageError
from rerank_bench.models.flops import EncoderShape
from rerank_bench.models.heads import apply_num_labels_rule
from rerank_bench.models.prompts import template_for, template_tokens_with
from rerank_bench.models.resolve import folder_name, hub_id_for, is_yes_no_reranker
from rerank_bench.willrun.memory_model import ArchShape, arch_shape


@dataclass
class ModelInfo:
    name: str
    model_id: str
    arch: ArchShape
    shape: EncoderShape
    max_length: int
    specials: int
    config: Any = field(default=None, repr=False)  # the transformers config: what a self-calibration builds


def load_model_info(
    spec: str, max_length: int | None, trust_remote_code: bool = False, instruction: str | None = None
) -> ModelInfo:
    """The model's config without its weights: catalog entry, local folder, or the Hub's config.json."""
    from transformers import AutoConfig

    from rerank_bench.catalog import find_model

    entry = find_model(spec)
    causal = entry is not None and entry.causal
    if entry is not None:
        values = entry.config_dict()
        config = AutoConfig.for_model(entry.model_type, **{k: v for k, v in values.items() if k != "model_type"})
        name, model_id, limit = entry.alias, entry.hub_id, entry.max_length
        default_length = entry.recommended_max_length or entry.max_length
    else:
        if not spec.strip():
            raise UsageError("an empty model name", "name a catalog alias, a Hub id (org/name) or a model folder")
        if not Path(spec).exists():
            hub_id_for(spec)  # a typo of a catalog alias is refused here, before any Hub retries
        try:
            config = AutoConfig.from_pretrained(spec, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            where = "folder" if Path(spec).exists() else "Hub id"
            raise ModelError(
                f"could not read config.json of {spec} ({where}): {exc}".splitlines()[0],
                "pass a catalog alias, a folder with config.json, or a Hub id reachable from here",
            ) from None
        apply_num_labels_rule(config)
        name, model_id = folder_name(Path(spec)) if Path(spec).exists() else spec, spec
        offset = 2 if config.model_type in ("xlm-roberta", "roberta") else 0
        limit = default_length = int(config.max_position_embeddings) - offset
    for key in ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads"):
        if not hasattr(config, key):
            raise ModelError(f"{spec}: its config has no {key}; will-it-run models encoders and decoder rerankers")
    if entry is None:  # a folder or Hub config: a causal LM of a family with a yes/no recipe is such a reranker
        causal = is_yes_no_reranker(
            {"architectures": getattr(config, "architectures", None), "model_type": config.model_type}
        )
    arch = arch_shape(config, causal=causal)
    length = max_length or default_length
    if length > limit:
        raise UsageError(f"--max-length {length} is more than {name} takes ({limit} tokens)")
    specials = 4 if config.model_type in ("xlm-roberta", "roberta") else 3
    if causal:  # the prompt template around query and document, with --instruction where given
        template = template_for(config.model_type)
        base = entry.template_tokens if entry is not None else template.estimated_tokens
        specials = template_tokens_with(template, base, instruction)
    elif instruction is not None:
        raise UsageError(f"--instruction is for decoder rerankers scored through yes/no; {name} is a classifier")
    return ModelInfo(
        name=name,
        model_id=model_id,
        arch=arch,
        shape=EncoderShape.from_config(config, causal=causal),
        max_length=length,
        specials=specials,
        config=config,
    )
