"""Against a real server: infinity (PyPI infinity-emb) serving a tiny BERT on the CPU, from its own virtual
environment (scripts/serve_infinity.sh), benchmarked by `rerank-bench endpoint` at a short closed-loop and
open-loop level. Skipped, with the reason, where that environment has not been built (it is a pip install of
a few minutes: `bash scripts/serve_infinity.sh --build-only`; .ci/run builds it when it can)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.results.store import read_rows

# serial: its levels are timed against an SLO with a 10 ms send-lag tolerance; a parallel worker's export
# beside it on 2 cores made the generator fall behind once in four parallel runs.
pytestmark = [pytest.mark.slow, pytest.mark.serial]
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


def _start(folder, port, log):
    """infinity serving `folder` on `port`, once it answers (its log in `log`)."""
    with log.open("w") as handle:
        server = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "serve_infinity.sh"), str(folder), str(port)],
            stdout=handle,
            stderr=handle,
            env={**os.environ, "INFINITY_VENV": str(VENV)},
            start_new_session=True,  # its own process group: kill -9 reaches the server, not only the script
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if server.poll() is not None:
            pytest.fail(f"infinity exited with {server.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2):
                return server
        except OSError:
            if time.monotonic() > deadline:
                _stop(server)
                pytest.fail(f"infinity did not answer within 180 s: {log.read_text()[-2000:]}")
            time.sleep(0.5)


def _stop(server, signal_number=signal.SIGTERM):
    if server.poll() is None:
        os.killpg(server.pid, signal_number)
        server.wait(30)


@pytest.fixture(scope="module")
def infinity(tiny_bert, tmp_path_factory):
    if not (VENV / ".rerank-bench-complete").exists():
        pytest.skip(f"infinity's environment is not built at {VENV} (bash scripts/serve_infinity.sh --build-only)")
    from rerank_bench.models.servable import servable_folder

    folder = servable_folder(str(tiny_bert), tmp_path_factory.mktemp("serve") / "tiny")
    port = _free_port()
    server = _start(folder, port, tmp_path_factory.mktemp("log") / "infinity.log")
    try:
        yield f"http://127.0.0.1:{port}", folder, port, server
    finally:
        _stop(server)


def test_infinity_is_measured_closed_and_open_loop_with_its_identity(infinity, tmp_path):
    url, folder, _, _ = infinity
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


def test_infinity_killed_mid_level_and_restarted_is_counted_waited_for_and_every_level_kept(infinity, tmp_path):
    """kill -9 of the real server in the middle of a closed-loop level, then a restart on the same port: that
    level counts connection errors by kind, the next waits for the server to answer again and is measured,
    and the CSV has every level. Last in this module: it leaves the module's server dead."""
    url, folder, port, server = infinity
    out = tmp_path / "killed.csv"
    argv = [sys.executable, "-m", "rerank_bench", "endpoint", url, "--depth", "5", "--concurrency", "1,2,3"]
    argv += ["--duration", "1.5", "--timeout-s", "5", "-o", str(out)]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and len(out.read_text().splitlines()) >= 2):
        time.sleep(0.05)
    time.sleep(0.5)  # into the second level
    _stop(server, signal.SIGKILL)
    restarted = _start(folder, port, tmp_path / "restarted.log")
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        _stop(restarted)
    assert proc.returncode == 0, err
    said = " ".join(err.split())
    assert "stopped answering (connection) before depth 5 closed x3: waiting up to 60 s" in said, err
    assert "answers again; measuring depth 5 closed x3" in said and "Traceback" not in err
    rows = read_rows(out)
    assert [r["concurrency"] for r in rows] == [1, 2, 3]
    assert rows[0]["requests_failed"] == 0 and rows[2]["requests_failed"] == 0 and rows[2]["status"] == "ok"
    errors = dict(part.split(":") for part in rows[1]["errors"].split(";"))
    assert set(errors) <= {"connection", "abandoned", "timeout"} and int(errors.get("connection", 0)) > 0
