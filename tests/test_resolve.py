"""Every way a model name can go wrong has its own message (and exit 2 through the CLI)."""

import httpx2
import pytest
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

from rerank_bench.errors import ModelError, UsageError
from rerank_bench.models.resolve import HubClient, resolve_model


def _http_error(cls, status=404):
    response = httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/api/models/x"))
    return cls("hub said no", response=response)


class FakeHub(HubClient):
    def __init__(self, error=None, sha="abc123", cached=None):
        self.error, self.sha, self.cached = error, sha, cached
        self.asked = []

    def cached_snapshot(self, repo_id, revision):
        return self.cached

    def model_info(self, repo_id, revision):
        self.asked.append((repo_id, revision))
        if self.error is not None:
            raise self.error
        return self.sha


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def test_catalog_alias_resolves_to_the_hub_with_its_commit(online):
    hub = FakeHub(sha="deadbeef")
    model = resolve_model("minilm-l6", hub=hub)
    assert model.source == "hub" and model.weights == "real"
    assert model.hub_id == "cross-encoder/ms-marco-MiniLM-L6-v2" and model.revision == "deadbeef"
    assert model.max_length == 512 and model.name == "minilm-l6"
    assert resolve_model("cross-encoder/ms-marco-MiniLM-L-6-v2", hub=hub).catalog_alias == "minilm-l6"


def test_typo_gated_and_bad_revision_have_distinct_messages(online):
    with pytest.raises(ModelError, match="was not found on the Hugging Face Hub"):
        resolve_model("org/no-such-model", hub=FakeHub(error=_http_error(RepositoryNotFoundError)))
    with pytest.raises(ModelError, match="is a gated repository"):
        resolve_model("org/gated", hub=FakeHub(error=_http_error(GatedRepoError, 403)))
    with pytest.raises(ModelError, match="revision 'v9' does not exist"):
        resolve_model("org/model", revision="v9", hub=FakeHub(error=_http_error(RevisionNotFoundError)))


def test_offline_and_not_cached(online):
    unreachable = FakeHub(error=httpx2.ConnectError("Name or service not known"))
    twin = resolve_model("minilm-l6", weights="auto", hub=unreachable)
    assert twin.source == "twin" and twin.weights == "random" and "random-weight twin" in twin.notice
    with pytest.raises(ModelError, match="unreachable .* not in the local Hugging Face cache"):
        resolve_model("minilm-l6", weights="real", hub=unreachable)
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        resolve_model("org/not-in-catalog", hub=unreachable)


def test_hf_hub_offline_skips_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = FakeHub()
    assert resolve_model("bge-reranker-base", hub=hub).source == "twin"
    assert hub.asked == []


def test_random_weights_need_a_catalog_model():
    assert resolve_model("bge-reranker-v2-m3", weights="random", hub=FakeHub()).source == "twin"
    with pytest.raises(ModelError, match="--weights random needs a catalog model"):
        resolve_model("org/whatever", weights="random", hub=FakeHub())
    with pytest.raises(UsageError, match="--weights must be one of"):
        resolve_model("minilm-l6", weights="fake", hub=FakeHub())


def test_names_that_are_neither_alias_folder_nor_hub_id():
    with pytest.raises(ModelError, match="not a catalog alias, a model folder or a Hugging Face Hub id"):
        resolve_model("not a model!", hub=FakeHub())
    with pytest.raises(ModelError, match="no such model folder"):
        resolve_model("./missing/folder", hub=FakeHub())


def test_cached_snapshot_is_used_without_the_network(tmp_path, online):
    import json

    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    hub = FakeHub(cached=(tmp_path, "0123abcd"))
    model = resolve_model("minilm-l6", hub=hub)
    assert model.source == "cache" and model.local_files_only and model.revision == "0123abcd"
    assert hub.asked == []


def test_local_folder_checks(tiny_bert, tmp_path):
    from tiny_models import make_tiny_bert

    assert resolve_model(str(tiny_bert)).source == "local"
    no_tokenizer = make_tiny_bert(tmp_path / "no-tok", with_tokenizer=False)
    with pytest.raises(ModelError, match="has no tokenizer files"):
        resolve_model(str(no_tokenizer))
    encoder_only = make_tiny_bert(tmp_path / "encoder", head=False)
    with pytest.raises(ModelError, match="is a BertModel, not a sequence classifier"):
        resolve_model(str(encoder_only))
    assert resolve_model(str(encoder_only), allow_random_head=True).allow_random_head
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="--weights random builds a catalog model's twin"):
        resolve_model(str(tiny_bert), weights="random")


def test_a_copy_of_a_twin_says_its_weights_are_random(tmp_path):
    """A twin copied for serving (models/servable.py keeps its marker) is measured as random weights."""
    import json

    from tiny_models import make_tiny_bert

    from rerank_bench.models.twin import TWIN_MARKER

    folder = make_tiny_bert(tmp_path / "copy")
    assert resolve_model(str(folder)).weights == "real"
    (folder / TWIN_MARKER).write_text(json.dumps({"alias": "x", "random_weights": True, "tokenizer_source": "own"}))
    assert resolve_model(str(folder)).weights == "random"
    (folder / TWIN_MARKER).write_text("not json")
    assert resolve_model(str(folder)).weights == "real"


def test_empty_model_names_are_refused_not_replaced_by_the_default():
    from typer.testing import CliRunner

    from rerank_bench.cli import app

    for value in ("", " ", ","):
        result = CliRunner().invoke(app, ["sweep", "-m", value, "--dry-run"])
        assert result.exit_code == 2 and "names no model" in result.output, (value, result.output)
    with pytest.raises(UsageError, match="empty model name"):
        resolve_model(" ")


def test_a_typo_of_a_catalog_alias_suggests_it_without_asking_the_hub():
    class NoHub(HubClient):
        def cached_snapshot(self, repo_id, revision):
            raise AssertionError("the Hub cache must not be consulted for a typo")

        def model_info(self, repo_id, revision):
            raise AssertionError("the Hub must not be asked for a typo")

    with pytest.raises(ModelError) as typo:
        resolve_model("minilm-l7", hub=NoHub())
    assert typo.value.one_line() == "'minilm-l7' is not a catalog alias (did you mean minilm-l6 or minilm-l12?)"
    from rerank_bench.willrun.model_info import load_model_info

    with pytest.raises(ModelError) as typo:
        load_model_info("bge-reranker-bse", None)
    assert typo.value.hint == "did you mean bge-reranker-base or bge-reranker-large?"


def test_a_local_folder_with_a_name_that_says_nothing_is_named_with_its_parent(tmp_path):
    from rerank_bench.models.resolve import folder_name

    assert folder_name(tmp_path / "minilm-ft" / "model") == "minilm-ft/model"
    assert folder_name(tmp_path / "run3" / "checkpoint-500") == "run3/checkpoint-500"
    assert folder_name(tmp_path / "my-reranker") == "my-reranker"
    snapshot = tmp_path / "hub" / "models--BAAI--bge-reranker-base" / "snapshots" / ("a" * 40)
    assert folder_name(snapshot) == "BAAI/bge-reranker-base"
