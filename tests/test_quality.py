"""Relevance on labelled requests: metrics by hand, labelled JSONL and BEIR folders, and the columns they fill."""

import json
import math

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.errors import WorkloadError
from rerank_bench.sweep.quality import given_order_scores, quality_fields, relevance_metrics
from rerank_bench.workload.requests import Request, load_workload_file, requests_from_file

runner = CliRunner()


def test_metrics_match_hand_computed_values():
    # one relevant document, ranked second: RR 1/2, nDCG@10 = (1/log2(3)) / (1/log2(2)) = 0.6309, recall 1
    one = Request("q", ("a", "b", "c", "d"), (0, 0, 1, 0))
    found = relevance_metrics([one], [[0.9, 0.1, 0.5, 0.0]])
    assert found == pytest.approx({"ndcg_at_10": 1 / math.log2(3), "mrr_at_10": 0.5, "recall_at_10": 1.0})
    # a relevant document the candidates miss: the ideal ranking holds two, recall finds one of two
    missed = Request("q", ("a", "b"), (1, 0), outside=(1,))
    found = relevance_metrics([missed], [[0.1, 0.9]])
    ideal = 1 + 1 / math.log2(3)
    assert found == pytest.approx({"ndcg_at_10": (1 / math.log2(3)) / ideal, "mrr_at_10": 0.5, "recall_at_10": 0.5})
    # graded: gains are the grades (trec_eval); scores order them 1, 2, 0: DCG = 1 + 2/log2(3), ideal 2 + 1/log2(3)
    graded = Request("q", ("a", "b", "c"), (2, 1, 0))
    found = relevance_metrics([graded], [[0.5, 0.9, 0.1]])
    assert found["ndcg_at_10"] == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    # means over requests
    both = relevance_metrics([one, missed], [[0.9, 0.1, 0.5, 0.0], [0.1, 0.9]])
    assert both["mrr_at_10"] == pytest.approx(0.5) and both["recall_at_10"] == pytest.approx(0.75)


def test_only_the_top_ten_count():
    request = Request("q", tuple(f"d{i}" for i in range(12)), tuple([0] * 11 + [1]))
    scores = [float(12 - i) for i in range(12)]  # the relevant one ranks 12th
    assert relevance_metrics([request], [scores]) == {"ndcg_at_10": 0.0, "mrr_at_10": 0.0, "recall_at_10": 0.0}


def test_the_first_stage_is_the_given_order():
    request = Request("q", ("a", "b", "c"), (1, 0, 0))
    assert given_order_scores([request]) == [[3.0, 2.0, 1.0]]
    fields = quality_fields([request], [[0.0, 1.0, 2.0]])  # the reranker puts it last
    assert fields["first_stage_mrr_at_10"] == 1.0 and fields["mrr_at_10"] == pytest.approx(1 / 3)
    assert fields["quality_requests"] == 1


def _write_jsonl(path, lines):
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_jsonl_labels_and_relevant_indices(tmp_path):
    path = _write_jsonl(
        tmp_path / "w.jsonl",
        [
            {"query": "q1", "documents": ["a", "b", "c"], "labels": [0, 2, 1]},
            {"query": "q2", "documents": ["a", "b", "c"], "relevant": [2]},
        ],
    )
    first, second = load_workload_file(path)
    assert first.labels == (0, 2, 1) and second.labels == (0, 0, 1)
    # cut to depth 2: the relevant document beyond it is counted as missed, not forgotten
    cut = requests_from_file([first, second], 2, 0, False)
    assert cut[0].labels == (0, 2) and cut[0].outside == (1,)
    assert cut[1].labels == (0, 0) and cut[1].outside == (1,)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"query": "q", "documents": ["a", "b"], "labels": [1]}, '"labels" must be a list of 2 grades'),
        ({"query": "q", "documents": ["a", "b"], "labels": [1, -1]}, "whole numbers 0 or more"),
        ({"query": "q", "documents": ["a", "b"], "labels": [1, 0.5]}, "whole numbers 0 or more"),
        ({"query": "q", "documents": ["a", "b"], "relevant": [2]}, "index 2 is outside the 2 documents"),
        ({"query": "q", "documents": ["a"], "relevant": [0], "labels": [1]}, 'give "labels" or "relevant", not both'),
    ],
)
def test_malformed_labels_name_the_file_line_and_field(tmp_path, line, message):
    path = _write_jsonl(tmp_path / "w.jsonl", [{"query": "ok", "documents": ["a"], "labels": [1]}, line])
    with pytest.raises(WorkloadError, match=message) as caught:
        load_workload_file(path)
    assert f"{path}:2" in str(caught.value)


def test_a_file_labels_every_line_or_none(tmp_path):
    path = _write_jsonl(
        tmp_path / "w.jsonl",
        [{"query": "q", "documents": ["a"], "labels": [1]}, {"query": "q", "documents": ["a"]}],
    )
    with pytest.raises(WorkloadError, match=r"w.jsonl:2: no labels, where 1 other lines have them"):
        load_workload_file(path)


def make_beir(folder, run=True, score="1"):
    folder.mkdir()
    corpus = [{"_id": f"d{i}", "title": f"title {i}", "text": f"text {i}"} for i in range(8)]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus) + "\n")
    queries = [{"_id": "q1", "text": "first query"}, {"_id": "q2", "text": "second query"}]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text(
        f"query-id\tcorpus-id\tscore\nq1\td3\t{score}\nq1\td7\t2\nq2\td0\t1\nq2\td5\t0\n"
    )
    if run:
        lines = [f"q1 Q0 d{d} {r} {10 - r} bm25" for r, d in enumerate([3, 1, 2, 0], start=1)]
        lines += [f"q2 Q0 d{d} {r} {10 - r} bm25" for r, d in enumerate([4, 5, 0], start=1)]
        (folder / "run.trec").write_text("\n".join(lines) + "\n")
    return folder


def test_a_beir_folder_with_a_first_stage_run(tmp_path):
    q1, q2 = load_workload_file(make_beir(tmp_path / "beir"))
    assert q1.query == "first query" and q1.documents[0] == "title 3 text 3"
    assert q1.labels == (1, 0, 0, 0) and q1.outside == (2,)  # d7 (grade 2) was not retrieved
    assert q2.labels == (0, 0, 1) and q2.outside == ()
    fields = quality_fields(requests_from_file([q1, q2], 3, 0, False), [[0.0, 1.0, 2.0], [3.0, 2.0, 1.0]])
    # first stage: q1's d3 at rank 1 (RR 1), q2's d0 at rank 3 (RR 1/3)
    assert fields["first_stage_mrr_at_10"] == pytest.approx((1 + 1 / 3) / 2)
    assert fields["first_stage_recall_at_10"] == pytest.approx((0.5 + 1.0) / 2)


def test_a_beir_folder_without_a_run_draws_candidates_by_a_seeded_rule(tmp_path):
    first = load_workload_file(make_beir(tmp_path / "a", run=False))
    again = load_workload_file(make_beir(tmp_path / "b", run=False))
    assert first == again  # seeded by the query id
    q1 = first[0]
    assert len(q1.documents) == 8 and sum(q1.labels) >= 1  # 8 documents in this corpus, a judged one among them
    with pytest.raises(WorkloadError, match=r"test.tsv:2: score 'x' is not a whole number"):
        load_workload_file(make_beir(tmp_path / "c", score="x"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkloadError, match="no corpus.jsonl"):
        load_workload_file(tmp_path / "empty")


@pytest.mark.slow
def test_a_labelled_sweep_writes_relevance_columns_and_shows_them(tmp_path):
    lines = [
        {"query": f"q{i}", "documents": [f"doc {i} {j}" for j in range(6)], "labels": [1, 0, 0, 0, 2, 0]}
        for i in range(5)
    ]
    workload = _write_jsonl(tmp_path / "w.jsonl", lines)
    out = tmp_path / "r.csv"
    result = runner.invoke(
        app,
        ["sweep", "--backend", "fake", "-m", "fake:ms_per_pair=0.01", "--max-seconds-per-case", "0.3"]
        + ["--workload", str(workload), "--depth", "6", "--batch-size", "2", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    from rerank_bench.results.store import read_rows

    (row,) = read_rows(out)
    requests = requests_from_file(load_workload_file(workload), 6, 0, False)
    fake_scores = [_fake_scores(r) for r in requests]
    expected = relevance_metrics(requests, fake_scores)
    assert row["ndcg_at_10"] == pytest.approx(expected["ndcg_at_10"])
    assert row["quality_requests"] == 5 and row["first_stage_mrr_at_10"] == 1.0
    assert "nDCG@10" in result.output and "first stage" in result.output


def _fake_scores(request):
    """The fake backend's scores (backends/fake.py): a hash of each document."""
    import hashlib

    return [int(hashlib.sha256(d.encode()).hexdigest()[:8], 16) / 2**32 for d in request.documents]


def test_tune_refuses_an_ndcg_floor_without_labels(tmp_path):
    result = runner.invoke(app, ["tune", "minilm-l6", "--max-ndcg-drop", "0.005"])
    assert result.exit_code == 2 and "--max-ndcg-drop needs relevance labels" in result.output


def test_compare_calls_a_quality_drop_a_regression(tmp_path):
    from helpers import lognormal, set_first_row_cell, write_run

    def run(name, ndcg):
        path = write_run(tmp_path / name, {(8, 20): lognormal(60, 100.0, seed=1)}, run_id=name)
        set_first_row_cell(path, "ndcg_at_10", ndcg)
        set_first_row_cell(path, "quality_requests", "20")
        return path

    base, same, worse = run("base.csv", "0.4000"), run("same.csv", "0.3990"), run("worse.csv", "0.3900")
    ok = runner.invoke(app, ["compare", str(base), str(same), "--json"])
    bad = runner.invoke(app, ["compare", str(base), str(worse), "--json"])
    assert ok.exit_code == 0, ok.output
    assert bad.exit_code == 1, bad.output
    (case,) = json.loads(bad.stdout)["cases"]
    quality = next(m for m in case["metrics"] if m["metric"] == "ndcg@10")
    assert quality["verdict"] == "regressed" and "-0.0100" in quality["note"]
    assert json.loads(ok.stdout)["cases"][0]["verdict"] != "regressed"


def test_tune_keeps_best_within_the_ndcg_drop():
    from rerank_bench.tune.search import choose

    def row(backend, dtype, rate, rho, ndcg, drop):
        return {
            "status": "ok",
            "backend": backend,
            "dtype": dtype,
            "pairs_per_s": rate,
            "agreement_spearman_mean": rho,
            "ndcg_at_10": ndcg,
            "ndcg_drop": drop,
        }

    rows = [
        row("torch", "fp32", 10.0, None, 0.500, None),  # the reference: no drop against itself
        row("onnx", "int8", 40.0, 0.995, 0.480, 0.020),  # fast, keeps the order well, loses nDCG
        row("openvino", "int8-sq", 30.0, 0.993, 0.498, 0.002),
    ]
    assert choose(rows, 0.99, None)["dtype"] == "int8"
    assert choose(rows, 0.99, None, max_ndcg_drop=0.005)["dtype"] == "int8-sq"
    assert choose(rows, 0.99, None, max_ndcg_drop=0.0)["backend"] == "torch"
