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


# The offline tokenizer's kind per model family (catalog `tokenizer`): the model's own kind of tokenizer and
# pair template, so token counts and special tokens are the model's.
TOKENIZER_KINDS = ("bert-uncased", "xlm-roberta", "deberta-v3", "modernbert", "qwen", "mxbai-v2", "gemma")


def offline_tokenizer(kind: str, vocab_size: int, max_length: int) -> Any:
    """A fast tokenizer with at most `vocab_size` entries and the pair template of the model family.

    "bert-uncased": WordPiece, [CLS] q [SEP] d [SEP] with token types; "xlm-roberta": <s> q </s></s> d </s>;
    "deberta-v3": SentencePiece-style Unigram (Metaspace), [CLS] q [SEP] d [SEP]; "modernbert": byte-level BPE
    trained here on the synthetic words, [CLS] q [SEP] d [SEP] without token types.
    """
    if kind == "deberta-v3":
        return _unigram_tokenizer(vocab_size, max_length)
    if kind == "modernbert":
        return _byte_bpe_tokenizer(vocab_size, max_length)
    if kind in ("qwen", "mxbai-v2"):
        from rerank_bench.models.prompts import MXBAI_RERANK_V2, QWEN3_RERANKER

        return _qwen_tokenizer(vocab_size, max_length, QWEN3_RERANKER if kind == "qwen" else MXBAI_RERANK_V2)
    if kind == "gemma":
        return _gemma_tokenizer(vocab_size, max_length)
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}: one of {', '.join(TOKENIZER_KINDS)}")
    return _wordpiece_tokenizer(kind, vocab_size, max_length)


def _wordpiece_tokenizer(kind: str, vocab_size: int, max_length: int) -> Any:
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
    return _cls_sep_tokenizer(tok, max_length, token_types=True)


def _cls_sep_tokenizer(tok: Any, max_length: int, token_types: bool) -> Any:
    """`tok` wrapped as transformers' fast tokenizer with BERT's names for its special tokens and pair template
    [CLS] q [SEP] d [SEP] (the document's tokens of type 1 where the family has token types)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    second = "$B:1 [SEP]:1" if token_types else "$B [SEP]"
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair=f"[CLS] $A [SEP] {second}",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    inputs = ["input_ids", "token_type_ids", "attention_mask"] if token_types else ["input_ids", "attention_mask"]
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
        model_input_names=inputs,
    )


def _unigram_tokenizer(vocab_size: int, max_length: int) -> Any:
    """DeBERTa-v3's kind: a SentencePiece Unigram model over "▁word" pieces, [PAD]=0 [CLS]=1 [SEP]=2 [UNK]=3
    as in its spm.model, [MASK] after the pieces (DeBERTa-v3 embeds 128,100 ids for 128,001 tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    pieces: list[tuple[str, float]] = [("[PAD]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[UNK]", 0.0)]
    pieces += [(chr(97 + i), -20.0) for i in range(26)] + [("\u2581", -20.0)]  # spelling for any other word
    i = 0
    while len(pieces) < vocab_size - 1:
        pieces.append(("\u2581" + _synthetic_word(i), -10.0))
        i += 1
    pieces.append(("[MASK]", 0.0))
    tok = Tokenizer(models.Unigram(pieces, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    return _cls_sep_tokenizer(tok, max_length, token_types=True)


def _byte_bpe_tokenizer(vocab_size: int, max_length: int) -> Any:
    """ModernBERT's kind (OLMo's byte-level BPE): merges trained here, by tokenizers' own trainer, on the
    synthetic words until each is one token; [CLS] q [SEP] d [SEP], no token types."""
    tok = _trained_byte_bpe(vocab_size, ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"], [])
    return _cls_sep_tokenizer(tok, max_length, token_types=False)


def _trained_byte_bpe(vocab_size: int, specials: list[str], frequent: list[str]) -> Any:
    """A byte-level BPE trained on the synthetic words, and on `frequent` texts (a prompt template) repeated
    often enough that their words and punctuation become tokens of their own, as in a real vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=specials[0]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    # A trained vocabulary holds the byte alphabet and every merge on the way to each word, so about a third
    # of it ends up whole words; train on enough words to fill it.
    words = [_synthetic_word(i) for i in range(vocab_size)] + frequent * 1000
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(words, trainer=trainer)
    return tok


def _qwen_tokenizer(vocab_size: int, max_length: int, template: Any) -> Any:
    """Qwen's kind: byte-level BPE with its chat special tokens (<|endoftext|> pads, <|im_start|>, <|im_end|>),
    <think> and </think>, and the template's answer tokens ("yes"/"no", or mxbai-rerank v2's "1"/"0") as single
    tokens; the reranker template's words are learned as whole tokens, so a pair's template costs about what it
    costs with the real vocabulary."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    frequent = []
    for text in (
        template.prefix,
        template.suffix,
        template.pair.format(instruction=template.instruction_text(None), query="", document=""),
    ):
        for special in specials:
            text = text.replace(special, " ")  # special tokens are matched whole, not trained
        frequent.append(text)
    tok = _trained_byte_bpe(vocab_size - 4, specials, frequent)
    tok.add_tokens([AddedToken(t, normalized=False) for t in ("<think>", "</think>")])
    tok.add_tokens([AddedToken(t, single_word=True, normalized=False) for t in (template.yes, template.no)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=max_length,
        model_input_names=["input_ids", "attention_mask"],
    )


def _gemma_tokenizer(vocab_size: int, max_length: int) -> Any:
    """Gemma's kind, offline: a byte-level BPE (Gemma's own is SentencePiece BPE with byte fallback: the same
    kind of split) with its <pad>, <eos>, <bos> and <unk> numbered as Gemma numbers them (0-3), "Yes" and "No"
    as single tokens, and bge-reranker-v2-gemma's prompt learned as whole words."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    from rerank_bench.models.prompts import BGE_GEMMA_RERANKER as template

    frequent = [template.pair.format(instruction=template.instruction, query="", document="")]
    tok = _trained_byte_bpe(vocab_size - 2, ["<pad>", "<eos>", "<bos>", "<unk>"], frequent)
    tok.add_tokens([AddedToken(t, single_word=True, normalized=False) for t in (template.yes, template.no)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        model_max_length=max_length,
        model_input_names=["input_ids", "attention_mask"],
    )


def special_token_ids(tokenizer: Any) -> dict[str, int]:
    """The config's token ids (pad, cls, sep, bos, eos) as the offline tokenizer numbers them."""
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "bos_token_id": tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id,
        "eos_token_id": tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id,
    }
    return {key: int(value) for key, value in ids.items() if value is not None}


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
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    try:
        tokenizer = cached_tokenizer(entry.hub_id, revision)
        source = "own"
        config_values = entry.config_dict()
        if tokenizer is None:
            tokenizer = offline_tokenizer(entry.tokenizer, entry.vocab_size, max_length)
            source = "offline"
            config_values.update(special_token_ids(tokenizer))  # the model pads with its tokenizer's [PAD]
        config = AutoConfig.for_model(entry.model_type, **config_values)
        torch.manual_seed(0)
        builder = AutoModelForCausalLM if entry.causal else AutoModelForSequenceClassification
        model = builder.from_config(config)
        # fp16 on disk halves the cache; the sweep loads it at the dtype it measures.
        model.to(torch.float16).save_pretrained(work)
        del model
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
