"""The onnx and openvino backends on tiny random rerankers: exports, caching, orders, and that their scores
are the torch model's scores (the same weights, so agreement must be near perfect)."""

import json

import pytest
from typer.testing import CliRunner

from rerank_bench.backends import get_backend
from rerank_bench.backends.padded_scorer import activate, batch_indices
from rerank_bench.cli import app
from rerank_bench.models.resolve import resolve_model
from rerank_bench.results.store import read_rows
from rerank_bench.workload.requests import parse_doc_tokens, synthetic_requests

runner = CliRunner()


def test_batch_indices_by_order():
    lengths = [30, 10, 20, 10, 40]
    assert batch_indices(lengths, 2, "given") == [[0, 1], [2, 3], [4]]
    assert batch_indices(lengths, 2, "length") == [[1, 3], [2, 0], [4]]  # stable: ties keep the given order


def test_token_budget_batches_fill_to_the_padded_budget_by_hand():
    """Lengths 10, 50, 20, 40, 30 under 100 padded tokens, in length order 10, 20, 30, 40, 50: 10 + 20 + 30 pad
    to 3 x 30 = 90; adding 40 would make 4 x 40 = 160, so it starts a batch, and 50 joins it (2 x 50 = 100).
    The batch size still caps a batch; a pair longer than the budget goes alone."""
    from rerank_bench.backends import parse_orders
    from rerank_bench.errors import UsageError

    lengths = [10, 50, 20, 40, 30]
    assert batch_indices(lengths, 8, "tokens:100") == [[0, 2, 4], [3, 1]]
    assert batch_indices(lengths, 2, "tokens:100") == [[0, 2], [4, 3], [1]]
    assert batch_indices([200, 5], 8, "tokens:100") == [[1], [0]]
    assert parse_orders("length, tokens:2048,length") == ("length", "tokens:2048")
    for bad in ("tokens:0", "tokens:abc", "sorted", ""):
        with pytest.raises(UsageError):
            parse_orders(bad)


def test_a_sweep_batches_by_a_token_budget(tmp_path):
    """--order tokens:N through a sweep: rows say their order, and a budget that holds several short pairs
    but not many long ones pads less than fixed batches of the same maximum size."""
    out = tmp_path / "r.csv"
    result = runner.invoke(
        app,
        ["sweep", "-m", "fake:ms_per_pair=0.01", "--backend", "fake", "--depth", "20", "--batch-size", "16"]
        + ["--doc-tokens", "8:120"]
        + ["--order", "given,tokens:400", "--max-seconds-per-case", "0.3", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    rows = {r["order"]: r for r in read_rows(out)}
    assert set(rows) == {"given", "tokens:400"}
    assert rows["tokens:400"]["padding_efficiency"] > rows["given"]["padding_efficiency"]


def test_activation_matches_sentence_transformers_default():
    import numpy as np

    assert activate(np.array([[0.0], [2.0]]), "sigmoid").tolist() == pytest.approx([0.5, 0.8807970779778823])
    assert activate(np.array([[-3.0]]), "identity").tolist() == [-3.0]


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_xlmr", "tiny_deberta"])
@pytest.mark.parametrize(("backend", "dtype"), [("onnx", "fp32"), ("openvino", "fp32")])
@pytest.mark.slow
def test_runtime_scores_equal_torch_scores(request, fixture, backend, dtype, tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_BENCH_CACHE", str(tmp_path / "cache"))  # a first export, whatever ran before
    folder = request.getfixturevalue(fixture)
    model = resolve_model(str(folder), "auto", None, False, False, None)
    reference = get_backend("torch").load(model, "cpu", "fp32", 1, None)
    requests = synthetic_requests(reference.words(), 7, parse_doc_tokens("5:40"), reference.info.max_length, seed="t")[
        :3
    ]
    expected = [reference.score(r, 7) for r in requests]

    scorer = get_backend(backend).load(model, "cpu", dtype, 1, None)
    assert scorer.info.export_s > 0 and scorer.info.max_length == reference.info.max_length
    assert scorer.encoder_shape().layers == 2
    for order in ("given", "length"):
        scorer.set_order(order)
        for request_, want in zip(requests, expected, strict=False):
            assert scorer.pair_token_counts(request_) == reference.pair_token_counts(request_)
            assert scorer.score(request_, 3) == pytest.approx(want, abs=1e-5)
    computed, real = scorer.padding_counters()
    assert 0 < real <= computed

    again = get_backend(backend).load(model, "cpu", dtype, 1, None)  # the export is cached
    assert again.info.export_s == 0.0


@pytest.mark.slow
def test_onnx_export_fuses_attention_and_int8_is_recorded(tiny_bert):
    model = resolve_model(str(tiny_bert), "auto", None, False, False, None)
    fp32 = get_backend("onnx").load(model, "cpu", "fp32", 1, None)
    assert "fused attention 2/2" in fp32.info.backend_options
    int8 = get_backend("onnx").load(model, "cpu", "int8", 1, None)
    assert "per-channel" in int8.info.backend_options


@pytest.mark.slow
def test_sweep_over_backends_records_agreement_work_and_skips(tmp_path, tiny_bert):
    out = tmp_path / "b.csv"
    result = runner.invoke(
        app,
        [
            "sweep",
            "-m",
            str(tiny_bert),
            "--backend",
            "torch,onnx",
            "--dtype",
            "fp32,int8",
            "--order",
            "given,length",
            "--depth",
            "12",
            "--batch-size",
            "4",
            "--doc-tokens",
            "10:60",
            "--max-seconds-per-case",
            "0.3",
            "--device",
            "cpu",
            "--threads",
            "1",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {(r["backend"], r["dtype"], r["order"]): r for r in read_rows(out)}
    assert len(rows) == 8
    assert rows["torch", "int8", "given"]["status"] == "skipped"
    assert "int8 runs on --backend onnx" in rows["torch", "int8", "given"]["status_reason"]
    for key in (("torch", "fp32", "length"), ("onnx", "fp32", "given"), ("onnx", "fp32", "length")):
        row = rows[key]
        assert row["status"] == "ok" and row["agreement_reference"] == "torch/fp32/given"
        assert float(row["agreement_spearman_mean"]) > 0.999 and float(row["agreement_max_abs_diff"]) < 1e-4
        assert float(row["agreement_top10_overlap"]) == 1.0 and row["agreement_requests"] == 8
    int8 = rows["onnx", "int8", "length"]
    assert int8["status"] == "ok" and int8["agreement_spearman_mean"] != ""
    for row in (r for r in rows.values() if r["status"] == "ok"):
        assert float(row["gflop_per_query"]) > 0 and float(row["gflop_per_s"]) > 0
        assert float(row["peak_gflop_per_s"]) > 0 and float(row["fraction_of_peak"]) > 0
    # length order pads less than given order for the same batches
    assert float(rows["onnx", "fp32", "length"]["padding_efficiency"]) > float(
        rows["onnx", "fp32", "given"]["padding_efficiency"]
    )
    assert rows["onnx", "fp32", "given"]["export_s"] != ""


@pytest.mark.slow
def test_a_backend_whose_packages_are_missing_is_skipped_rows_not_a_crash(tmp_path, tiny_bert, monkeypatch):
    monkeypatch.setattr(
        "rerank_bench.sweep.planner.missing_packages",
        lambda backend, dtype=None: ["openvino"] if backend == "openvino" else [],
    )
    args = [
        "sweep",
        "-m",
        str(tiny_bert),
        "--backend",
        "torch,openvino",
        "--depth",
        "4",
        "--batch-size",
        "2",
        "--doc-tokens",
        "10",
        "--max-seconds-per-case",
        "0.3",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]
    planned = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert planned.exit_code == 0, planned.output
    skips = {c["backend"]: c["skip"] for c in json.loads(planned.stdout)}
    assert skips["torch"] is None and "pip install 'rerank-bench[openvino]'" in skips["openvino"]
    out = tmp_path / "m.csv"
    result = runner.invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = {r["backend"]: r for r in read_rows(out)}
    assert rows["torch"]["status"] == "ok"
    assert rows["openvino"]["status"] == "skipped" and "needs openvino" in rows["openvino"]["status_reason"]


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "dtype"), [("onnx", "int8"), ("openvino", "bf16")])
def test_printed_runtime_code_scores_as_the_backend_does(tiny_bert, backend, dtype):
    """tune prints this code for an onnx or openvino choice: it must run here and give the backend's scores."""
    import json
    import subprocess
    import sys

    from rerank_bench.backends.hf_checkpoint import model_source
    from rerank_bench.tune.snippets import runtime_snippet
    from rerank_bench.workload.records import Request

    model = resolve_model(str(tiny_bert))
    folder, meta, _ = get_backend(backend).export(model, model_source(model, None)[0], dtype)
    config = {"backend": backend, "dtype": dtype, "batch_size": 2, "threads": 1, "order": "length", "device": "cpu"}
    query, docs = "what is a reranker", ["a model that scores pairs", "a document", "another longer document here"]
    program = f"import json\nquery = {query!r}\ncandidates = {docs!r}\n" + runtime_snippet(
        str(folder), config, meta, None
    )
    ran = subprocess.run(
        [sys.executable, "-c", program + "\nprint(json.dumps(list(scores)))"], capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    scorer = get_backend(backend).load(model, "cpu", dtype, 1, None)
    scorer.set_order("length")
    expected = scorer.score(Request(query, tuple(docs)), 2)
    assert json.loads(ran.stdout.strip().splitlines()[-1]) == pytest.approx(expected, abs=1e-4)


def test_tunes_printed_code_batches_by_the_token_budget_as_the_tool_did():
    """The code tune prints for a tokens:N configuration forms the same batches as the scorers (run here on
    lengths of its own), and TEI's flag is the budget itself."""
    import random

    from rerank_bench.tune.snippets import runtime_snippet, sentence_transformers_snippet, tei_flags

    config = {"backend": "onnx", "batch_size": 16, "threads": 2, "dtype": "fp32", "order": "tokens:300"}
    for code in (
        runtime_snippet("/x", config, {}, None),
        sentence_transformers_snippet("m", {**config, "backend": "torch"}),
    ):
        compile(code, "snippet", "exec")
        lines = code.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("# tokens:300"))
        indent = len(lines[start]) - len(lines[start].lstrip())
        body = "\n".join(line[indent:] for line in lines[start : start + 8])
        rng = random.Random(5)
        for _ in range(20):
            lengths = [rng.randint(5, 120) for _ in range(rng.randint(1, 60))]
            scope = {"lengths": lengths}
            exec(body, scope)
            assert scope["batches"] == batch_indices(lengths, 16, "tokens:300")
    assert tei_flags(config, 50, 80.0).startswith("--max-batch-tokens 300 ")


def test_int8_ac_keeps_the_fewest_most_sensitive_ops_in_fp32():
    """A made-up model: each op in int8 costs its own share of agreement (a 0.004, b 0.001, c 0.003, d 0.0005
    below 1.0). All in int8: 0.9915, under the 0.995 floor. Sensitivities rank a, c, b, d; keeping a alone
    gives 0.9955, which holds, so only a stays fp32. A floor of 0.999 needs a, c and b (0.9995)."""
    from rerank_bench.backends.quantize import choose_exclusions

    cost = {"a": 0.004, "b": 0.001, "c": 0.003, "d": 0.0005}

    def agreement_of(excluded):
        return 1.0 - sum(v for k, v in cost.items() if k not in excluded)

    kept, value, measured = choose_exclusions(list(cost), agreement_of, 0.995)
    assert kept == ["a"] and value == pytest.approx(0.9955)
    assert measured == 1 + 4 + 1  # everything, each node's sensitivity, then the top one
    kept, value, _ = choose_exclusions(list(cost), agreement_of, 0.999)
    assert kept == ["a", "c", "b"] and value == pytest.approx(0.9995)
    assert choose_exclusions(list(cost), agreement_of, 0.99)[0] == []  # all int8 already holds
