import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """No test touches the user's caches or the network: twins go to a temp dir, the Hub is offline."""
    monkeypatch.setenv("RERANK_BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "rb-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.getbasetemp() / "hf-home"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    from tiny_models import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_xlmr(tmp_path_factory) -> Path:
    from tiny_models import make_tiny_xlmr

    return make_tiny_xlmr(tmp_path_factory.mktemp("models") / "tiny-xlmr")
