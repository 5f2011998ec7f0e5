import json
import statistics

import pytest

from rerank_bench.errors import WorkloadError
from rerank_bench.workload.requests import (
    LengthSpec,
    load_workload_file,
    parse_doc_tokens,
    requests_from_file,
    single_token_words,
    synthetic_requests,
)

WORDS = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(100)]


def test_parse_doc_tokens():
    assert parse_doc_tokens(None) == LengthSpec("rag")
    assert parse_doc_tokens("rag") == LengthSpec("rag")
    assert parse_doc_tokens("200") == LengthSpec("fixed", 200, 200)
    assert parse_doc_tokens("50:400") == LengthSpec("uniform", 50, 400)
    assert parse_doc_tokens("50:400").label() == "uniform:50:400"
    for bad in ("abc", "400:50", "0", "5:"):
        with pytest.raises(WorkloadError, match="--doc-tokens"):
            parse_doc_tokens(bad)


def test_synthetic_requests_are_reproducible_and_have_exact_word_counts():
    a = synthetic_requests(WORDS, 5, LengthSpec("fixed", 30, 30), 512, seed=1, count=4)
    b = synthetic_requests(WORDS, 5, LengthSpec("fixed", 30, 30), 512, seed=1, count=4)
    c = synthetic_requests(WORDS, 5, LengthSpec("fixed", 30, 30), 512, seed=2, count=4)
    assert a == b and a != c
    assert all(len(r.documents) == 5 for r in a)
    assert all(len(d.split()) == 30 for r in a for d in r.documents)
    assert all(8 <= len(r.query.split()) <= 20 for r in a)


def test_rag_mix_is_skewed_with_mean_near_150_and_a_long_tail():
    requests = synthetic_requests(WORDS, 100, LengthSpec("rag"), 512, seed=0, count=40)
    lengths = [len(d.split()) for r in requests for d in r.documents]
    assert 135 <= statistics.fmean(lengths) <= 165
    assert statistics.median(lengths) < statistics.fmean(lengths)  # right-skewed
    assert max(lengths) > 400
    assert all(len(r.query.split()) + len(d.split()) + 4 <= 512 for r in requests for d in r.documents)


def test_uniform_lengths_stay_in_range():
    requests = synthetic_requests(WORDS, 50, LengthSpec("uniform", 20, 40), 512, seed=0, count=4)
    lengths = [len(d.split()) for r in requests for d in r.documents]
    assert min(lengths) >= 20 and max(lengths) <= 40


def test_workload_file_errors_name_the_line(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text('{"query": "q", "documents": ["a", "b"]}\n{"query": "q2", "documents": "oops"}\n')
    with pytest.raises(WorkloadError, match=r"w.jsonl:2: \"documents\" must be a non-empty list"):
        load_workload_file(path)
    path.write_text('{"query": "q", "documents": ["a"]}\nnot json\n')
    with pytest.raises(WorkloadError, match=r"w.jsonl:2: not valid JSON"):
        load_workload_file(path)
    with pytest.raises(WorkloadError, match="does not exist"):
        load_workload_file(tmp_path / "missing.jsonl")


def test_depth_beyond_a_requests_documents_names_the_line_unless_sampling(tmp_path):
    path = tmp_path / "w.jsonl"
    lines = [{"query": "q1", "documents": ["a", "b", "c"]}, {"query": "q2", "documents": ["d"]}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    requests = load_workload_file(path)
    assert [len(r.documents) for r in requests_from_file(requests, 1, 0, False, str(path))] == [1, 1]
    with pytest.raises(WorkloadError, match=r"w.jsonl:2: depth 2 needs 2 documents, this request has 1"):
        requests_from_file(requests, 2, 0, False, str(path))
    sampled = requests_from_file(requests, 5, 0, True, str(path))
    assert [len(r.documents) for r in sampled] == [5, 5]
    assert set(sampled[1].documents) == {"d"}


def test_single_token_words_come_from_the_models_tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    words = single_token_words(tokenizer)
    assert "berlin" in words and "population" in words
    assert "[CLS]" not in words
    encoded = tokenizer(" ".join(words[:50]), add_special_tokens=False)["input_ids"]
    assert len(encoded) == 50
