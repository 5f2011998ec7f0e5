"""What makes a transformers model a reranker: a trained sequence-classification head. The rules live here
once; resolution, every backend, the exporters and will-it-run apply them.
"""

from __future__ import annotations

from typing import Any

from rerank_bench.errors import ModelError

# Parameter names of a classifier head; missing from a checkpoint means the head is random.
HEAD_PREFIXES = ("classifier", "score", "pre_classifier", "qa_outputs")
# A head a checkpoint lacks is initialised from this seed in every process and backend, so torch, the ONNX
# export and OpenVINO measure the same random head and their agreement stays meaningful.
HEAD_SEED = 0


def is_sequence_classifier(architectures: list[str] | None) -> bool:
    return any(a.endswith("ForSequenceClassification") for a in (architectures or []))


def apply_num_labels_rule(config: Any) -> Any:
    """sentence-transformers' rule: a base model that is not a sequence classifier gets a 1-label head."""
    if not is_sequence_classifier(getattr(config, "architectures", None)):
        config.num_labels = 1
    return config


def head_keys(missing: set[str]) -> list[str]:
    """The newly initialised keys that belong to the classifier head (or the pooler it reads)."""
    return sorted(k for k in missing if k.split(".")[0] in HEAD_PREFIXES or ".pooler." in k or k.startswith("pooler"))


def refuse_random_head(what: str, allow: bool) -> None:
    """A model whose classifier head would be random scores nothing: refuse it unless the user allowed it.
    `what` says how we know, e.g. "loading X left classifier.bias newly initialised"."""
    if not allow:
        raise ModelError(
            f"{what}: it has no trained classifier head, so it is not a reranker",
            "pass --allow-random-head to measure its speed anyway",
        )


def check_architectures(architectures: list[str] | None, where: str, allow: bool) -> None:
    """Before loading: a config that names an architecture other than a sequence classifier."""
    if architectures and not is_sequence_classifier(architectures):
        refuse_random_head(
            f"{where} is a {architectures[0]}, not a sequence classifier (its head would be newly initialised)", allow
        )
