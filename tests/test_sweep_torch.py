"""Real sweeps of tiny random rerankers (BERT, XLM-R) and a catalog twin, through sentence-transformers."""

import re
import shutil

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.results.store import read_rows

pytestmark = pytest.mark.slow  # every test here starts worker processes

runner = CliRunner()
QUICK = ["--max-seconds-per-case", "0.5", "--device", "cpu", "--threads", "1"]


def run(tmp_path, *args, name="r.csv"):
    out = tmp_path / name
    result = runner.invoke(app, ["sweep", *QUICK, "-o", str(out), *args])
    return result, out


@pytest.mark.parametrize(("fixture", "specials"), [("tiny_bert", 3), ("tiny_xlmr", 4)])
def test_tiny_models_measure_with_exact_token_counts(request, tmp_path, fixture, specials):
    folder = request.getfixturevalue(fixture)
    result, out = run(tmp_path, "-m", str(folder), "--depth", "6", "--batch-size", "2,4", "--doc-tokens", "20")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for row in rows:
        assert row["weights"] == "real" and row["tokenizer"] == "own" and row["backend"] == "torch"
        # every document is 20 tokens: a pair is query + 20 + the family's special tokens
        assert float(row["pair_tokens_mean"]) == pytest.approx(float(row["query_tokens_mean"]) + 20 + specials)
        assert float(row["pairs_per_s"]) > 0 and float(row["p50_ms"]) > 0
        assert float(row["peak_rss_mib"]) > 0 and row["threads"] == 1 and row["device"] == "cpu"
        # no --max-length: the key says so, and the model's own 128 is what it truncated at
        assert row["max_length"] is None and row["effective_max_length"] == 128


def test_catalog_twin_runs_offline_with_random_weights(tmp_path):
    result, out = run(tmp_path, "-m", "tinybert-l2", "--depth", "3", "--batch-size", "3", "--doc-tokens", "30")
    assert result.exit_code == 0, result.output
    assert "random-weight twin" in result.output  # the one-line notice
    (row,) = read_rows(out)
    assert row["status"] == "ok" and row["weights"] == "random" and row["tokenizer"] == "offline"
    assert row["model"] == "tinybert-l2" and row["model_id"] == "cross-encoder/ms-marco-TinyBERT-L2-v2"
    assert float(row["pair_tokens_mean"]) == pytest.approx(float(row["query_tokens_mean"]) + 30 + 3)


def test_encoder_without_a_head_is_refused_unless_allowed(tmp_path):
    from tiny_models import make_tiny_bert

    encoder = make_tiny_bert(tmp_path / "encoder", head=False)
    result, out = run(tmp_path, "-m", str(encoder), "--depth", "2", "--batch-size", "2")
    assert result.exit_code == 2 and "not a sequence classifier" in result.output
    assert not out.exists()
    result, out = run(tmp_path, "-m", str(encoder), "--depth", "2", "--batch-size", "2", "--allow-random-head")
    assert result.exit_code == 0, result.output
    (row,) = read_rows(out)[:1]
    assert (row["weights"], row["random_head"]) == ("real", True)


def test_head_missing_from_the_checkpoint_is_caught_by_the_load_report(tmp_path, tiny_bert):
    # config says sequence classifier, but the weights hold no classifier: only loading can tell
    folder = tmp_path / "headless"
    shutil.copytree(tiny_bert, folder)
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier")}, folder / "model.safetensors")
    result, out = run(tmp_path, "-m", str(folder), "--depth", "2", "--batch-size", "2")
    assert result.exit_code == 2, result.output
    assert "classifier.bias" in result.output and "newly initialised" in result.output
    assert read_rows(out)[0]["status"] == "error"


def test_broken_tokenizer_files_are_refused(tmp_path, tiny_bert):
    folder = tmp_path / "broken-tok"
    shutil.copytree(tiny_bert, folder)
    (folder / "tokenizer.json").unlink()
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n")  # a tokenizer with 2 tokens for 200 embeddings
    result, out = run(tmp_path, "-m", str(folder), "--depth", "2", "--batch-size", "2")
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # the console wraps long lines
    assert re.search(r"its tokenizer has \d tokens for a model with 200 embeddings", said), said
    assert "placeholder tokenizer" in said
    assert [r["status"] for r in read_rows(out)] == ["error"]  # the refusal is a row, and nothing was timed


def test_cuda_requested_on_a_machine_without_it_is_an_environment_error(tmp_path, tiny_bert):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = runner.invoke(app, ["sweep", "-m", str(tiny_bert), "--device", "cuda", "-o", str(tmp_path / "r.csv")])
    assert result.exit_code == 3
    assert "torch sees no CUDA device" in result.output
