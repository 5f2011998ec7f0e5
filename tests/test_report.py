"""`report`: merging result files from several machines into a leaderboard, plots and one HTML page."""

import json

from helpers import lognormal, write_run
from typer.testing import CliRunner

from rerank_bench.cli import app

runner = CliRunner()


def two_machines(tmp_path):
    a = write_run(
        tmp_path / "in" / "a.csv",
        {(8, 20): lognormal(60, 50, seed=1), (16, 20): lognormal(60, 80, seed=2), (8, 50): lognormal(60, 120, seed=3)},
        run_id="runA",
        fingerprint="fpA",
    )
    b = write_run(
        tmp_path / "in" / "b.csv",
        {(8, 20): lognormal(60, 25, seed=4), (16, 20): lognormal(60, 30, seed=5)},
        run_id="runB",
        fingerprint="fpB",
    )
    for path, name in ((a, "Laptop CPU"), (b, "NVIDIA L4")):
        path.write_text(path.read_text().replace("test machine", name))
    return tmp_path / "in"


def test_report_merges_machines_and_writes_every_artefact(tmp_path):
    inputs = two_machines(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", str(inputs), "--out", str(out), "--budget-ms", "100", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {e["hardware"] for e in report["leaderboard"]} == {"Laptop CPU", "NVIDIA L4"}
    laptop = next(e for e in report["leaderboard"] if e["hardware"] == "Laptop CPU")
    assert laptop["best_batch_size"] == 8 and laptop["best_at_depth"] == 50  # 50 docs in 120 ms beats 20 in 50 ms
    assert laptop["p95_ms_depth_20"] is not None and laptop["latency_metric_depth_20"] == "p50"  # no p95 in these rows
    assert laptop["random_weights"] is True
    assert {m["fingerprint"] for m in report["machines"]} == {"fpA", "fpB"}
    for name in ("throughput_vs_batch_depth20", "latency_vs_depth", "memory_vs_batch"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "Laptop CPU #fpA (cpu)" in (out / "leaderboard.md").read_text()
    assert (out / "leaderboard.csv").read_text().startswith("model,weights")


def test_html_is_self_contained(tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["report", str(two_machines(tmp_path)), "--out", str(out)]).exit_code == 0
    page = (out / "report.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count("data:image/png;base64,") == 4
    assert "NVIDIA L4" in page and "twin" in page


def test_identical_runs_read_twice_count_once(tmp_path):
    inputs = two_machines(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "a.csv").write_text((inputs / "a.csv").read_text())
    result = runner.invoke(app, ["report", str(inputs), str(copy), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert any("counted once" in n for n in report["notes"])
    assert sum(m["rows"] for m in report["machines"]) == 5


def test_filter_by_hardware(tmp_path):
    result = runner.invoke(
        app,
        [
            "report",
            str(two_machines(tmp_path)),
            "--out",
            str(tmp_path / "o"),
            "--filter",
            "hardware=NVIDIA L4",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert {e["hardware"] for e in json.loads(result.stdout)["leaderboard"]} == {"NVIDIA L4"}
    bad = runner.invoke(app, ["report", str(tmp_path / "in"), "--filter", "colour=red"])
    assert bad.exit_code == 2 and "FIELD=VALUE" in bad.output


def test_schema_mismatch_and_empty_input_are_exit_2(tmp_path):
    inputs = two_machines(tmp_path)
    text = (inputs / "a.csv").read_text().splitlines()
    text[2] = "99" + text[2][text[2].index(",") :]
    (inputs / "a.csv").write_text("\n".join(text) + "\n")
    result = runner.invoke(app, ["report", str(inputs), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "a.csv:3: schema version '99'" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["report", str(empty)])
    assert result.exit_code == 2 and "no result CSV files" in result.output
    (empty / "header-only.csv").write_text((inputs / "b.csv").read_text().splitlines()[0] + "\n")
    result = runner.invoke(app, ["report", str(empty)])
    assert result.exit_code == 2 and "hold no rows" in result.output


def test_a_file_with_only_failed_rows_gives_an_empty_report_that_says_so(tmp_path):
    inputs = two_machines(tmp_path)
    (inputs / "b.csv").unlink()
    path = inputs / "a.csv"
    path.write_text(path.read_text().replace(",ok,", ",error,"))
    out = tmp_path / "o"
    result = runner.invoke(app, ["report", str(inputs), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["leaderboard"] == []
    assert any("no case measured ok" in n for n in report["notes"])
    assert (out / "report.html").exists()


def test_missing_matplotlib_is_an_environment_error_not_a_traceback(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    result = runner.invoke(app, ["report", str(two_machines(tmp_path)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3
    assert 'need matplotlib, which is not installed (pip install "rerank-bench[report]")' in result.output
    assert "Traceback" not in result.output


def test_backend_rows_give_a_speed_vs_agreement_plot_and_leaderboard_columns(tmp_path):
    from rerank_bench.results.store import ResultWriter

    path = tmp_path / "in" / "backends.csv"
    path.parent.mkdir()
    configs = [("torch", "fp32", 30.0, 1.0), ("openvino", "bf16", 120.0, 0.9988), ("onnx", "int8", 130.0, 0.93)]
    with ResultWriter(path) as writer:
        for n, (backend, dtype, rate, rho) in enumerate(configs):
            writer.write_row(
                {
                    "run_id": "r",
                    "case_id": f"c{n}",
                    "utc_time": "2026-11-23T00:00:00Z",
                    "hardware_fingerprint": "fp",
                    "hardware_name": "test machine",
                    "model": "m",
                    "weights": "real",
                    "backend": backend,
                    "dtype": dtype,
                    "device": "cpu",
                    "batch_size": 8,
                    "depth": 50,
                    "max_length": 512,
                    "order": "length",
                    "threads": 2,
                    "workload": "rag",
                    "seed": 0,
                    "status": "ok",
                    "pairs_per_s": rate,
                    "p50_ms": 50_000 / rate,
                    "agreement_spearman_mean": rho,
                    "fraction_of_peak": 0.5,
                    "peak_rss_mib": 500,
                }
            )
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", str(path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    plot = out / "speed_vs_agreement_depth50.png"
    assert plot.exists() and plot.stat().st_size > 5000
    board = (out / "leaderboard.md").read_text()
    assert "| 0.9300 |" in board and "8, length" in board and "| 50% |" in board
    page = (out / "report.html").read_text()
    assert "<img alt='speed_vs_agreement_depth50' src='data:image/png;base64," in page


def test_report_written_inside_its_input_folder_runs_again(tmp_path):
    """The README's own command, twice: the second run finds the first one's leaderboard.csv in the folder it
    searches, skips it with a one-line note, and succeeds; a non-result CSV named explicitly stays an error."""
    inputs = two_machines(tmp_path)
    out = inputs / "report"
    first = runner.invoke(app, ["report", str(inputs), "--out", str(out)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["report", str(inputs), "--out", str(out), "--json"])
    assert second.exit_code == 0, second.output
    notes = json.loads(second.stdout)["notes"]
    assert any("skipped 1 CSV file(s) that are not rerank-bench results" in n and "leaderboard.csv" in n for n in notes)
    named = runner.invoke(app, ["report", str(out / "leaderboard.csv")])
    assert named.exit_code == 2 and "not a rerank-bench result file" in named.output


def test_leaderboard_csv_quotes_text_a_spreadsheet_would_run(tmp_path):
    inputs = two_machines(tmp_path)
    for path in inputs.glob("*.csv"):
        path.write_text(path.read_text().replace(",m,", ",'@SUM(1+1),"))
    out = tmp_path / "out"
    assert runner.invoke(app, ["report", str(inputs), "--out", str(out)]).exit_code == 0
    assert "\n'@SUM(1+1)," in (out / "leaderboard.csv").read_text()


def test_every_series_gets_its_own_colour_and_marker():
    from rerank_bench.report.plots import latency_label, series_styles

    keys = [("model", f"backend-{i}") for i in range(13)]  # 13 series: more than ten colours
    styles = series_styles(keys)
    looks = {(s["color"], s["marker"]) for s in styles.values()}
    assert len(looks) == 13
    assert latency_label(False) == "per-query latency p95 (ms)" and "p50" in latency_label(True)


def test_two_hosts_of_one_kind_read_apart_with_their_speed_checks(tmp_path):
    """Both hosts call themselves "test machine": the fingerprint's first digits tell their rows apart in the
    leaderboard, and the machines table gives each one's own measured fp32 peak."""
    a = write_run(tmp_path / "in" / "a.csv", {(8, 20): lognormal(60, 50, seed=1)}, "runA", "aaaaaa11", peak=900.0)
    write_run(tmp_path / "in" / "b.csv", {(8, 20): lognormal(60, 40, seed=2)}, "runB", "bbbbbb22", peak=1400.0)
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", str(a.parent), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(e["machine"] for e in report["leaderboard"]) == ["test machine #aaaaaa", "test machine #bbbbbb"]
    board = (out / "leaderboard.md").read_text()
    assert "test machine #aaaaaa (cpu)" in board and "test machine #bbbbbb (cpu)" in board
    checks = {m["fingerprint"]: m["speed_check"] for m in report["machines"]}
    assert checks == {"aaaaaa11": "fp32 900 GFLOP/s (1 run)", "bbbbbb22": "fp32 1,400 GFLOP/s (1 run)"}
    filtered = runner.invoke(app, ["report", str(a.parent), "--out", str(out), "--filter", "hardware=test machine"])
    assert filtered.exit_code == 0, filtered.output  # filters still take the name


def test_served_levels_plot_at_their_offered_rate_in_rate_order_under_their_own_slo():
    import pandas as pd

    from rerank_bench.report.plots import _pyplot, _slo_lines, load_points

    # a capacity search's levels, in the order it ran them: the saturated one achieved far less than it offered
    levels = pd.DataFrame(
        {
            "load_mode": ["open", "open", "open", "closed"],
            "offered_rps": [30.0, 40.0, 35.0, float("nan")],
            "queries_per_s": [30.0, 4.8, 35.0, 38.0],
            "p95_ms": [200.0, float("nan"), 350.0, 500.0],
            "p50_ms": [100.0, 900.0, 150.0, 300.0],
            "slo_ms": [400.0, 400.0, 400.0, 3000.0],
            "slo_percentile": [95.0, 95.0, 95.0, float("nan")],
        }
    )
    assert load_points(levels) == [
        (30.0, 200.0, False),
        (35.0, 350.0, False),
        (38.0, 500.0, False),
        (40.0, 900.0, True),
    ]
    plt = _pyplot()
    fig, ax = plt.subplots()
    lines = _slo_lines(ax, levels)
    assert [line.get_label() for line in lines] == ["SLO p95 <= 400 ms (the rows')", "SLO p95 <= 3000 ms (the rows')"]
    assert [line.get_ydata()[0] for line in lines] == [400.0, 3000.0]
    plt.close(fig)
