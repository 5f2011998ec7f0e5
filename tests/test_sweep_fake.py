"""Real sweeps through the command line, the child processes and the result files, on the fake backend."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.common.case_key import case_id_for
from rerank_bench.results.store import read_rows, read_samples

pytestmark = pytest.mark.slow  # every test here starts worker processes

runner = CliRunner()
FAST = ["--max-seconds-per-case", "0.3", "--backend", "fake"]


def sweep(tmp_path, *args, name="r.csv"):
    out = tmp_path / name
    result = runner.invoke(app, ["sweep", *FAST, "-o", str(out), *args])
    return result, out


def test_sweep_writes_a_row_per_case_and_raw_samples(tmp_path):
    result, out = sweep(tmp_path, "-m", "fake:ms_per_pair=0.02", "--depth", "10,20", "--batch-size", "4,8", "--json")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [(r["depth"], r["batch_size"]) for r in rows] == [(10, 4), (10, 8), (20, 4), (20, 8)]
    assert {r["status"] for r in rows} == {"ok"}
    samples = read_samples(tmp_path / "r.samples.jsonl")
    for r in rows:
        latencies = samples[(r["run_id"], r["case_id"])]
        assert len(latencies) == int(r["n_queries"]) > 0
        # pairs/s is recomputed from the raw samples exactly
        assert float(r["pairs_per_s"]) == __import__("pytest").approx(
            len(latencies) * int(r["depth"]) / (sum(latencies) / 1000), rel=1e-3
        )
        assert r["hardware_fingerprint"] and r["tool_version"] and r["run_id"]
        assert 0 < float(r["padding_efficiency"]) <= 1
        # the key as planned (a fake's length is known when planned), what loading settled beside it, and the id
        # from the row's own columns
        assert r["max_length"] == r["effective_max_length"] == 512 and r["random_head"] is False
        assert case_id_for(r) == r["case_id"]
    summary = json.loads(result.stdout)
    assert [e["depth"] for e in summary["summary"]] == [10, 20]
    assert len(summary["rows"]) == 4


def test_out_of_memory_is_a_row_and_larger_batches_are_skipped(tmp_path):
    result, out = sweep(tmp_path, "-m", "fake:oom_at_batch=16", "--depth", "40,80", "--batch-size", "8,16,32")
    assert result.exit_code == 0, result.output
    status = {(r["depth"], r["batch_size"]): (r["status"], r["status_reason"]) for r in read_rows(out)}
    assert status[(40, 8)][0] == "ok"
    assert status[(40, 16)][0] == "oom" and "out of memory" in status[(40, 16)][1]
    assert status[(40, 32)] == ("skipped", "batch 16 ran out of memory at depth 40")
    assert status[(80, 8)][0] == "ok" and status[(80, 16)][0] == "oom"


def test_an_error_in_one_case_is_a_row_and_the_sweep_goes_on(tmp_path):
    result, out = sweep(tmp_path, "-m", "fake:error_at_batch=8", "--depth", "20", "--batch-size", "4,8,16")
    assert result.exit_code == 0
    assert [(r["batch_size"], r["status"]) for r in read_rows(out)] == [(4, "ok"), (8, "error"), (16, "ok")]
    assert "fake failure at batch 8" in read_rows(out)[1]["status_reason"]


def test_a_crashed_worker_becomes_rows_and_the_next_model_starts_fresh(tmp_path):
    result, out = sweep(
        tmp_path,
        "-m",
        "fake:crash_at_batch=8",
        "-m",
        "fake:ms_per_pair=0.01",
        "--depth",
        "20",
        "--batch-size",
        "4,8,16",
    )
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    crashed = [(r["batch_size"], r["status"]) for r in rows if "crash" in r["model"]]
    # a SIGKILL with no rise in the cgroup's OOM-kill counter is a crash, not "most likely" out of memory
    assert crashed == [(4, "ok"), (8, "crashed"), (16, "skipped")]
    assert "SIGKILL" in rows[1]["status_reason"] and "died" in rows[2]["status_reason"]
    assert [r["status"] for r in rows if "crash" not in r["model"]] == ["ok", "ok", "ok"]
    # --resume measures a crashed case again (and the skipped one after it); ok cases are kept
    again = runner.invoke(
        app,
        [
            "sweep",
            *FAST,
            "-m",
            "fake:crash_at_batch=8",
            "--depth",
            "20",
            "--batch-size",
            "4,8,16",
            "--resume",
            str(out),
        ],
    )
    assert again.exit_code == 0, again.output
    tried = [(r["batch_size"], r["status"]) for r in read_rows(out)[len(rows) :]]
    assert tried == [(8, "crashed"), (16, "skipped")]


def test_cpu_out_of_memory_is_oom_and_a_sweep_with_no_ok_case_exits_1(tmp_path):
    result, out = sweep(tmp_path, "-m", "fake:cpu_oom_at_batch=4", "--depth", "5", "--batch-size", "4")
    assert result.exit_code == 1 and "no case measured ok (1 oom)" in result.output, result.output
    (row,) = read_rows(out)
    assert row["status"] == "oom" and "DefaultCPUAllocator" in row["status_reason"]
    # --retry-oom measures it again on --resume; without it the oom row counts as measured
    kept = runner.invoke(
        app,
        ["sweep", *FAST, "-m", "fake:cpu_oom_at_batch=4", "--depth", "5", "--batch-size", "4", "--resume", str(out)],
    )
    assert len(read_rows(out)) == 1 and kept.exit_code == 1
    runner.invoke(
        app,
        [
            "sweep",
            *FAST,
            "-m",
            "fake:cpu_oom_at_batch=4",
            "--depth",
            "5",
            "--batch-size",
            "4",
            "--resume",
            str(out),
            "--retry-oom",
        ],
    )
    assert [r["status"] for r in read_rows(out)] == ["oom", "oom"]


def test_a_hung_case_times_out_and_later_cases_are_skipped(tmp_path):
    result, out = sweep(
        tmp_path, "-m", "fake:hang_at_batch=8", "--depth", "20", "--batch-size", "4,8,16", "--case-timeout", "2"
    )
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in read_rows(out)] == ["ok", "timeout", "skipped"]


def test_resume_skips_measured_cases_and_survives_a_torn_line(tmp_path):
    args = ["-m", "fake:ms_per_pair=0.01", "--depth", "20", "--batch-size", "4,8"]
    result, out = sweep(tmp_path, *args)
    assert result.exit_code == 0
    first = read_rows(out)
    # remove the second case and tear the file as a crash inside a write would
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][:25])
    result = runner.invoke(app, ["sweep", *FAST, "--resume", str(out), *args, "--batch-size", "4,8,16"])
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [r["batch_size"] for r in rows] == [4, 8, 16]
    assert rows[0]["run_id"] == first[0]["run_id"]  # kept, not measured again
    assert rows[1]["run_id"] == rows[2]["run_id"] != first[0]["run_id"]


def test_dry_run_lists_cases_and_runs_nothing(tmp_path):
    out = tmp_path / "never.csv"
    result = runner.invoke(
        app,
        ["sweep", *FAST, "-m", "fake:", "--depth", "5,10", "--batch-size", "4", "--dry-run", "--json", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    cases = json.loads(result.stdout)
    assert [(c["depth"], c["batch_size"]) for c in cases] == [(5, 4), (10, 4)]
    assert not out.exists()


def test_a_model_refused_after_loading_exits_2_with_rows(tmp_path):
    result, out = sweep(tmp_path, "-m", "fake:random_head=1", "--depth", "5", "--batch-size", "4")
    assert result.exit_code == 2
    assert "newly initialised" in result.output
    assert [r["status"] for r in read_rows(out)] == ["error"]
    result, out = sweep(
        tmp_path, "-m", "fake:random_head=1", "--depth", "5", "--batch-size", "4", "--allow-random-head", name="r2.csv"
    )
    assert result.exit_code == 0
    (row,) = read_rows(out)
    assert (row["weights"], row["random_head"]) == ("random", True)


def test_bad_inputs_are_one_line_errors_with_exit_2(tmp_path):
    for args, message in [
        (["--batch-size", "8,abc"], "--batch-size takes a comma list of integers"),
        (["--depth", "0"], "--depth values must be at least 1"),
        (["--doc-tokens", "9:3"], "--doc-tokens '9:3' needs 1 <= A <= B"),
        (["--workload", str(tmp_path / "none.jsonl")], "does not exist"),
        (["--resume", str(tmp_path / "none.csv")], "no such file"),
        (["--max-seconds-per-case", "0"], "--max-seconds-per-case and --case-timeout must be positive"),
    ]:
        out = [] if "--resume" in args else ["-o", str(tmp_path / "x.csv")]
        result = runner.invoke(app, ["sweep", "--backend", "fake", "-m", "fake:", *args, *out])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
        assert "Traceback" not in result.output


def test_workload_file_depth_error_names_the_line_before_anything_runs(tmp_path):
    workload = tmp_path / "w.jsonl"
    workload.write_text('{"query": "a b", "documents": ["x y", "z"]}\n{"query": "c", "documents": ["only one"]}\n')
    out = tmp_path / "r.csv"
    result = runner.invoke(
        app, ["sweep", *FAST, "-m", "fake:", "--workload", str(workload), "--depth", "2", "-o", str(out)]
    )
    assert result.exit_code == 2
    assert "w.jsonl:2: depth 2 needs 2 documents, this request has 1" in result.output
    assert not out.exists()
    result = runner.invoke(
        app,
        [
            "sweep",
            *FAST,
            "-m",
            "fake:",
            "--workload",
            str(workload),
            "--depth",
            "2",
            "--batch-size",
            "2",
            "--sample-with-replacement",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    (row,) = read_rows(out)
    assert row["workload"].startswith("file:w.jsonl@") and row["status"] == "ok"


def sigint_as_at_a_terminal():
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_finished_cases_and_exits_130(tmp_path):
    out = tmp_path / "r.csv"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rerank_bench",
            "sweep",
            "--backend",
            "fake",
            "-m",
            "fake:ms_per_pair=0.5",
            "--depth",
            "10",
            "--batch-size",
            "1,2,3,4,5,6,7,8",
            "--max-seconds-per-case",
            "1",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # a suite started as a background job inherits SIGINT ignored, and Python then installs no handler:
        # the child gets the default disposition back, so Ctrl-C is what it is at a terminal
        preexec_fn=sigint_as_at_a_terminal,
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if out.exists() and len(out.read_text().splitlines()) >= 3:  # header and two cases
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    rows = read_rows(out)
    assert 2 <= len(rows) < 8
    assert all(r["status"] == "ok" for r in rows)
    assert out.read_text().endswith("\n")
    assert b"Traceback" not in err


def test_offline_and_not_cached_with_real_weights_is_exit_2_before_anything_runs(tmp_path):
    out = tmp_path / "r.csv"
    result = runner.invoke(app, ["sweep", "-m", "minilm-l6", "--weights", "real", "-o", str(out)])  # HF_HUB_OFFLINE=1
    assert result.exit_code == 2
    assert (
        "HF_HUB_OFFLINE is set and cross-encoder/ms-marco-MiniLM-L6-v2 is not in the local Hugging Face cache"
        in result.output
    )
    assert not out.exists()


def test_batch_sizes_beyond_the_depth_run_once_as_the_depth_and_say_so(tmp_path):
    """A query of 10 pairs is one batch of 10 whatever batch size is asked: rows record what ran."""
    result, out = sweep(tmp_path, "-m", "fake:", "--depth", "10", "--batch-size", "8,16,100000")
    assert result.exit_code == 0, result.output
    assert [r["batch_size"] for r in read_rows(out)] == [8, 10]
    said = " ".join(result.output.split())
    assert "depth 10: batch size 16, 100000 is more than its 10 candidates" in said


def test_default_batch_sizes_stop_once_one_is_much_slower_and_named_ones_all_run(tmp_path):
    """Per pair, batch b costs 0.2 + 0.1 b ms: batch 8 1.0, 16 1.8 (56% of batch 8's rate, below 65%), so
    32 and 64 are skipped with the reason; the same sizes named with --batch-size are all measured."""
    from rerank_bench.sweep.request import DEFAULT_PRUNE_RATIO

    spec = "fake:ms_per_pair=0.2;ms_per_batch=0;ms_per_pair_squared=0.1"
    result, out = sweep(tmp_path, "-m", spec, "--depth", "64")
    assert result.exit_code == 0, result.output
    rows = {r["batch_size"]: r for r in read_rows(out)}
    assert [rows[b]["status"] for b in (8, 16, 32, 64)] == ["ok", "ok", "skipped", "skipped"]
    ratio = rows[16]["pairs_per_s"] / rows[8]["pairs_per_s"]
    assert 0.4 < ratio < DEFAULT_PRUNE_RATIO
    assert rows[32]["status_reason"].startswith(f"pruned: batch 16 ran at {ratio:.0%} of batch 8's pairs/s")
    said = " ".join(result.output.split())
    assert "--batch-size 8,16,32,64 measures every one" in said

    result, out = sweep(tmp_path, "-m", spec, "--depth", "64", "--batch-size", "8,16,32,64", name="all.csv")
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in read_rows(out)] == ["ok"] * 4


def test_progress_says_what_happens_before_the_first_case(tmp_path):
    """No silent 'starting': loading (and, for real backends, the peak probe) is named before case one."""
    from rerank_bench.probe import probe_machine
    from rerank_bench.sweep.planner import plan_sweep
    from rerank_bench.sweep.request import SweepRequest
    from rerank_bench.sweep.scheduler import QuietEvents, run_sweep
    from rerank_bench.sweep.timing import MeasureSettings

    class Recorder(QuietEvents):
        def __init__(self):
            self.seen = []

        def preparing(self, what):
            self.seen.append(("preparing", what))

        def case_started(self, case):
            self.seen.append(("case", case.batch_size))

    machine = probe_machine()
    settings = MeasureSettings(max_seconds=0.2)
    request = SweepRequest(
        models=("fake:",),
        backends=("fake",),
        depths=(10,),
        batch_sizes=(4,),
        output=tmp_path / "r.csv",
        settings=settings,
    )
    events = Recorder()
    run_sweep(plan_sweep(request, machine), machine, settings, events)
    assert events.seen[0] == ("preparing", "loading fake: (fake fp32)") and events.seen[1] == ("case", 4)


def test_an_attention_choice_reaches_the_worker_and_its_rows(tmp_path):
    result, out = sweep(
        tmp_path, "-m", "fake:ms_per_pair=0.02", "--depth", "10", "--batch-size", "4", "--attention", "auto,eager"
    )
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [(r["attention"], r["backend_options"], r["status"]) for r in rows] == [
        ("", "", "ok"),
        ("eager", "attention eager", "ok"),
    ]
    assert all(r["case_id"] == case_id_for(r) for r in rows)
