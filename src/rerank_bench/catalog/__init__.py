"""The built-in catalog of well-known rerankers (data in models.toml, next to this file)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

# Config keys that every entry carries and that go straight into the transformers config.
ARCH_KEYS = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
)


@dataclass(frozen=True)
class CatalogModel:
    alias: str
    hub_id: str
    architecture: str
    model_type: str
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    params: int
    params_published: str
    max_length: int
    license: str
    tokenizer: str  # the offline tokenizer a twin gets: models/twin.py TOKENIZER_KINDS
    config_source: str
    params_source: str
    also_known_as: tuple[str, ...] = ()
    recommended_max_length: int | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)
    # "classifier": a sequence-classification head scores the pair; "yes-no": a causal LM scores it as the logit
    # of "yes" against "no" after a prompt template (Qwen3-Reranker), through its language-model head
    scoring: str = "classifier"
    # tokens the scoring template adds to every pair beyond query and document (its special tokens included)
    template_tokens: int = 0

    @property
    def causal(self) -> bool:
        return self.scoring == "yes-no"

    def config_dict(self) -> dict[str, Any]:
        """The transformers config this entry describes (what `AutoConfig.for_model` takes)."""
        config = {key: getattr(self, key) for key in ARCH_KEYS}
        config.update(self.extra_config)
        config.update(architectures=[self.architecture], num_labels=1)
        return config

    def names(self) -> tuple[str, ...]:
        return (self.alias, self.hub_id, *self.also_known_as)


@lru_cache(maxsize=1)
def load_catalog() -> tuple[CatalogModel, ...]:
    text = resources.files("rerank_bench.catalog").joinpath("models.toml").read_text()
    entries = tomllib.loads(text)["model"]
    return tuple(CatalogModel(**{**entry, "also_known_as": tuple(entry.get("also_known_as", ()))}) for entry in entries)


def find_model(name: str) -> CatalogModel | None:
    """The entry whose alias, Hub id or former name matches `name` (case-insensitive), or None."""
    wanted = name.strip().lower()
    for entry in load_catalog():
        if wanted in (n.lower() for n in entry.names()):
            return entry
    return None


def aliases() -> list[str]:
    return [entry.alias for entry in load_catalog()]


def close_aliases(name: str) -> list[str]:
    """Catalog names a mistyped name is close to: aliases for a bare name ("minilm-l7" -> minilm-l6,
    minilm-l12), Hub ids for an org/name one ("cross-encoder/ms-marco-MiniLM-L-6-v3" -> the v2 repository)."""
    import difflib

    wanted = name.strip().lower()
    if "/" not in wanted:
        return difflib.get_close_matches(wanted, aliases(), n=2, cutoff=0.75)
    hub_ids = {entry.hub_id.lower(): entry.hub_id for entry in load_catalog()}
    return [hub_ids[m] for m in difflib.get_close_matches(wanted, list(hub_ids), n=2, cutoff=0.85)]


def common_words() -> list[str]:
    """Common English words (words.txt) for text workloads when no tokenizer is at hand: one token each in
    BERT-style vocabularies, so token counts are estimates, labelled so, for other tokenizers."""
    text = resources.files("rerank_bench.catalog").joinpath("words.txt").read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]
