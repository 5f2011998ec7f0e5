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
    assert report["schema"] == "rerank-bench/probe" and report["schema_version"] == 2
    identity = report["cpu"]["identity"]  # an object, its fields named
    assert {"vendor", "family", "model", "stepping", "sockets", "caches"} <= set(identity)
    assert all({"level", "type", "size"} == set(c) for c in identity["caches"])
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
    # examples one to a line, each a whole command (not wrapped into the paragraph before it)
    examples = result.output.split("Examples:", 1)[1].split("\n\n", 2)[1].splitlines()
    assert examples and all(line.strip().startswith("rerank-bench ") or "started by" in line for line in examples)
    # option values named in words, not Python types
    assert (
        "<str>" not in result.output.split("Options:", 1)[1] and "<list[" not in result.output.split("Options:", 1)[1]
    )


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


def _defaults_of(command) -> dict:
    import inspect

    return {name: p.default for name, p in inspect.signature(command).parameters.items()}


def test_every_command_default_is_its_requests_default():
    """One definition of each default: the request dataclasses (sweep and tune build their options from them;
    will-it-run and endpoint import theirs only when run, to keep --help light, so their options are pinned here).
    A command option that maps to a request field has its default, as the comma list the option takes."""
    import dataclasses
    import inspect

    from rerank_bench.cli.endpoint import endpoint
    from rerank_bench.cli.sweep import sweep
    from rerank_bench.cli.tune import tune
    from rerank_bench.cli.willrun import will_it_run
    from rerank_bench.endpoint.run import EndpointRequest
    from rerank_bench.sweep.request import SweepRequest
    from rerank_bench.tune.request import TuneRequest
    from rerank_bench.willrun.assess import WillRunRequest

    def as_option(value):
        return ",".join(map(str, value)) if isinstance(value, tuple) else value

    # option name -> request field, where they differ; fields the option fills differently (None: computed)
    # are left out by name
    cases = [
        (sweep, SweepRequest(), {"depth": "depths", "backend": "backends", "dtype": "dtypes", "order": "orders"}),
        (tune, TuneRequest(model=""), {"backend": "backends", "dtype": "dtypes", "batch_size": "batch_sizes"}),
        (will_it_run, WillRunRequest(), {}),
        (endpoint, EndpointRequest(url=""), {"depth": "depths", "duration": "duration_s", "warmup": "warmup_requests"}),
    ]
    checked = 0
    for command, request, renamed in cases:
        fields = {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}
        for option, default in _defaults_of(command).items():
            field = renamed.get(option, option)
            if field not in fields or default in (None, inspect.Parameter.empty) or fields[field] in ((), None, ""):
                continue  # not a request field, an argument, or "not given" on either side
            assert default == as_option(fields[field]), (command.__name__, option, default, fields[field])
            checked += 1
    assert checked >= 30
