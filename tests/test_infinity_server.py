"""Against a real server: infinity (PyPI infinity-emb) serving a tiny BERT on the CPU, from its own virtual
environment (scripts/serve_infinity.sh), benchmarked by `rerank-bench endpoint` at a short closed-loop and
open-loop level. Skipped, with the reason, where that environment has not been built (it is a pip install of
a few minutes: `bash scripts/serve_infinity.sh --build-only`; .ci/run builds it when it can)."""

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.results.store import read_rows

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
VENV = Path(
    os.environ.get(
        "INFINITY_VENV",
        Path(os.environ.get("RERANK_BENCH_CACHE", Path.home() / ".cache" / "rerank-bench")) / "infinity-venv",
    )
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def infinity(tiny_bert, tmp_path_factory):
    if not (VENV / ".rerank-bench-complete").exists():
        pytest.skip(f"infinity's environment is not built at {VENV} (bash scripts/serve_infinity.sh --build-only)")
    from rerank_bench.models.servable import servable_folder

    folder = servable_folder(str(tiny_bert), tmp_path_factory.mktemp("serve") / "tiny")
    port = _free_port()
    log = tmp_path_factory.mktemp("log") / "infinity.log"
    with log.open("w") as handle:
        server = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "serve_infinity.sh"), str(folder), str(port)],
            stdout=handle,
            stderr=handle,
            env={**os.environ, "INFINITY_VENV": str(VENV)},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                if server.poll() is not None:
                    pytest.fail(f"infinity exited with {server.returncode}: {log.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(url + "/models", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"infinity did not answer within 180 s: {log.read_text()[-2000:]}")
                    time.sleep(1)
            yield url, folder
        finally:
            server.terminate()
            server.wait(30)


def test_infinity_is_measured_closed_and_open_loop_with_its_identity(infinity, tmp_path):
    url, folder = infinity
    out = tmp_path / "served.csv"
    result = CliRunner().invoke(
        app,
        # 90 requests at 20/s: a few more than the fewest that can pass a p95 SLO (86), in 4.5 s
        ["endpoint", url, "--depth", "8", "--concurrency", "1", "--rate", "20", "--requests", "90", "--duration", "2"]
        + ["--tokenizer", str(folder), "--reference", str(folder), "--slo-ms", "2000", "-o", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["api"] == "infinity"  # detected from its /models route, with GET requests only
    agreement = report["depths"][0]["agreement"]
    assert agreement["agreement_max_abs_diff"] < 1e-3  # the same model, served and in process, scores the same
    closed, opened = read_rows(out)
    assert (closed["load_mode"], closed["concurrency"]) == ("closed", 1)
    assert (opened["load_mode"], opened["offered_rps"]) == ("open", 20.0)
    for row in (closed, opened):
        assert row["status"] == "ok" and row["requests_failed"] == 0 and row["requests_completed"] >= 3
        assert row["server"].startswith("infinity") and row["p50_ms"] > 0
