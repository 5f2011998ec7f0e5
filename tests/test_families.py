"""The newer reranker families (DeBERTa-v3, ModernBERT) through the twin builder, offline tokenizers of their
own kind and the torch backend, at tiny sizes (the catalog sizes run in benchmarks/)."""

import math

import pytest

from rerank_bench.models.twin import build_twin, offline_tokenizer
from rerank_bench.workload.records import Request
from rerank_bench.workload.requests import single_token_words

TEMPLATES = {
    # kind: (first token, separator between query and document, last token)
    "deberta-v3": ("[CLS]", "[SEP]", "[SEP]"),
    "modernbert": ("[CLS]", "[SEP]", "[SEP]"),
}


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_offline_tokenizer_of_each_kind_counts_one_token_per_word_with_its_pair_template(kind):
    tokenizer = offline_tokenizer(kind, 3000, 512)
    words = single_token_words(tokenizer)
    assert len(words) >= 500 and len(tokenizer) <= 3000
    query, document = " ".join(words[:2]), " ".join(words[2:5])
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(query, document)["input_ids"])
    first, between, last = TEMPLATES[kind]
    assert len(tokens) == 2 + 3 + 3  # every word one token, three special tokens
    assert (tokens[0], tokens[3], tokens[-1]) == (first, between, last)
    assert [t.lstrip("\u2581\u0120") for t in tokens[1:3]] == words[:2]  # SentencePiece / byte-level markers


@pytest.mark.parametrize("alias", ["mxbai-rerank-xsmall-v1", "gte-reranker-modernbert-base"])
def test_a_tiny_twin_of_each_family_loads_scores_and_counts_tokens_exactly(alias, tmp_path):
    """The catalog entry shrunk (two layers, 64 wide), built by the twin builder with the family's own
    tokenizer kind, loaded by the torch backend: finite scores, and each pair's tokens are its words plus the
    template's three."""
    from tiny_models import tiny_catalog_entry

    from rerank_bench.backends.torch_st import TorchBackend
    from rerank_bench.models.resolve import resolve_model

    folder, source = build_twin(tiny_catalog_entry(alias), root=tmp_path)
    assert source == "offline"
    model = resolve_model(str(folder), weights="auto")
    assert model.weights == "random"  # the twin's marker says so
    scorer = TorchBackend().load(model, "cpu", "fp32", 1, 128)
    try:
        words = scorer.words()
        request = Request(" ".join(words[:3]), (" ".join(words[3:10]), " ".join(words[10:12])))
        assert scorer.pair_token_counts(request) == [3 + 7 + 3, 3 + 2 + 3]
        assert all(math.isfinite(s) for s in scorer.score(request, 2))
    finally:
        scorer.close()


def tiny_decoder_twin(alias, root, kv_heads):
    """A decoder reranker's catalog entry shrunk to two layers 64 wide (4 heads of 16, `kv_heads` key/value)."""
    import dataclasses

    from rerank_bench.catalog import find_model

    entry = find_model(alias)
    extra = {k: v for k, v in entry.extra_config.items() if not k.endswith("_token_id")}
    extra.update(num_key_value_heads=kv_heads, head_dim=16)
    tiny = dataclasses.replace(
        entry,
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        vocab_size=3000,
        max_length=256,
        extra_config=extra,
    )
    return build_twin(tiny, root=root)[0]


def tiny_qwen_twin(root):
    return tiny_decoder_twin("qwen3-reranker-4b", root, kv_heads=2)


def scored_by_the_tool(folder, instruction=None):
    """A tiny decoder twin scored by the tool (torch fp32, batches of 3): the request (five documents of
    different lengths, so padding matters), the scores, the token counts, and the folder's tokenizer (left
    padding) and causal LM for a hand-written reference."""
    import dataclasses

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rerank_bench.backends.torch_st import TorchBackend
    from rerank_bench.models.resolve import resolve_model

    model = dataclasses.replace(resolve_model(str(folder), weights="auto"), instruction=instruction)
    assert (model.scoring, model.weights) == ("yes-no", "random")
    scorer = TorchBackend().load(model, "cpu", "fp32", 1, 256)
    try:
        words = scorer.words()
        docs = tuple(" ".join(words[i : i + 3 + 5 * i]) for i in range(5))
        request = Request(" ".join(words[40:44]), docs)
        ours = scorer.score(request, 3)
        counts = scorer.pair_token_counts(request)
    finally:
        scorer.close()
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    reference_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return request, ours, counts, tokenizer, reference_model


def test_the_yes_no_scorer_equals_the_model_card_recipe_on_a_qwen3_twin(tmp_path):
    """The scorer against a hand-written copy of the Qwen3-Reranker model card's code (format, truncate to what
    the template leaves, prefix + pair + suffix, pad on the left, log-softmax of "no" and "yes" at the last
    position), on a tiny random twin: the same scores, and the template's tokens counted in every pair."""
    import torch

    from rerank_bench.models.prompts import QWEN3_RERANKER as card

    request, ours, counts, tokenizer, reference_model = scored_by_the_tool(tiny_qwen_twin(tmp_path))
    docs = request.documents
    prefix = tokenizer.encode(card.prefix, add_special_tokens=False)
    suffix = tokenizer.encode(card.suffix, add_special_tokens=False)
    pairs = [card.pair.format(instruction=card.instruction, query=request.query, document=d) for d in docs]
    inputs = tokenizer(
        pairs,
        padding=False,
        truncation="longest_first",
        return_attention_mask=False,
        max_length=256 - len(prefix) - len(suffix),
        add_special_tokens=False,
    )
    inputs["input_ids"] = [prefix + ids + suffix for ids in inputs["input_ids"]]
    assert counts == [len(ids) for ids in inputs["input_ids"]] and min(counts) > len(prefix) + len(suffix)
    padded = tokenizer.pad(inputs, padding=True, return_tensors="pt")
    with torch.no_grad():
        last = reference_model(**padded).logits[:, -1, :]
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    expected = torch.nn.functional.log_softmax(torch.stack([last[:, no], last[:, yes]], dim=1), dim=1)[:, 1].exp()
    assert max(abs(a - b) for a, b in zip(ours, expected.tolist(), strict=True)) < 1e-4


def test_onnx_refuses_a_decoder_reranker_in_one_line(tmp_path):
    from rerank_bench.backends import get_backend
    from rerank_bench.errors import ModelError
    from rerank_bench.models.resolve import resolve_model

    model = resolve_model(str(tiny_qwen_twin(tmp_path)), weights="auto")
    with pytest.raises(ModelError, match="cannot score .* yet: a decoder reranker"):
        get_backend("onnx").load(model, "cpu", "fp32", 1, None)


def test_will_it_run_says_an_8b_decoder_reranker_does_not_fit_a_16_gb_gpu_at_fp16_and_fits_24():
    """Qwen3-Reranker-8B's fp16 weights alone (8.19B x 2 bytes, 15,623 MiB, lm_head untied) are more than a
    T4's 15,852 usable MiB once the allocator's margin is added; an L4 (24 GB) holds them with room to batch."""
    import json

    from typer.testing import CliRunner

    from rerank_bench.cli import app

    runner = CliRunner()
    rows = {}
    for profile in ("t4", "l4"):
        result = runner.invoke(
            app,
            ["will-it-run", "qwen3-reranker-8b", "--hardware", profile, "--depth", "50", "--max-length", "1024"]
            + ["--json"],
        )
        assert result.exit_code in (0, 1), result.output
        rows[profile] = json.loads(result.stdout)[0]
    assert round(rows["t4"]["weights_mib"]) == round(8_190_735_360 * 2 / 2**20)
    assert rows["t4"]["verdict"] == "WON'T FIT" and rows["t4"]["max_batch"] == 0
    assert rows["l4"]["verdict"] == "RUNS" and rows["l4"]["max_batch"] >= 8


def test_an_instruction_of_ones_own_goes_into_the_template_and_its_tokens_are_counted(tmp_path):
    """--instruction replaces the model card's in every pair: the scorer's pairs grow by the extra words, the
    scores change, will-it-run's template count follows, and a classifier refuses it in one line."""
    import dataclasses

    from typer.testing import CliRunner

    from rerank_bench.backends.torch_st import TorchBackend
    from rerank_bench.cli import app
    from rerank_bench.models.prompts import QWEN3_RERANKER, estimated_text_tokens, template_tokens_with
    from rerank_bench.models.resolve import resolve_model

    model = resolve_model(str(tiny_qwen_twin(tmp_path)), weights="auto")
    own = QWEN3_RERANKER.instruction + " about rerankers and their latency on small machines"
    scores, counts = [], []
    for instruction in (None, own):
        scorer = TorchBackend().load(dataclasses.replace(model, instruction=instruction), "cpu", "fp32", 1, 256)
        try:
            words = scorer.words()
            request = Request(" ".join(words[40:44]), tuple(" ".join(words[i : i + 6]) for i in range(3)))
            scores.append(scorer.score(request, 3))
            counts.append(scorer.pair_token_counts(request))
        finally:
            scorer.close()
    assert all(b > a for a, b in zip(counts[0], counts[1], strict=True))
    assert scores[0] != scores[1]
    added = estimated_text_tokens(own) - estimated_text_tokens(QWEN3_RERANKER.instruction)
    assert added == 8 and template_tokens_with(QWEN3_RERANKER, 78, own) == 86
    runner = CliRunner()
    result = runner.invoke(app, ["will-it-run", "minilm-l6", "--hardware", "l4", "--instruction", "x"])
    assert result.exit_code == 2 and "--instruction is for decoder rerankers" in result.output
    result = runner.invoke(app, ["sweep", "-m", "minilm-l6", "--instruction", "x", "--weights", "random"])
    assert result.exit_code == 2 and "--instruction is for decoder rerankers" in result.output


def tiny_gemma_twin(root):
    return tiny_decoder_twin("bge-reranker-v2-gemma", root, kv_heads=1)


def test_the_yes_logit_scorer_equals_flagembeddings_recipe_on_a_gemma_twin(tmp_path):
    """bge-reranker-v2-gemma as FlagEmbedding's FlagLLMReranker scores it, written out by hand: <bos> and
    "A: {query}", then "\\n" + "B: {passage}", then "\\n" + the prompt, each tokenized on its own, padded on the
    left, the logit of "Yes" at the last position. The scorer gives the same scores and counts the same tokens."""
    import torch

    from rerank_bench.models.prompts import BGE_GEMMA_RERANKER as card

    request, ours, counts, tokenizer, reference_model = scored_by_the_tool(tiny_gemma_twin(tmp_path))
    docs = request.documents
    prompt = tokenizer(card.instruction, add_special_tokens=False)["input_ids"]
    sep = tokenizer("\n", add_special_tokens=False)["input_ids"]
    items = []
    for doc in docs:
        query_ids = tokenizer(f"A: {request.query}", add_special_tokens=False)["input_ids"]
        passage_ids = tokenizer(f"B: {doc}", add_special_tokens=False)["input_ids"]
        items.append([tokenizer.bos_token_id] + query_ids + sep + passage_ids + sep + prompt)
    assert counts == [len(ids) for ids in items]
    padded = tokenizer.pad({"input_ids": items}, padding=True, return_tensors="pt")
    with torch.no_grad():
        last = reference_model(**padded).logits[:, -1, :]
    yes = tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    expected = last[:, yes].tolist()
    assert max(abs(a - b) for a, b in zip(ours, expected, strict=True)) < 1e-4


def tiny_mxbai_v2_twin(root):
    return tiny_decoder_twin("mxbai-rerank-base-v2", root, kv_heads=2)


@pytest.mark.parametrize("instruction", [None, "Find code that answers the question"])
def test_the_yes_minus_no_scorer_equals_mxbai_reranks_recipe_on_a_qwen2_twin(instruction, tmp_path):
    """mxbai-rerank-base-v2 as mixedbread's mxbai-rerank package scores it (its MxbaiRerankV2 batch preparation,
    as adapted in AnswerDotAI's rerankers), written out by hand: the system turn, "query: q" (after
    "instruction: i\n" when given) cut to 3/4 of max_length, "\n", "document: d", "\n", the task prompt and the
    assistant turn, each tokenized on its own, padded on the left to a multiple of 8; the logit of "1" less the
    logit of "0" at the last position. Same scores and token counts, with and without an instruction."""
    import torch

    from rerank_bench.models.prompts import MXBAI_RERANK_V2 as card

    folder = tiny_mxbai_v2_twin(tmp_path)
    request, ours, counts, tokenizer, reference_model = scored_by_the_tool(folder, instruction)
    docs = request.documents

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    prefix, suffix, task, sep = ids(card.prefix), ids(card.suffix), ids(card.parts[-1]), ids("\n")
    query_text = f"query: {request.query}"
    if instruction:
        query_text = f"instruction: {instruction}\n" + query_text
    items = [prefix + ids(query_text) + sep + ids(f"document: {doc}") + sep + task + suffix for doc in docs]
    assert counts == [len(x) for x in items]
    padded = tokenizer.pad({"input_ids": items}, padding="longest", pad_to_multiple_of=8, return_tensors="pt")
    with torch.no_grad():
        last = reference_model(**padded).logits[:, -1, :]
    one, zero = ids("1")[0], ids("0")[0]
    expected = (last[:, one] - last[:, zero]).tolist()
    assert max(abs(a - b) for a, b in zip(ours, expected, strict=True)) < 1e-4


def test_a_served_decoder_reranker_is_sent_its_template_split_as_vllm_expects():
    """vLLM's Qwen3-Reranker example puts the prefix, instruction and query on the query and "<Document>: ..."
    with the suffix on each document; bge-reranker-v2-gemma's "A: q" goes on the query, "B: d" and the prompt
    on the document. endpoint --template does that to every request; bad combinations are one line."""
    from rerank_bench.endpoint.run import EndpointRequest, templated
    from rerank_bench.errors import UsageError
    from rerank_bench.models.prompts import BGE_GEMMA_RERANKER, QWEN3_RERANKER, served_texts

    query, doc = served_texts(QWEN3_RERANKER, None, "what is x", "x is y")
    assert query == QWEN3_RERANKER.prefix + f"<Instruct>: {QWEN3_RERANKER.instruction}\n<Query>: what is x\n"
    assert doc == "<Document>: x is y" + QWEN3_RERANKER.suffix
    query, doc = served_texts(BGE_GEMMA_RERANKER, "judge it", "q", "d")
    assert (query, doc) == ("A: q\n", "B: d\njudge it")
    (wrapped,) = templated([Request("q", ("d1", "d2"))], "gemma", None)
    assert wrapped.query == "A: q\n" and wrapped.documents[1] == "B: d2\n" + BGE_GEMMA_RERANKER.instruction
    for kwargs, message in (
        ({"template": "llama"}, "--template 'llama' is not one of qwen3, gemma"),
        ({"instruction": "x"}, "--instruction goes into a template"),
    ):
        with pytest.raises(UsageError, match=message):
            EndpointRequest(url="http://127.0.0.1:1", depths=(10,), **kwargs).check()


@pytest.mark.parametrize("twin", [tiny_qwen_twin, tiny_gemma_twin], ids=["qwen3", "gemma"])
def test_the_shared_prefix_layout_scores_as_every_pair_whole_with_fewer_tokens_computed(twin, tmp_path):
    """--prefix shared: the tokens all pairs begin with run once, each pair's rest against their keys and values
    (right-padded, read at its own last token): the same scores as the whole pairs, in either order and with
    eager attention too, and fewer tokens computed; the real tokens counted stay every pair's."""
    from rerank_bench.backends.torch_st import TorchBackend
    from rerank_bench.models.resolve import resolve_model

    model = resolve_model(str(twin(tmp_path)), weights="auto")
    for attention in ("", "eager"):
        scorer = TorchBackend().load(model, "cpu", "fp32", 1, 256, attention=attention)
        try:
            assert f"attention {attention or 'sdpa'}" in scorer.info.backend_options
            words = scorer.words()
            request = Request(" ".join(words[40:44]), tuple(" ".join(words[i : i + 2 + 4 * i]) for i in range(6)))
            for order in ("given", "length"):
                scorer.set_order(order)
                scorer.reset_padding_counters()
                whole = scorer.score(request, 4)
                whole_tokens = scorer.padding_counters()
                scorer.set_prefix("shared")
                scorer.reset_padding_counters()
                shared = scorer.score(request, 4)
                shared_tokens = scorer.padding_counters()
                scorer.set_prefix("")
                assert max(abs(a - b) for a, b in zip(whole, shared, strict=True)) < 1e-5
                assert shared_tokens[1] == whole_tokens[1] == sum(scorer.pair_token_counts(request))
                assert shared_tokens[0] < whole_tokens[0]
        finally:
            scorer.close()
