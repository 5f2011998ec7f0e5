"""Tiny random rerankers saved with save_pretrained into a temp dir: what tests load instead of the Hub."""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "the",
    "and",
    "for",
    "with",
    "query",
    "document",
    "search",
    "rank",
    "score",
    "model",
    "berlin",
    "city",
    "people",
    "live",
    "many",
    "how",
    "population",
    "museum",
    "known",
    "well",
    "river",
    "bridge",
    "train",
    "music",
]


def write_wordpiece_vocab(path: Path, size: int = 200) -> list[str]:
    """A WordPiece vocab.txt: special tokens, real words, then filler words up to `size` entries."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    i = 0
    while len(tokens) < size:
        tokens.append("fill" + "".join(chr(97 + int(d)) for d in str(i)))
        i += 1
    path.write_text("\n".join(tokens) + "\n")
    return tokens


def make_tiny_bert(folder: Path, *, head: bool = True, with_tokenizer: bool = True, max_position: int = 128) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=200,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_position,
        num_labels=1,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config) if head else BertModel(config)
    model.save_pretrained(folder)
    if with_tokenizer:
        vocab = folder / "vocab.txt"
        write_wordpiece_vocab(vocab, 200)
        BertTokenizerFast(vocab=str(vocab), model_max_length=max_position).save_pretrained(folder)
    return folder


def make_tiny_xlmr(folder: Path) -> Path:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    from rerank_bench.models.twin import offline_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    config = XLMRobertaConfig(
        vocab_size=300,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=1,
    )
    torch.manual_seed(0)
    XLMRobertaForSequenceClassification(config).save_pretrained(folder)
    offline_tokenizer("xlm-roberta", 300, 128).save_pretrained(folder)
    return folder


TINY_SHAPE = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=96, vocab_size=3000)


def tiny_catalog_entry(alias: str):
    """A catalog entry shrunk to two layers 64 wide, keeping its family's settings (relative attention, local
    attention, pooler) and its tokenizer kind; special token ids come from the offline tokenizer."""
    import dataclasses

    from rerank_bench.catalog import find_model

    entry = find_model(alias)
    extra = {k: v for k, v in entry.extra_config.items() if not k.endswith("_token_id")}
    if "pooler_hidden_size" in extra:
        extra["pooler_hidden_size"] = TINY_SHAPE["hidden_size"]
    return dataclasses.replace(entry, extra_config=extra, **TINY_SHAPE)


def make_tiny_twin(folder: Path, alias: str) -> Path:
    """The twin builder's output for the shrunk entry, moved to `folder`."""
    import shutil

    from rerank_bench.models.twin import build_twin

    built, _ = build_twin(tiny_catalog_entry(alias), root=folder.parent / f".{folder.name}-build")
    shutil.move(str(built), str(folder))
    shutil.rmtree(folder.parent / f".{folder.name}-build", ignore_errors=True)
    return folder


# The settings that make a DeBERTa-v2 config DeBERTa-v3's (relative attention over 2 x 256 buckets, shared
# position keys, no absolute positions or token types) and a ModernBERT config the reranker's (local attention
# in two layers of three), for tests that build a family's layers at other widths.
DEBERTA_V3 = dict(
    relative_attention=True,
    position_buckets=256,
    max_relative_positions=-1,
    pos_att_type=["p2c", "c2p"],
    norm_rel_ebd="layer_norm",
    share_att_key=True,
    position_biased_input=False,
    type_vocab_size=0,
    max_position_embeddings=512,
)
MODERNBERT = dict(max_position_embeddings=8192, global_attn_every_n_layers=3, local_attention=128)
