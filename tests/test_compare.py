"""The regression gate: statistics on synthetic samples whose answer is known, then the command line."""

import json
import random

import pytest
from helpers import lognormal, set_first_row_cell, write_run
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.compare.baseline import parse_thresholds
from rerank_bench.compare.bootstrap import RatioEstimate, bootstrap_ratio, verdict
from rerank_bench.errors import UsageError

runner = CliRunner()


def test_bootstrap_finds_a_known_20_percent_slowdown():
    base = lognormal(300, 100.0, seed=1)
    cur = [v * 1.2 for v in lognormal(300, 100.0, seed=2)]
    est = bootstrap_ratio([base], [cur], "median")
    assert est.ratio == pytest.approx(1.2, rel=0.02)
    assert 1.15 < est.low < est.ratio < est.high < 1.25
    assert verdict(est, 0.05) == "regressed"


def test_bootstrap_of_identical_distributions_brackets_one():
    base = lognormal(300, 100.0, seed=3)
    cur = lognormal(300, 100.0, seed=4)
    est = bootstrap_ratio([base], [cur], "mean")
    assert est.low < 1.0 < est.high
    assert verdict(est, 0.05) == "unchanged"


def test_between_run_noise_widens_the_interval():
    # three runs per side whose medians differ by +-6%: pooled, the queries look precise; the runs say not
    runs = [lognormal(200, m, sigma=0.01, seed=i) for i, m in enumerate((94.0, 100.0, 106.0))]
    one_level = bootstrap_ratio([sum(runs, [])], [sum(runs, [])], "median")
    two_level = bootstrap_ratio(runs, runs, "median", seed=1)
    assert (two_level.high - two_level.low) > 3 * (one_level.high - one_level.low)


def test_verdict_rules():
    assert verdict(RatioEstimate(1.10, 1.06, 1.14, 0.95), 0.05) == "regressed"
    assert verdict(RatioEstimate(1.10, 0.98, 1.22, 0.95), 0.05) == "inconclusive"  # worse, but CI includes 1
    assert verdict(RatioEstimate(1.03, 1.01, 1.07, 0.95), 0.05) == "inconclusive"  # could be beyond 5%
    assert verdict(RatioEstimate(1.02, 1.005, 1.04, 0.95), 0.05) == "unchanged"  # real but within tolerance
    assert verdict(RatioEstimate(0.85, 0.80, 0.90, 0.95), 0.05) == "improved"
    # throughput: higher is better, so a 10% drop is a regression
    assert verdict(RatioEstimate(0.90, 0.87, 0.93, 0.95), 0.05, higher_is_worse=False) == "regressed"


def test_thresholds():
    t = parse_thresholds("7%", ["p95=10", "memory=2%"])
    assert t == {
        "throughput": 0.07,
        "p50": 0.07,
        "p95": 0.10,
        "memory": 0.02,
        "ndcg": 0.005,
        "errors": 0.01,
        "goodput": 0.05,
        "capacity": 0.10,
    }
    with pytest.raises(UsageError):
        parse_thresholds("five", [])
    with pytest.raises(UsageError, match="METRIC=PCT"):
        parse_thresholds("5%", ["latency=5%"])


def test_compare_passes_unchanged_and_fails_once_listing_every_regression(tmp_path):
    base = write_run(
        tmp_path / "base.csv",
        {
            (8, 10): lognormal(100, 50, seed=1),
            (16, 10): lognormal(100, 60, seed=2),
            (32, 10): lognormal(100, 70, seed=3),
        },
    )
    same = write_run(
        tmp_path / "same.csv",
        {
            (8, 10): lognormal(100, 50, seed=4),
            (16, 10): lognormal(100, 60, seed=5),
            (32, 10): lognormal(100, 70, seed=6),
        },
    )
    result = runner.invoke(app, ["compare", str(base), str(same)])
    assert result.exit_code == 0, result.output
    assert "3 unchanged" in result.output

    slower = write_run(
        tmp_path / "slow.csv",
        {
            (8, 10): lognormal(100, 60, seed=7),
            (16, 10): lognormal(100, 60, seed=8),
            (32, 10): lognormal(100, 84, seed=9),
            (64, 10): lognormal(100, 90),
        },
    )
    result = runner.invoke(app, ["compare", str(base), str(slower), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [c["verdict"] for c in report["cases"]] == ["regressed", "unchanged", "regressed"]
    assert report["only_in_current"] == ["m torch/fp32 cpu batch 64 depth 10"]
    throughput = report["cases"][0]["metrics"][0]
    assert throughput["metric"] == "throughput" and throughput["ratio"] == pytest.approx(50 / 60, rel=0.03)


def test_markdown_and_github_benchmark_outputs(tmp_path):
    base = write_run(tmp_path / "base.csv", {(8, 10): lognormal(100, 50, seed=1)})
    cur = write_run(tmp_path / "cur.csv", {(8, 10): lognormal(100, 50, seed=2)})
    gh = tmp_path / "gh.json"
    result = runner.invoke(app, ["compare", str(base), str(cur), "--format", "markdown", "--github-benchmark", str(gh)])
    assert result.exit_code == 0
    assert result.stdout.startswith("## rerank-bench compare") and "| case | metric |" in result.stdout
    entries = json.loads(gh.read_text())
    assert {e["unit"] for e in entries} == {"ms", "MiB"}
    assert any(e["name"].endswith("ms/pair") for e in entries)


def test_memory_uses_a_plain_tolerance(tmp_path):
    base = write_run(tmp_path / "base.csv", {(8, 10): lognormal(100, 50, seed=1)}, memory=1000.0)
    cur = write_run(tmp_path / "cur.csv", {(8, 10): lognormal(100, 50, seed=2)}, memory=1150.0)
    result = runner.invoke(app, ["compare", str(base), str(cur), "--json"])
    assert result.exit_code == 1
    memory = [m for m in json.loads(result.stdout)["cases"][0]["metrics"] if m["metric"] == "memory"][0]
    assert memory["verdict"] == "regressed" and memory["ratio"] == pytest.approx(1.15)


def test_inconclusive_fails_only_when_asked(tmp_path):
    rng = random.Random(0)
    base = write_run(tmp_path / "base.csv", {(8, 10): [rng.uniform(20, 80) for _ in range(6)]})
    cur = write_run(tmp_path / "cur.csv", {(8, 10): [rng.uniform(25, 85) for _ in range(6)]})
    assert runner.invoke(app, ["compare", str(base), str(cur)]).exit_code == 0
    result = runner.invoke(app, ["compare", str(base), str(cur), "--fail-on-inconclusive"])
    assert result.exit_code == 3


def test_different_hardware_is_refused_unless_allowed_and_then_said_loudly(tmp_path):
    base = write_run(tmp_path / "base.csv", {(8, 10): lognormal(100, 50, seed=1)}, fingerprint="aaa")
    cur = write_run(tmp_path / "cur.csv", {(8, 10): lognormal(100, 50, seed=2)}, fingerprint="bbb")
    result = runner.invoke(app, ["compare", str(base), str(cur)])
    assert result.exit_code == 2 and "different hardware" in result.output
    result = runner.invoke(app, ["compare", str(base), str(cur), "--allow-different-hardware"])
    assert result.exit_code == 0 and "DIFFERENT HARDWARE" in result.output


def test_malformed_inputs_name_file_row_and_column(tmp_path):
    base = write_run(tmp_path / "base.csv", {(8, 10): lognormal(100, 50, seed=1)})
    bad = write_run(tmp_path / "bad.csv", {(8, 10): lognormal(100, 50, seed=2)})
    set_first_row_cell(bad, "pairs_per_s", "nan")
    result = runner.invoke(app, ["compare", str(base), str(bad)])
    assert result.exit_code == 2 and "bad.csv:2: column pairs_per_s is nan" in result.output

    dup = write_run(tmp_path / "dup.csv", {(8, 10): lognormal(100, 50, seed=2)})
    lines = dup.read_text().splitlines()
    dup.write_text("\n".join([lines[0], lines[1], lines[1]]) + "\n")
    result = runner.invoke(app, ["compare", str(base), str(dup)])
    assert result.exit_code == 2 and "dup.csv:3: duplicate case in run run1" in result.output

    nosamples = write_run(tmp_path / "nos.csv", {(8, 10): lognormal(100, 50, seed=2)})
    (tmp_path / "nos.samples.jsonl").unlink()
    result = runner.invoke(app, ["compare", str(base), str(nosamples)])
    assert result.exit_code == 2 and "no raw samples" in result.output

    missing = tmp_path / "missing.csv"
    missing.write_text("schema_version,run_id\n1,r\n")
    result = runner.invoke(app, ["compare", str(base), str(missing)])
    assert result.exit_code == 2 and "missing column(s)" in result.output

    result = runner.invoke(app, ["compare", str(base)])
    assert result.exit_code == 2 and "needs BASELINE and CURRENT" in result.output


def test_ignore_drops_a_field_from_the_match(tmp_path):
    base = write_run(tmp_path / "base.csv", {(8, 10): lognormal(100, 50, seed=1)})
    cur = tmp_path / "cur.csv"
    write_run(cur, {(8, 10): lognormal(100, 50, seed=2)})
    cur.write_text(cur.read_text().replace(",512,", ",256,"))
    result = runner.invoke(app, ["compare", str(base), str(cur)])
    assert result.exit_code == 2 and "no case of the baseline matches" in result.output
    assert runner.invoke(app, ["compare", str(base), str(cur), "--ignore", "max_length"]).exit_code == 0


@pytest.mark.slow
@pytest.mark.serial  # arms timed 0.5 s each: the other worker's load once flipped a verdict
def test_ab_takes_turns_in_fresh_processes_and_detects_a_slower_candidate():
    shared = ["--backend", "fake", "--depth", "10", "--batch-size", "10"]
    # The fake sleeps, and sleeps jitter on a busy machine: a 20% threshold keeps the noise rule out of the way
    # of this test, which is about the mechanism (the slowdown is 50%).
    result = runner.invoke(
        app,
        [
            "ab",
            "--a",
            "-m fake:ms_per_pair=1",
            "--b",
            "-m fake:ms_per_pair=1.5",
            "--reps",
            "2",
            "--seconds",
            "0.5",
            "--max-regression",
            "20%",
            "--json",
            *shared,
        ],
    )
    assert result.exit_code == 1, result.output
    (case,) = json.loads(result.stdout)["cases"]
    assert case["verdict"] == "regressed"
    throughput = case["metrics"][0]
    assert throughput["metric"] == "throughput" and throughput["note"].startswith("paired")
    assert throughput["ratio"] == pytest.approx((10 * 1 + 0.2) / (10 * 1.5 + 0.2), rel=0.1)
    assert case["noise"] < 0.10
    assert "repetition 2/2" in result.output


@pytest.mark.slow
@pytest.mark.serial  # arms timed 0.5 s each: the other worker's load once flipped a verdict
def test_ab_of_identical_arms_is_unchanged():
    shared = ["--backend", "fake", "-m", "fake:ms_per_pair=1", "--depth", "10", "--batch-size", "10"]
    result = runner.invoke(app, ["ab", "--reps", "1", "--seconds", "0.5", "--json", *shared])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    (case,) = answer["cases"]
    assert answer["notes"][0] == "A and B are identical: this is an A/A run"
    throughput = case["metrics"][0]
    # the same arm twice: no verdict may call a change, and the interval must hold "no change"
    assert case["verdict"] in ("unchanged", "inconclusive") and throughput["verdict"] in ("unchanged", "inconclusive")
    # (a 95% interval of an A/A pair misses 1 now and then; it must still be tight around a ratio near 1)
    assert 0.8 < throughput["low"] <= throughput["ratio"] <= throughput["high"] < 1.25
    assert abs(throughput["ratio"] - 1) < 0.05
    assert case["noise"] is not None and case["noise"] >= 0
    # arms in one process share its memory figure: no memory row that would always say +0.0%
    assert "memory" not in [m["metric"] for m in case["metrics"]]
    assert any(n.startswith("memory is not compared: A, A' and B share one process") for n in answer["notes"])


@pytest.mark.slow
def test_ab_reports_a_failing_arm_in_one_line():
    result = runner.invoke(
        app,
        [
            "ab",
            "--a",
            "-m fake:",
            "--b",
            "-m fake:error_at_batch=10",
            "--reps",
            "1",
            "--seconds",
            "0.2",
            "--backend",
            "fake",
            "--depth",
            "10",
            "--batch-size",
            "10",
        ],
    )
    assert result.exit_code == 2
    assert "B: RuntimeError: fake failure at batch 10" in result.output


def test_shard_slices_the_grid_without_overlap(tmp_path):
    seen = []
    for k in (1, 2, 3):
        result = runner.invoke(
            app,
            [
                "sweep",
                "--backend",
                "fake",
                "-m",
                "fake:",
                "--depth",
                "5,10",
                "--batch-size",
                "1,2,4",
                "--shard",
                f"{k}/3",
                "--dry-run",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        seen.extend(c["index"] for c in json.loads(result.stdout))
    assert sorted(seen) == list(range(6))
    assert (
        runner.invoke(app, ["sweep", "--backend", "fake", "-m", "fake:", "--shard", "4/3", "--dry-run"]).exit_code == 2
    )


@pytest.mark.slow
@pytest.mark.serial  # arms timed 0.5 s each: the other worker's load once flipped a verdict
def test_ab_with_separate_commands_runs_a_paused_worker_per_arm():
    import shlex
    import sys

    a_cmd = shlex.join([sys.executable, "-m", "rerank_bench"])
    b_cmd = shlex.join([sys.executable, "-X", "faulthandler", "-m", "rerank_bench"])  # another "environment"
    result = runner.invoke(
        app,
        [
            "ab",
            "--a-cmd",
            a_cmd,
            "--b-cmd",
            b_cmd,
            "--a",
            "-m fake:ms_per_pair=1",
            "--b",
            "-m fake:ms_per_pair=1.5",
            "--reps",
            "1",
            "--seconds",
            "1.0",  # 0.5 s: the A/A noise floor reached 10.6% once in CI on this 2-core host (inconclusive)
            "--json",
            "--max-regression",
            "20%",
            "--backend",
            "fake",
            "--depth",
            "10",
            "--batch-size",
            "10",
        ],
    )
    assert result.exit_code == 1, result.output
    (case,) = json.loads(result.stdout)["cases"]
    assert case["verdict"] == "regressed"
    # a process per arm: each arm's own memory is measured and compared
    assert "memory" in [m["metric"] for m in case["metrics"]]
    assert case["metrics"][0]["ratio"] == pytest.approx(10.2 / 15.2, rel=0.1)


def test_one_fingerprint_but_a_different_speed_check_is_refused_like_different_hardware(tmp_path):
    """Two hosts of one VM type: same fingerprint, matmul peaks 387 and 190 GFLOP/s."""
    base = write_run(tmp_path / "base.csv", {(8, 10): lognormal(100, 50, seed=1)}, peak=387.0)
    cur = write_run(tmp_path / "cur.csv", {(8, 10): lognormal(100, 100, seed=2)}, peak=190.0)
    result = runner.invoke(app, ["compare", str(base), str(cur)])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "different machines under one fingerprint" in said and "387 GFLOP/s" in said and "190" in said
    allowed = runner.invoke(app, ["compare", str(base), str(cur), "--allow-different-hardware", "--json"])
    assert any(n.startswith("DIFFERENT SPEED:") for n in json.loads(allowed.stdout)["notes"])
    near = write_run(tmp_path / "near.csv", {(8, 10): lognormal(100, 50, seed=3)}, peak=372.0)  # 4% apart: same host
    assert runner.invoke(app, ["compare", str(base), str(near)]).exit_code == 0
