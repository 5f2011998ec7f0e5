import hashlib
import importlib.metadata
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

HERE = Path(__file__).parent


def _persistent_key() -> str:
    """What the kept models and exports depend on: the code that makes the tiny models and the libraries that
    write and export them. A change to any gives a fresh folder (old ones are removed)."""
    parts = [(HERE / "tiny_models.py").read_text()]
    for package in ("torch", "transformers", "sentence-transformers", "onnxruntime", "openvino", "nncf"):
        try:
            parts.append(f"{package}={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{package}=none")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


@pytest.fixture(scope="session")
def kept(request) -> Path:
    """A folder under pytest's own cache (.pytest_cache) that outlives the run: the tiny models, twins, exports
    and matmul peaks the suite builds are made once, not on every run (`pytest --cache-clear` starts afresh).
    Tests about building an export point RERANK_BENCH_CACHE at a fresh folder of their own."""
    root = Path(request.config.cache.mkdir("rerank-bench"))
    key = _persistent_key()
    for old in root.iterdir():
        if old.name != key:
            shutil.rmtree(old, ignore_errors=True)
    folder = root / key
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def _isolated_caches(kept, tmp_path_factory, monkeypatch):
    """No test touches the user's caches or the network: twins and exports go to the suite's kept folder, the
    Hub is offline."""
    monkeypatch.setenv("RERANK_BENCH_CACHE", str(kept / "rb-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.getbasetemp() / "hf-home"))


def _made_once(folder: Path, make) -> Path:
    """`make(folder)` unless a whole one is kept already; built aside and renamed into place, so a run stopped
    half-way leaves no half-made model."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = folder.with_name(f"{folder.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    make(building)
    try:
        building.rename(folder)
    except OSError:  # another run made it first
        shutil.rmtree(building, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(kept) -> Path:
    from tiny_models import make_tiny_bert

    return _made_once(kept / "models" / "tiny-bert", make_tiny_bert)


@pytest.fixture(scope="session")
def tiny_xlmr(kept) -> Path:
    from tiny_models import make_tiny_xlmr

    return _made_once(kept / "models" / "tiny-xlmr", make_tiny_xlmr)


@pytest.fixture(scope="session")
def tiny_deberta(kept) -> Path:
    """mxbai-rerank-xsmall-v1's family (DeBERTa-v3) at two layers, 64 wide, with its SentencePiece-kind
    tokenizer."""
    from tiny_models import make_tiny_twin

    return _made_once(kept / "models" / "tiny-deberta", lambda folder: make_tiny_twin(folder, "mxbai-rerank-xsmall-v1"))
