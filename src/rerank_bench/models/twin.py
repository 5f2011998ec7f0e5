"""Architecture twins: a catalog model rebuilt from its config with random weights.

Speed does not depend on weight values, so a twin runs exactly as fast as the trained model, with no
download. A twin needs a tokenizer of the right vocabulary size: the model's own when it is in the local
Hugging Face cache, otherwise one built here offline (`offline_tokenizer`) whose vocabulary is synthetic
words. Workloads are generated in token space (one word = one token), so token counts stay exact with
either tokenizer.

Twins are written once to the rerank-bench cache (`RERANK_BENCH_CACHE`, default ~/.cache/rerank-bench)
and reused: building bge-reranker-v2-m3's 568M parameters takes a while, loading them is quick.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rerank_bench.catalog import CatalogModel
from rerank_bench.paths import cache_root

# Bump when the twin layout changes, so old cached twins are rebuilt. 2: one twin per model, whatever the
# --max-length (the length is a load-time setting, not part of the weights).
TWIN_FORMAT = 2


def _synthetic_word(i: int) -> str:
    """The i-th synthetic vocabulary word: lowercase letters only, at least three, all distinct."""
    i += 26 * 27
    out = ""
    while i:
        i, r = divmod(i, 26)
        out = chr(97 + r) + out
    return out


def offline_tokenizer(kind: str, vocab_size: int, max_length: int) -> Any:
    """A fast tokenizer with `vocab_size` entries and the pair template of the model family.

    kind "bert-uncased": [CLS] q [SEP] d [SEP] with token types; "xlm-roberta": <s> q </s></s> d </s>.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if kind == "xlm-roberta":
        specials = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>"}
        vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
        mask = "<mask>"
    else:
        specials = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]"}
        vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
        mask = "[MASK]"
    i = 0
    while len(vocab) < vocab_size - 1:
        vocab[_synthetic_word(i)] = len(vocab)
        i += 1
    vocab[mask] = len(vocab)

    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token=specials["unk"], max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    if kind == "xlm-roberta":
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>",
            pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", 0), ("</s>", 2)],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="</s>",
            sep_token="</s>",
            cls_token="<s>",
            unk_token="<unk>",
            pad_token="<pad>",
            mask_token=mask,
            model_max_length=max_length,
            model_input_names=["input_ids", "attention_mask"],
        )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token=mask,
        model_max_length=max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def cached_tokenizer(hub_id: str, revision: str | None) -> Any | None:
    """The model's own tokenizer if the Hugging Face cache already holds it, else None (no network)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(hub_id, revision=revision, local_files_only=True)
    except (OSError, ValueError):
        return None


def twin_key(entry: CatalogModel) -> str:
    payload = json.dumps([TWIN_FORMAT, entry.config_dict(), entry.tokenizer], sort_keys=True)
    return f"{entry.alias}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


TWIN_MARKER = "rerank_bench_twin.json"


def is_random_twin(folder: Path) -> bool:
    """A folder holding a twin's random weights says so in its marker (copies made for serving keep it), so
    a sweep of that folder is labelled random weights, not real."""
    try:
        return bool(json.loads((folder / TWIN_MARKER).read_text()).get("random_weights"))
    except (OSError, ValueError, AttributeError):
        return False


def build_twin(entry: CatalogModel, revision: str | None = None, root: Path | None = None) -> tuple[Path, str]:
    """A directory holding the twin (config, random weights, tokenizer); built once, then reused.

    Returns (path, tokenizer_source) where tokenizer_source is "own" or "offline".
    """
    base = (root or cache_root()) / "twins"
    target = base / twin_key(entry)
    max_length = entry.max_length  # the tokenizer's default; a run's --max-length is applied when loading
    marker = target / TWIN_MARKER
    if marker.exists():
        return target, json.loads(marker.read_text())["tokenizer_source"]

    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    try:
        config_values = entry.config_dict()
        config = AutoConfig.for_model(entry.model_type, **config_values)
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_config(config)
        # fp16 on disk halves the cache; the sweep loads it at the dtype it measures.
        model.to(torch.float16).save_pretrained(work)
        del model
        tokenizer = cached_tokenizer(entry.hub_id, revision)
        source = "own"
        if tokenizer is None:
            tokenizer = offline_tokenizer(entry.tokenizer, entry.vocab_size, max_length)
            source = "offline"
        tokenizer.model_max_length = max_length
        tokenizer.save_pretrained(work)
        (work / TWIN_MARKER).write_text(
            json.dumps(
                {"alias": entry.alias, "hub_id": entry.hub_id, "tokenizer_source": source, "random_weights": True}
            )
        )
        try:
            work.rename(target)
        except OSError:  # another process built it first
            shutil.rmtree(work, ignore_errors=True)
        return target, source
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
