"""A busy machine never passes silently: other processes' CPU share per case, and a peak never cached busy."""

import json
from types import SimpleNamespace

import pytest
from helpers import lognormal, set_first_row_cell, write_run
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.sweep.background import CpuSample, background_pct, sample


def test_background_share_by_hand():
    # 2 CPUs for 10 s = 20 CPU-seconds; the machine was busy 14 s of which the worker took 10: others 4 = 20%
    before = CpuSample(busy_s=100.0, own_s=50.0, wall_s=0.0, cpus=2)
    after = CpuSample(busy_s=114.0, own_s=60.0, wall_s=10.0, cpus=2)
    assert background_pct(before, after) == pytest.approx(20.0)
    idle = CpuSample(busy_s=110.0, own_s=60.0, wall_s=10.0, cpus=2)  # only the worker ran
    assert background_pct(before, idle) == 0.0
    assert background_pct(before, before) is None


def test_sample_counts_busy_time_without_idle_or_guest():
    times = SimpleNamespace(user=5.0, nice=1.0, system=2.0, idle=50.0, iowait=3.0, guest=4.0, guest_nice=0.5)
    times._fields = ("user", "nice", "system", "idle", "iowait", "guest", "guest_nice")
    fake = SimpleNamespace(
        cpu_times=lambda: times,
        Process=lambda: SimpleNamespace(cpu_times=lambda: SimpleNamespace(user=1.5, system=0.5)),
        cpu_count=lambda: 2,
    )
    taken = sample(fake, clock=lambda: 7.0)
    assert taken == CpuSample(busy_s=8.0, own_s=2.0, wall_s=7.0, cpus=2)


def test_a_peak_measured_on_a_busy_machine_is_returned_but_never_cached(tmp_path, monkeypatch):
    from rerank_bench.sweep.matmul_peak import cached_peak_gflops

    monkeypatch.setenv("RERANK_BENCH_CACHE", str(tmp_path))
    busy = cached_peak_gflops("fp", "cpu", 2, "fp32", measure=lambda: 85.0, load=lambda probe: (probe(), 55.0))
    assert busy == 85.0 and not (tmp_path / "matmul_peak.json").exists()
    quiet = cached_peak_gflops("fp", "cpu", 2, "fp32", measure=lambda: 190.0, load=lambda probe: (probe(), 1.0))
    assert quiet == 190.0
    again = cached_peak_gflops("fp", "cpu", 2, "fp32", measure=lambda: 1 / 0, load=lambda probe: (None, 0.0))
    assert again == 190.0  # served from the cache, not measured
    refreshed = cached_peak_gflops("fp", "cpu", 2, "fp32", refresh=True, measure=lambda: 200.0, load=lambda p: (p(), 0))
    assert refreshed == 200.0


def test_compare_flags_a_case_measured_beside_other_work(tmp_path):
    base = write_run(tmp_path / "base.csv", {(8, 10): lognormal(100, 50, seed=1)})
    cur = write_run(tmp_path / "cur.csv", {(8, 10): lognormal(100, 50, seed=2)})
    set_first_row_cell(cur, "background_cpu_pct", "48.5")
    result = CliRunner().invoke(app, ["compare", str(base), str(cur), "--json"])
    notes = json.loads(result.stdout)["notes"]
    assert any(n.startswith("BUSY MACHINE:") and "-, 48%" in n for n in notes), notes
