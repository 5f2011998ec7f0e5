import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app

runner = CliRunner()


def test_probe_prints_a_table():
    result = runner.invoke(app, ["probe"])
    assert result.exit_code == 0, result.output
    assert "fingerprint" in result.output
    assert "vector ISA" in result.output


def test_probe_json_has_the_documented_shape():
    result = runner.invoke(app, ["probe", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["schema"] == "rerank-bench/probe" and report["schema_version"] == 1
    for key in ("fingerprint", "cpu", "gpus", "gpu_reason", "mps", "software"):
        assert key in report
    assert report["cpu"]["usable_cores"] >= 1
    assert report["software"]["torch"]
    if not report["gpus"]:
        assert report["gpu_reason"]


def _commands():
    return [c.name or c.callback.__name__ for c in app.registered_commands]


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output


@pytest.mark.slow
def test_help_imports_no_heavy_package():
    code = (
        "import sys\n"
        "from rerank_bench.cli import app\n"
        "from typer.testing import CliRunner\n"
        "for args in (['--help'], ['probe', '--help'], ['sweep', '--help']):\n"
        "    r = CliRunner().invoke(app, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'transformers', 'pandas', 'sentence_transformers', 'onnxruntime')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.slow
def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "rerank_bench", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("rerank-bench ")


def test_sweep_help_states_the_default_batch_pruning_ratio_the_planner_uses():
    from rerank_bench.sweep.request import DEFAULT_PRUNE_RATIO

    result = runner.invoke(app, ["sweep", "--help"], env={"COLUMNS": "200"})
    assert f"below {DEFAULT_PRUNE_RATIO:.0%} of the best" in " ".join(result.output.split())
