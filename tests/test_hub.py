"""The model download through the real huggingface_hub client, against a Hub stand-in on localhost.

In process, the client's import-time settings (what HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE set when
huggingface_hub is imported) are pointed at the stand-in and a fresh cache; the end-to-end test runs the
command in a process of its own with the real environment variables, as a user would.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import FakeHub, HubRepo
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.errors import ModelError
from rerank_bench.models.resolve import resolve_model
from rerank_bench.workload.records import Request

runner = CliRunner()
REPO = "acme/tiny-reranker"
TOKEN = "hf_secretTOKEN0123456789abcdef"


@pytest.fixture
def hub_at(monkeypatch, tmp_path):
    """Point the in-process client at a stand-in (`with hub_at(FakeHub(...)) as hub:`), online, fresh cache."""
    from contextlib import contextmanager

    from huggingface_hub import constants, hf_api
    from transformers.utils import hub as transformers_hub

    @contextmanager
    def serve(hub):
        with hub as url:
            monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
            monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
            monkeypatch.setattr(constants, "ENDPOINT", url)
            monkeypatch.setattr(hf_api.api, "endpoint", url)  # the module-level HfApi behind list_repo_tree & co.
            monkeypatch.setattr(transformers_hub, "_hf_api", None)  # transformers keeps one made on first use
            monkeypatch.setattr(
                constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
            )
            monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
            yield hub

    return serve


def _load_and_score(model):
    from rerank_bench.backends.torch_st import TorchBackend

    scorer = TorchBackend().load(model, "cpu", "fp32", 1, None)
    try:
        request = Request("berlin city", ("people live in berlin", "the river and the bridge"))
        return [round(float(s), 6) for s in scorer.score(request, 2)]
    finally:
        scorer.close()


def _bin_only_copy(folder: Path, into: Path) -> Path:
    """The same model with its weights as pytorch_model.bin only (older repositories have nothing else)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    shutil.copytree(folder, into)
    torch.save(load_file(into / "model.safetensors"), into / "pytorch_model.bin")
    (into / "model.safetensors").unlink()
    return into


def test_a_download_cut_half_way_is_retried_and_never_loaded_half_written(hub_at, tiny_bert):
    """The stand-in closes the connection half-way through the weights the first time: the client resumes
    or retries, and what is loaded is the whole file (the same scores as the folder itself)."""
    with hub_at(FakeHub({REPO: HubRepo(tiny_bert)}, cut_once={"model.safetensors"})) as hub:
        model = resolve_model(REPO, weights="real")
        assert (model.source, model.revision) == ("hub", HubRepo(tiny_bert).commit)
        scores = _load_and_score(model)
    assert hub.fetched().count("model.safetensors") == 2 and not hub.cut_once
    assert scores == _load_and_score(resolve_model(str(tiny_bert)))


def test_bin_only_and_safetensors_only_repositories_both_load(hub_at, tiny_bert, tmp_path):
    bin_only = _bin_only_copy(tiny_bert, tmp_path / "bin-only")
    repos = {"acme/safetensors": HubRepo(tiny_bert), "acme/bin": HubRepo(bin_only, commit="b" * 40)}
    with hub_at(FakeHub(repos)) as hub:
        from_safetensors = _load_and_score(resolve_model("acme/safetensors", weights="real"))
        from_bin = _load_and_score(resolve_model("acme/bin", weights="real"))
    assert from_bin == from_safetensors
    assert "pytorch_model.bin" in hub.fetched() and "model.safetensors" in hub.fetched()


def test_revision_pins_a_commit_and_an_unknown_one_is_one_line(hub_at, tiny_bert):
    commit = HubRepo(tiny_bert).commit
    with hub_at(FakeHub({REPO: HubRepo(tiny_bert)})):
        assert resolve_model(REPO, weights="real", revision=commit).revision == commit
        with pytest.raises(ModelError, match=r"revision 'v9' does not exist for acme/tiny-reranker"):
            resolve_model(REPO, weights="real", revision="v9")


def test_gated_repository_names_hf_token_and_the_model_page_and_never_the_token(hub_at, tiny_bert, monkeypatch):
    with hub_at(FakeHub({REPO: HubRepo(tiny_bert, gated=True)}, token=TOKEN)) as hub:
        endpoint = hub_url = None
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
        hub_url = f"{endpoint}/{REPO}"
        result = runner.invoke(app, ["sweep", "-m", REPO, "--weights", "real"])
        assert result.exit_code == 2, result.output
        assert "gated repository" in result.output and "HF_TOKEN" in result.output and hub_url in result.output
        monkeypatch.setenv("HF_TOKEN", "hf_someoneElsesToken000000000")  # a token without access: 403
        with pytest.raises(ModelError, match="the token in HF_TOKEN has no access") as refused:
            resolve_model(REPO, weights="real")
        assert "hf_someoneElsesToken" not in str(refused.value)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        assert resolve_model(REPO, weights="real").source == "hub"
        assert any(entry.token == TOKEN for entry in hub.log)  # the token went where it was needed


def test_a_typo_of_a_catalog_hub_id_gets_the_did_you_mean_line(hub_at, tiny_bert):
    with hub_at(FakeHub({REPO: HubRepo(tiny_bert)})):
        result = runner.invoke(app, ["sweep", "-m", "cross-encoder/ms-marco-MiniLM-L6-v3", "--weights", "real"])
    assert result.exit_code == 2, result.output
    assert "was not found on the Hugging Face Hub" in result.output
    assert "did you mean cross-encoder/ms-marco-MiniLM-L6-v2" in result.output
    assert "Traceback" not in result.output


def test_a_downloaded_model_is_then_loaded_from_the_cache_without_a_request_online_or_offline(
    hub_at, tiny_bert, monkeypatch
):
    with hub_at(FakeHub({REPO: HubRepo(tiny_bert)})) as hub:
        _load_and_score(resolve_model(REPO, weights="real"))  # downloads into the empty cache
        asked = len(hub.log)
        for offline in ("", "1"):
            monkeypatch.setenv("HF_HUB_OFFLINE", offline)
            cached = resolve_model(REPO, weights="real")
            assert (cached.source, cached.revision, cached.local_files_only) == (
                "cache",
                HubRepo(tiny_bert).commit,
                True,
            )
            _load_and_score(cached)
            assert len(hub.log) == asked  # nothing asked of the Hub, online or not
        result = runner.invoke(app, ["sweep", "-m", "acme/never-downloaded", "--weights", "real"])
    assert result.exit_code == 2, result.output
    assert "HF_HUB_OFFLINE is set and acme/never-downloaded is not in the local Hugging Face cache" in result.output


def test_will_it_run_on_a_hub_id_fetches_only_its_config(hub_at, tiny_bert):
    with hub_at(FakeHub({REPO: HubRepo(tiny_bert)})) as hub:
        result = runner.invoke(app, ["will-it-run", REPO, "--hardware", "t4", "--json"])
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)[0]["model"] == REPO
    assert hub.fetched("GET") == ["config.json"]
    assert "model.safetensors" not in hub.fetched("HEAD")


@pytest.mark.slow  # starts the command and its worker process
def test_sweep_through_the_hub_measures_the_served_commit_and_never_writes_the_token(tiny_bert, tmp_path):
    """The command as a user runs it, HF_ENDPOINT and HF_TOKEN in its environment: it downloads and measures,
    its row names the commit served, and the token reaches the server and none of the outputs."""
    hub = FakeHub({REPO: HubRepo(tiny_bert)})
    with hub as url:
        env = {**os.environ, "HF_ENDPOINT": url, "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": TOKEN}
        env.pop("HF_HUB_OFFLINE", None)
        done = subprocess.run(
            [sys.executable, "-m", "rerank_bench", "sweep", "-m", REPO, "--batch-size", "4", "--depth", "5"]
            + ["--max-seconds-per-case", "0.3", "--threads", "1", "--device", "cpu", "-o", str(tmp_path / "r.csv")]
            + ["--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model.safetensors" in hub.fetched() and "config.json" in hub.fetched()
    from rerank_bench.results.store import read_rows

    rows = read_rows(tmp_path / "r.csv")
    assert [(r["status"], r["weights"], r["revision"]) for r in rows] == [("ok", "real", HubRepo(tiny_bert).commit)]
    assert json.loads(done.stdout)["rows"][0]["revision"] == HubRepo(tiny_bert).commit
    assert any(entry.token == TOKEN for entry in hub.log)
    written = [p.read_text() for p in tmp_path.iterdir() if p.is_file()]
    assert len(written) == 2  # the CSV and its samples sidecar
    for text in [*written, done.stdout, done.stderr]:
        assert TOKEN not in text
