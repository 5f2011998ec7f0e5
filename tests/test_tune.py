"""tune: the choice rules as plain data, the settings it prints, and one real run on a tiny model."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.tune.search import choose, is_naive, meets_agreement, within_budget
from rerank_bench.tune.snippets import runtime_snippet, sentence_transformers_snippet, tei_flags

runner = CliRunner()


def row(backend, dtype, rate, rho=None, p95=None, max_ms=100.0, order="length", batch=8, status="ok"):
    return {
        "backend": backend,
        "dtype": dtype,
        "order": order,
        "batch_size": batch,
        "depth": 50,
        "threads": 2,
        "device": "cpu",
        "status": status,
        "pairs_per_s": rate,
        "agreement_spearman_mean": rho,
        "p95_ms": p95,
        "max_ms": max_ms,
    }


ROWS = [
    row("torch", "fp32", 14.0, order="given", batch=32, max_ms=4000),
    row("torch", "fp32", 30.0, rho=1.0, max_ms=1500),
    row("openvino", "bf16", 120.0, rho=0.9988, max_ms=450),
    row("onnx", "int8", 130.0, rho=0.93, max_ms=400),
    row("onnx", "int8", 500.0, rho=0.95, status="error"),
]


def test_choose_applies_the_agreement_floor_and_the_budget():
    assert choose(ROWS, 0.99, None)["backend"] == "openvino"
    assert choose(ROWS, None, None)["dtype"] == "int8"  # fastest ok row, whatever its agreement
    assert choose(ROWS, 0.99, 1000)["backend"] == "openvino"
    assert choose(ROWS, 0.99, 300) is None  # nothing is that fast
    assert choose(ROWS, 0.9999, None)["backend"] == "torch"  # only torch fp32 is that close


def test_budget_uses_p95_and_falls_back_to_the_slowest_query():
    assert within_budget(row("torch", "fp32", 1.0, p95=90.0, max_ms=500.0), 100.0)
    assert not within_budget(row("torch", "fp32", 1.0, max_ms=500.0), 100.0)
    assert within_budget(row("torch", "fp32", 1.0, max_ms=500.0), None)


def test_reference_configuration_meets_any_floor_and_naive_is_recognised():
    assert meets_agreement(ROWS[0], 0.999) and not meets_agreement(row("onnx", "int8", 1.0), 0.5)
    assert is_naive(ROWS[0]) and not is_naive(ROWS[1])


def test_settings_to_paste():
    torch_code = sentence_transformers_snippet(
        "m/x", {"backend": "torch", "dtype": "bf16", "batch_size": 8, "threads": 2, "device": "cpu", "order": "length"}
    )
    assert 'model_kwargs={"dtype": torch.bfloat16}' in torch_code and "batch_size=8" in torch_code
    assert "torch.set_num_threads(2)" in torch_code
    ov = runtime_snippet(
        "/exports/m",
        {"backend": "openvino", "dtype": "bf16", "batch_size": 4, "threads": 2, "device": "cpu", "order": "length"},
        {"inputs": ["input_ids", "attention_mask"], "activation": "sigmoid"},
        256,
    )
    assert 'compile_model("/exports/m/model.xml", "CPU"' in ov and '"INFERENCE_PRECISION_HINT": "bf16"' in ov
    assert "max_length=256" in ov and "np.exp(-logits)" in ov and "def score(query, documents, batch_size=4)" in ov
    q8 = runtime_snippet(
        "/exports/q",
        {"backend": "onnx", "dtype": "int8", "batch_size": 4, "threads": 2, "device": "cpu", "order": "length"},
        {"inputs": ["input_ids"], "activation": "identity"},
        None,
    )
    assert 'InferenceSession("/exports/q/model.onnx"' in q8 and "intra_op_num_threads = 2" in q8
    assert "np.exp" not in q8 and "max_length=" not in q8
    # one batch of 8 pairs at the p95 length 210.4 -> 1684 tokens
    assert (
        tei_flags({"batch_size": 8, "dtype": "fp32", "device": "cpu"}, 50, 210.4)
        == "--max-batch-tokens 1684 --max-client-batch-size 50"
    )


QUICK = [
    "--attention",
    "auto",  # eager attention's cases are planned in test_tune_searches_the_speed_features_that_apply
    "--backend",
    "torch,onnx",
    "--dtype",
    "fp32,int8",
    "--batch-size",
    "2,4",
    "--depth",
    "6",
    "--device",
    "cpu",
    "--doc-tokens",
    "10:30",
    "--search-queries",
    "3",
    "--confirm-queries",
    "5",
    "--threads",
    "1",
]


@pytest.mark.slow
def test_tune_answers_with_naive_best_and_speedup(tmp_path, tiny_bert):
    out = tmp_path / "t.csv"
    exported = tmp_path / "chosen"
    result = runner.invoke(app, ["tune", str(tiny_bert), *QUICK, "--json", "-o", str(out), "--export", str(exported)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    for key in ("naive", "best", "best_any_agreement"):
        choice = answer[key]
        assert choice["pairs_per_s"] > 0 and choice["p50_ms"] > 0
        # 5 timed queries a round give a median but are far too few for a p95 (59): the budget falls back to
        # the slowest query
        assert choice["p95_ms"] is None and choice["max_ms"] >= choice["p50_ms"]
        assert set(choice["config"]) == {
            "backend",
            "dtype",
            "order",
            "attention",
            "prefix",
            "batch_size",
            "threads",
            "device",
        }
        assert len(choice["confirm_rounds_pairs_per_s"]) == 2
    assert answer["naive"]["config"] == {
        "backend": "torch",
        "dtype": "fp32",
        "order": "given",
        "attention": "",  # transformers' own
        "prefix": "",
        "batch_size": 6,  # predict's default batch of 32 at depth 6 is one batch of 6, recorded as what ran
        "threads": 1,
        "device": "cpu",
    }
    best = answer["best"]
    if best["agreement"]["spearman_mean"] is None:  # only the reference itself has nothing to agree with
        assert (best["config"]["backend"], best["config"]["dtype"]) == ("torch", "fp32")
    else:
        assert best["agreement"]["spearman_mean"] >= 0.99
    assert answer["speedup"] == pytest.approx(best["pairs_per_s"] / answer["naive"]["pairs_per_s"])
    # the printed code runs here, on the exported copy, and scores as the tool's own backend does
    settings = answer["settings"]
    assert answer["export_folder"] == str(exported) and str(exported) in settings["code"]
    assert ("CrossEncoder" in settings["code"]) == (best["config"]["backend"] == "torch")
    assert 'backend="openvino"' not in settings["code"] and 'backend="onnx"' not in settings["code"]
    query, docs = "what is a reranker", ["a model that scores pairs", "a document", "another longer document here"]
    program = f"query = {query!r}\ncandidates = {docs!r}\n" + settings["code"] + "\nprint(json.dumps(list(scores)))"
    ran = subprocess.run([sys.executable, "-c", "import json\n" + program], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    from rerank_bench.backends import get_backend
    from rerank_bench.models.resolve import resolve_model
    from rerank_bench.workload.records import Request

    config = best["config"]
    scorer = get_backend(config["backend"]).load(resolve_model(str(tiny_bert)), "cpu", config["dtype"], 1, None)
    scorer.set_order(config["order"])
    expected = scorer.score(Request(query, tuple(docs)), config["batch_size"])
    assert json.loads(ran.stdout.strip().splitlines()[-1]) == pytest.approx(expected, abs=1e-4)
    statuses = {}
    for c in answer["candidates"]:
        statuses.setdefault((c["backend"], c["dtype"]), set()).add(c["status"])
    assert statuses["torch", "int8"] == {"skipped"} and "ok" in statuses["onnx", "int8"]
    assert out.exists()


@pytest.mark.slow
def test_tune_exits_1_when_nothing_meets_the_budget(tmp_path, tiny_bert):
    # The smallest search there is (torch fp32, one batch size): the exit code is the point, not the search.
    smallest = ["--backend", "torch", "--dtype", "fp32", "--batch-size", "2", "--depth", "6", "--device", "cpu"]
    smallest += ["--doc-tokens", "10:30", "--search-queries", "3", "--confirm-queries", "3", "--threads", "1"]
    result = runner.invoke(
        app, ["tune", str(tiny_bert), *smallest, "--budget-ms", "0.001", "-o", str(tmp_path / "t.csv")]
    )
    assert result.exit_code == 1, result.output
    assert "no configuration ran within 0.001 ms" in result.output


@pytest.mark.slow
def test_tune_bad_input_is_exit_2(tmp_path, tiny_bert):
    result = runner.invoke(app, ["tune", str(tiny_bert), "--min-agreement", "1.5"])
    assert result.exit_code == 2 and "--min-agreement" in result.output


def test_the_peak_note_says_how_close_the_best_runs_and_what_this_cpu_lacks():
    from rerank_bench.tune.search import Choice, peak_note

    best = Choice({"backend": "onnx", "dtype": "fp32", "device": "cpu"}, 30.0, 30.0, 35.0, 40.0, {}, 80.0, 0.8)
    avx2_only = peak_note(best, ["avx2", "fma"])
    assert avx2_only is not None and avx2_only.startswith("the best runs at 80% of this machine's measured fp32")
    assert "no VNNI" in avx2_only and "no native bf16" in avx2_only
    vnni = peak_note(best, ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"])
    assert vnni == "the best runs at 80% of this machine's measured fp32 matmul peak"
    assert peak_note(None, []) is None
    assert "VNNI" not in (peak_note(best, ["asimd", "asimddp"]) or "")  # Arm: no x86 instruction names


def test_tune_searches_the_speed_features_that_apply(tmp_path, tiny_bert):
    """Eager attention beside transformers' own on torch only; the shared prompt prefix for decoder rerankers
    only: what does not apply is no case at all (not a skipped row)."""
    from test_families import tiny_qwen_twin

    from rerank_bench.probe import probe_machine
    from rerank_bench.tune.request import TuneRequest
    from rerank_bench.tune.search import plan_tune

    machine = probe_machine(use_torch=False)
    common = dict(depth=6, backends=("torch", "onnx"), dtypes=("fp32",), batch_sizes=(2, 4), token_budgets=())
    _, cases = plan_tune(TuneRequest(model=str(tiny_bert), **common), machine)
    features = {(c.backend, c.attention, c.prefix) for c in cases}
    assert features == {("torch", "", ""), ("torch", "eager", ""), ("onnx", "", "")}
    assert all(c.skip is None for c in cases)
    _, cases = plan_tune(TuneRequest(model=str(tiny_qwen_twin(tmp_path)), **common), machine)
    searched = [(c.backend, c.attention, c.prefix, c.batch_size) for c in cases if c.skip is None]
    assert {f[:3] for f in searched} == {
        ("torch", "", ""),
        ("torch", "eager", ""),
        ("torch", "", "shared"),
        ("torch", "eager", "shared"),
    }


def test_a_decoder_rerankers_snippet_runs_the_scorer_that_measured_it():
    """A decoder reranker has no sentence-transformers path: the snippet is rerank-bench's own scorer with the
    chosen dtype, attention, order and prefix, and no TEI flags."""
    from types import SimpleNamespace

    from rerank_bench.tune.snippets import settings_for

    config = {"backend": "torch", "dtype": "bf16", "order": "length", "attention": "eager", "prefix": "shared"}
    config |= {"batch_size": 8, "threads": 2, "device": "cpu"}
    result = SimpleNamespace(
        scoring="yes-no", model="q", model_id="Qwen/Qwen3-Reranker-0.6B", instruction=None, max_length=None, depth=20
    )
    settings = settings_for(result, SimpleNamespace(config=config))
    assert settings["kind"] == "rerank-bench" and settings["text_embeddings_inference"] == ""
    code = settings["code"]
    assert 'TorchBackend().load(model, "cpu", "bf16", 2, None, attention="eager")' in code
    assert 'scorer.set_order("length")' in code and 'scorer.set_prefix("shared")' in code
    assert "batch_size=8" in code and "CrossEncoder" not in code
