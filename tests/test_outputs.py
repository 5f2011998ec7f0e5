"""Nothing lost, nothing overwritten: where results go, and what happens when they cannot go there."""

import fcntl
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import lognormal, write_run
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.results.store import read_rows

runner = CliRunner()
FAKE = ["sweep", "--backend", "fake", "-m", "fake:ms_per_pair=0.02", "--max-seconds-per-case", "0.2"]


def one_line_error(result, code):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("content", [b"precious notes", b"a\nb", b"\x00\x01\x02binary\xff"])
def test_an_existing_file_that_is_not_a_result_file_is_refused_and_left_as_it_is(tmp_path, content):
    target = tmp_path / "notes.txt"
    target.write_bytes(content)
    for option in ("-o", "--resume"):
        result = runner.invoke(app, [*FAKE, "--depth", "5", "--batch-size", "4", option, str(target)])
        assert "is not a rerank-bench result file" in one_line_error(result, 2)
        assert target.read_bytes() == content  # nothing cut, nothing appended


def test_outputs_that_cannot_be_files_are_one_line_exit_2(tmp_path):
    (tmp_path / "a-file").write_text("x")
    for target, fragment in (
        (tmp_path, "is a folder"),
        (tmp_path / "a-file" / "r.csv", "is not a folder you can write to"),
        ("/dev/full", "is not a regular file"),
    ):
        result = runner.invoke(app, [*FAKE, "--depth", "5", "--batch-size", "4", "-o", str(target)])
        assert fragment in one_line_error(result, 2), target


def test_a_second_writer_of_the_same_file_is_refused(tmp_path):
    out = tmp_path / "r.csv"
    with open(out, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as a running sweep holds it
        result = runner.invoke(app, [*FAKE, "--depth", "5", "--batch-size", "4", "-o", str(out)])
    assert "another rerank-bench is writing" in one_line_error(result, 2)


def test_report_and_compare_outputs_that_cannot_be_written(tmp_path):
    base = write_run(tmp_path / "in" / "a.csv", {(8, 10): lognormal(60, 50, seed=1)})
    (tmp_path / "taken").write_text("mine")
    result = runner.invoke(app, ["report", str(base), "--out", str(tmp_path / "taken")])
    assert "is a file, and the report is a folder" in one_line_error(result, 2)
    assert (tmp_path / "taken").read_text() == "mine"
    result = runner.invoke(app, ["compare", str(base), str(base), "--github-benchmark", "/dev/full", "--json"])
    assert result.exit_code == 3 and "cannot write /dev/full: No space left on device" in result.output


@pytest.mark.slow
def test_a_disk_that_fills_mid_sweep_keeps_the_case_just_measured(tmp_path):
    """A file-size limit makes the second row's write fail as a full disk would (EFBIG): the sweep stops with
    exit 3 and names where the measured row was kept; the rows before it stay in the file."""
    out = tmp_path / "r.csv"
    # The header (its length from the schema: about 2,000 bytes in schema 6) and one row (about 650) fit, a second
    # row does not. The first case's raw samples (1-3 kB, by how many queries ran) may be the write that fails
    # instead; either way the first row is the only one in the file and the case just measured is rescued.
    from rerank_bench.results.schema import COLUMN_NAMES

    limit = len(",".join(COLUMN_NAMES)) + 1 + 1000

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    argv = [sys.executable, "-m", "rerank_bench", *FAKE, "--depth", "5", "--batch-size", "2,4,5", "-o", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, preexec_fn=small_files, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr and "File too large" in proc.stderr
    assert "the case just measured is kept in" in proc.stderr
    assert [r["batch_size"] for r in read_rows(out)] == [2]
    kept = proc.stderr.split("the case just measured is kept in ")[1].split(", and the sweep stopped")[0]
    rescued = proc.stderr if kept.startswith("stderr") else Path(kept).read_text()
    assert ",fake:ms_per_pair=0.02," in rescued and ",ok," in rescued


@pytest.mark.slow
def test_sigterm_keeps_finished_cases_and_says_so(tmp_path):
    out = tmp_path / "r.csv"
    argv = [sys.executable, "-m", "rerank_bench", *FAKE[:4], "fake:ms_per_pair=0.5", "--max-seconds-per-case", "1"]
    argv += ["--depth", "10", "--batch-size", "1,2,3,4,5,6,7,8", "-o", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and len(out.read_text().splitlines()) >= 3):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    rows = read_rows(out)
    assert 2 <= len(rows) < 8 and all(r["status"] == "ok" for r in rows)
    assert b"terminated:" in err and f"finished cases are in {out}".encode() in err and b"Traceback" not in err


# A library that prints to stdout while the command works, in this process and in a worker it starts: NNCF's
# log lines and progress bars did this to `tune --json`.
NOISY = """
import os, sys
import rerank_bench.sweep.planner as planner
real = planner.plan_sweep
def noisy(*args, **kwargs):
    print("INFO:nncf:a library's log line")  # Python's stdout
    sys.stdout.flush()
    os.system("echo a worker process writing to its stdout")  # a child's inherited descriptor 1
    return real(*args, **kwargs)
planner.plan_sweep = noisy
from rerank_bench.cli import app
app(prog_name="rerank-bench")
"""


@pytest.mark.slow  # starts the command in a process of its own: the descriptors are the point
def test_json_stdout_is_one_document_whatever_libraries_and_workers_print(tmp_path):
    import json

    argv = [sys.executable, "-c", NOISY, "sweep", "--backend", "fake", "-m", "fake:", "--depth", "10"]
    argv += ["--batch-size", "10", "--dry-run", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    cases = json.loads(done.stdout)  # the whole of stdout parses: nothing else was written there
    assert cases[0]["backend"] == "fake"
    assert "INFO:nncf:a library's log line" in done.stderr and "a worker process writing" in done.stderr
    plain = subprocess.run(argv[:-1], capture_output=True, text=True, timeout=120)  # without --json: untouched
    assert "INFO:nncf:a library's log line" in plain.stdout
