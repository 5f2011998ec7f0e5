"""From what the user typed (`--model`) to what will be loaded, before anything is measured.

A model is a catalog alias, a Hugging Face Hub id, or a local directory. Resolution decides whether real
weights can be had (local folder, Hugging Face cache, or the Hub) or whether the random-weight twin is
measured, and turns every way this can go wrong into a distinct one-line `ModelError`.
Hub access goes through `HubClient`, which tests replace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rerank_bench.catalog import CatalogModel, aliases, close_aliases, find_model
from rerank_bench.errors import ModelError, UsageError
from rerank_bench.models.heads import check_architectures

WEIGHTS_CHOICES = ("auto", "real", "random")
# Files by which transformers finds a tokenizer. A folder with none of them silently gets a tokenizer that
# maps every word to [UNK], which makes throughput look better than it is.
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
    "vocab.json",
)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class ResolvedModel:
    spec: str  # what the user typed
    name: str  # short display name: catalog alias, Hub id or folder name
    source: str  # "local", "hub", "cache", "twin" or "fake"
    load_path: str  # what the backend loads: a folder or a Hub id ("" for a twin: built in the worker)
    hub_id: str | None
    revision: str | None  # commit where known, else what the user asked for
    weights: str  # "real" or "random"
    local_files_only: bool
    catalog_alias: str | None
    # The model's maximum tokens per pair where the catalog knows it; None: the tokenizer's, read at load time
    # (config.max_position_embeddings is not it: XLM-R reserves two positions for padding offsets).
    max_length: int | None
    trust_remote_code: bool = False
    allow_random_head: bool = False
    notice: str | None = None  # one line for stderr, e.g. why a twin is measured
    requested_revision: str | None = None  # --revision as typed (None: the default branch)
    scoring: str = "classifier"  # or "yes-no": a decoder reranker scored through its language-model head
    instruction: str | None = None  # yes-no: --instruction in the template (None: the model card's)

    @property
    def model_id(self) -> str:
        return self.hub_id or self.load_path or self.spec

    def load_revision(self) -> str | None:
        """The revision from_pretrained is given for a Hub download: the one asked for (a branch or tag), not
        the commit it resolved to, so that the cache records the branch's commit (refs/main) and the next run
        finds the snapshot without asking the Hub. None for a folder or a cache snapshot (loaded by path)."""
        return self.requested_revision if self.source == "hub" else None

    def loading_kwargs(self) -> dict[str, Any]:
        """What every from_pretrained of this model is given: remote code only when asked, no network where
        resolution found it locally, and the revision asked for on a Hub download."""
        kwargs: dict[str, Any] = {
            "trust_remote_code": self.trust_remote_code,
            "local_files_only": self.local_files_only,
        }
        if self.load_revision():
            kwargs["revision"] = self.load_revision()
        return kwargs

    def catalog_entry(self) -> CatalogModel | None:
        return find_model(self.catalog_alias) if self.catalog_alias else None

    def to_payload(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ResolvedModel:
        return cls(**payload)


class HubClient:
    """The two questions resolution asks the Hub; replaced by a fake in tests."""

    def cached_snapshot(self, repo_id: str, revision: str | None) -> tuple[Path, str | None] | None:
        """(folder, commit) of a cached snapshot holding config and weights, or None."""
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(repo_id, "config.json", revision=revision)
        if not isinstance(config, str):
            return None
        folder = Path(config).parent
        if not any((folder / name).exists() for name in WEIGHT_FILES):
            return None
        return folder, folder.name

    def model_info(self, repo_id: str, revision: str | None) -> str | None:
        """The commit sha for `revision`; raises huggingface_hub's errors (or a network error)."""
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo_id, revision=revision, timeout=10)
        return getattr(info, "sha", None)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _check_local_folder(folder: Path, allow_random_head: bool) -> dict[str, Any]:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(
            f"{folder} has no config.json, so it is not a transformers model folder",
            "point --model at the folder that save_pretrained wrote",
        )
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise ModelError(
            f"{folder} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...): transformers would fall back "
            "to a tokenizer that maps every word to [UNK] and inflate throughput",
            "save the tokenizer into the folder too (tokenizer.save_pretrained)",
        )
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{config_path} is not valid JSON: {exc}") from None
    if not is_yes_no_reranker(config):
        check_architectures(config.get("architectures"), str(folder), allow_random_head)
    return config


def is_yes_no_reranker(config: dict[str, Any]) -> bool:
    """A causal LM of a family with a known yes/no reranking recipe (Qwen3-Reranker): scored through its
    language-model head, not refused for lacking a classifier head."""
    from rerank_bench.models.prompts import TEMPLATES

    architectures = config.get("architectures") or []
    return config.get("model_type") in TEMPLATES and any(a.endswith("ForCausalLM") for a in architectures)


def length_limit(model: ResolvedModel) -> int | None:
    """The most tokens per pair the model takes: the catalog's figure, else its config's position embeddings
    (less the two XLM-R/RoBERTa reserve for padding offsets); None where the config is not at hand."""
    entry = model.catalog_entry()
    if entry is not None:
        return entry.max_length
    if model.source == "fake":
        return model.max_length
    config_path = Path(model.load_path) / "config.json"
    try:
        config = json.loads(config_path.read_text())
        positions = int(config["max_position_embeddings"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    offset = 2 if config.get("model_type") in ("roberta", "xlm-roberta", "camembert") else 0
    return positions - offset


def resolve_model(
    spec: str,
    weights: str = "auto",
    revision: str | None = None,
    trust_remote_code: bool = False,
    allow_random_head: bool = False,
    hub: HubClient | None = None,
) -> ResolvedModel:
    """What `spec` will load, in this order: a fake, a local folder, a catalog twin (--weights random), the
    Hugging Face cache, the Hub, and (--weights auto) the catalog twin when the Hub cannot be had."""
    if weights not in WEIGHTS_CHOICES:
        raise UsageError(f"--weights must be one of {', '.join(WEIGHTS_CHOICES)}, not {weights!r}")
    if not spec.strip(" ,"):
        raise UsageError("an empty model name", "name a catalog alias, a Hub id (org/name) or a model folder")
    made = partial(ResolvedModel, spec=spec, trust_remote_code=trust_remote_code, allow_random_head=allow_random_head)
    if spec.startswith("fake:"):
        return made(
            name=spec,
            source="fake",
            load_path=spec,
            hub_id=None,
            revision=None,
            weights="random",
            local_files_only=True,
            catalog_alias=None,
            max_length=512,
        )
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return _local_folder(made, folder, weights, revision, allow_random_head)
    if spec.startswith((".", "/", "~")) or os.sep in spec.strip("/").replace("/", "", 1):
        raise ModelError(f"no such model folder: {spec}", "check the path")

    entry = find_model(spec)
    hub_id = entry.hub_id if entry else hub_id_for(spec)
    alias = entry.alias if entry else None
    known = partial(
        made,
        name=alias or hub_id,
        hub_id=hub_id,
        catalog_alias=alias,
        max_length=entry.max_length if entry else None,
        scoring=entry.scoring if entry else "classifier",
    )
    if weights == "random":
        if entry is None:
            raise ModelError(
                f"--weights random needs a catalog model, and {spec!r} is not one",
                f"catalog aliases: {', '.join(aliases())}",
            )
        return _twin(known, revision, None)
    hub = hub or HubClient()
    cached = hub.cached_snapshot(hub_id, revision)
    if cached is not None:
        folder, commit = cached
        config = json.loads((folder / "config.json").read_text())
        if not (entry and entry.causal):
            check_architectures(config.get("architectures"), hub_id, allow_random_head)
        return known(source="cache", load_path=str(folder), revision=commit, weights="real", local_files_only=True)
    commit, reason = _ask_hub(hub, hub_id, revision)
    if reason is None:
        return known(
            source="hub",
            load_path=hub_id,
            revision=commit or revision,
            weights="real",
            local_files_only=False,
            requested_revision=revision,
        )
    if weights == "auto" and entry is not None:
        return _twin(
            known,
            revision,
            f"{reason} and {hub_id} is not in the local cache: measuring its random-weight twin "
            "(same architecture and speed, scores meaningless); rows say weights=random",
        )
    twin_hint = ", or use --weights random to measure its twin" if entry else ""
    raise ModelError(
        f"{reason} and {hub_id} is not in the local Hugging Face cache",
        f"connect and retry, download it first (hf download {hub_id}){twin_hint}",
    )


def _local_folder(
    made: Callable[..., ResolvedModel], folder: Path, weights: str, revision: str | None, allow_random_head: bool
) -> ResolvedModel:
    if weights == "random":
        raise UsageError(
            "--weights random builds a catalog model's twin; a local folder is measured with its own weights",
            "use --weights auto or real with a folder",
        )
    from rerank_bench.models.twin import is_random_twin

    config = _check_local_folder(folder, allow_random_head)
    return made(
        scoring="yes-no" if is_yes_no_reranker(config) else "classifier",
        name=folder_name(folder),
        source="local",
        load_path=str(folder.resolve()),
        hub_id=None,
        revision=revision,
        weights="random" if is_random_twin(folder) else "real",
        local_files_only=True,
        catalog_alias=None,
        max_length=None,
    )


# Folder names that say nothing about the model: training scripts' and converters' defaults.
GENERIC_FOLDER_NAMES = frozenset(
    {"model", "models", "checkpoint", "final", "best", "output", "outputs", "export", "onnx", "openvino", "hf", "main"}
)


def folder_name(folder: Path) -> str:
    """A local model's display name: the folder's name, with its parent's where the name alone says nothing (a
    `model` or `checkpoint-500` folder; a Hugging Face cache snapshot, named by its commit, reads as the Hub id)."""
    folder = folder.expanduser().resolve()
    name, parent = folder.name, folder.parent
    if parent.name == "snapshots" and parent.parent.name.startswith("models--"):
        return parent.parent.name.removeprefix("models--").replace("--", "/")
    if name.lower() in GENERIC_FOLDER_NAMES or name.lower().startswith("checkpoint-"):
        return f"{parent.name}/{name}" if parent.name else name
    return name


def hub_id_for(spec: str) -> str:
    """A name the catalog does not know, as a Hub id. A bare name close to a catalog alias is a typo of it (no
    reranker worth measuring lives at a Hub id without an organisation), so it is refused at once with the
    suggestion rather than after a round of Hub retries."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    close = close_aliases(spec)
    if "/" not in spec and close:
        raise ModelError(f"{spec!r} is not a catalog alias", f"did you mean {' or '.join(close)}?")
    try:
        validate_repo_id(spec)
    except HFValidationError:
        raise ModelError(
            f"{spec!r} is not a catalog alias, a model folder or a Hugging Face Hub id",
            f"catalog aliases: {', '.join(aliases())}",
        ) from None
    return spec


def _twin(known: Callable[..., ResolvedModel], revision: str | None, notice: str | None) -> ResolvedModel:
    return known(source="twin", load_path="", revision=revision, weights="random", local_files_only=True, notice=notice)


def _ask_hub(hub: HubClient, hub_id: str, revision: str | None) -> tuple[str | None, str | None]:
    """(commit, None) when the Hub has the model; (None, why not) when the Hub cannot be reached. A typo, a
    gated repository and a bad revision are errors of their own."""
    if _offline():
        return None, "HF_HUB_OFFLINE is set"
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return hub.model_info(hub_id, revision), None
    except GatedRepoError:
        from huggingface_hub import constants

        has_token = bool(os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"))
        raise ModelError(
            f"{hub_id} is a gated repository on the Hugging Face Hub"
            + (" and the token in HF_TOKEN has no access to it" if has_token else ""),
            f"accept its terms on {constants.ENDPOINT}/{hub_id}, then set HF_TOKEN to a token of that account "
            "(or log in: hf auth login)",
        ) from None
    except RevisionNotFoundError:
        raise ModelError(f"revision {revision!r} does not exist for {hub_id}", "check --revision") from None
    except RepositoryNotFoundError:
        close = close_aliases(hub_id)
        raise ModelError(
            f"{hub_id!r} was not found on the Hugging Face Hub (a typo, or a private repository without a token)",
            f"did you mean {' or '.join(close)}?"
            if close
            else f"check the name; catalog aliases: {', '.join(aliases())}",
        ) from None
    except Exception as exc:  # noqa: BLE001 - any network failure means: no Hub from here
        return None, f"the Hugging Face Hub is unreachable ({type(exc).__name__})"
