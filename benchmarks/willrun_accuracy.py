"""will-it-run's latency estimates on this machine against what `sweep` measures.

1. sweep MiniLM-L6 (depths 20/50, batch 4/8/16) and TinyBERT-L2 (depths 50/100, batch 8/32), their
   random-weight twins (the real models' speed);
2. for each measured case, three estimates of its p50, none of which sees the case itself:
   - self-calibrated: `--hardware local` with no sweep rows, as a new user gets it (a few seconds of the
     model's forward pass here); its range must hold the measurement;
   - class defaults: the CPU class's efficiency/overhead range (what a profile of hardware not owned gets),
     against this machine's measured peak; its range must hold the measurement too;
   - calibrated (leave one out): on the other cases' rows only; target within 15%.
3. print each case and the shares.

Run: python benchmarks/willrun_accuracy.py        (about 3 minutes on 2 cores; check `uptime` first)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEPS = (
    ("minilm-l6", "20,50", "4,8,16"),
    ("tinybert-l2", "50,100", "8,32"),
)


def main() -> int:
    from rerank_bench.probe import probe_machine
    from rerank_bench.results.store import read_rows
    from rerank_bench.willrun.assess import LocalFacts, WillRunRequest, run_will_it_run
    from rerank_bench.willrun.calibration import local_peaks
    from rerank_bench.willrun.self_calibration import forward_probe

    folder = Path(tempfile.mkdtemp(prefix="rb-willrun-"))
    rows = []
    for model, depths, batches in SWEEPS:
        out = folder / f"{model}.csv"
        command = [sys.executable, "-m", "rerank_bench", "sweep", "-m", model, "--depth", depths]
        command += ["--batch-size", batches, "--max-seconds-per-case", "15", "-o", str(out)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        rows += [r for r in read_rows(out) if r["status"] == "ok" and r["p50_ms"]]
    machine = probe_machine()
    peaks = local_peaks(machine)
    probe = forward_probe(machine.cpu.usable_cores)
    probed: dict[str, object] = {}
    probe_s: dict[str, float] = {}

    def cached_probe(info, dtype, peak):  # one self-calibration per model, as one will-it-run call makes
        if info.name not in probed:
            started = time.perf_counter()
            probed[info.name] = probe(info, dtype, peak)
            probe_s[info.name] = time.perf_counter() - started
        return probed[info.name]

    print(f"machine: {machine.fingerprint}, fp32 matmul peak {peaks.get('fp32', 0):.0f} GFLOP/s")
    print(
        f"{'model':12} {'depth':>5} {'batch':>5} {'measured':>9} {'self-calibrated (range)':>28} {'in':>3} "
        f"{'class defaults (range)':>26} {'in':>3} {'calibrated LOO':>15}"
    )
    inside_self = inside_default = 0
    worst = 0.0
    errors_self = []
    for held in rows:
        common = dict(
            model=held["model"],
            hardware="local",
            depth=held["depth"],
            batch_size=str(held["batch_size"]),
            dtype="fp32",
        )
        request = WillRunRequest(**common)
        (own,) = run_will_it_run(request, machine, LocalFacts(peaks, [], cached_probe))
        (default,) = run_will_it_run(request, machine, LocalFacts(peaks, [], None))
        others = [r for r in rows if r["case_id"] != held["case_id"] or r["model"] != held["model"]]
        (fit,) = run_will_it_run(request, machine, LocalFacts(peaks, others, None))
        measured = held["p50_ms"]
        in_self = own.p50_ms_low <= measured <= own.p50_ms_high
        in_default = default.p50_ms_low <= measured <= default.p50_ms_high
        inside_self += in_self
        inside_default += in_default
        errors_self.append(own.p50_ms / measured - 1)
        fit_err = fit.p50_ms / measured - 1
        worst = max(worst, abs(fit_err))
        print(
            f"{held['model']:12} {held['depth']:>5} {held['batch_size']:>5} {measured:>6.0f} ms "
            f"{own.p50_ms:>7.0f} ({own.p50_ms_low:.0f}-{own.p50_ms_high:.0f}) {own.p50_ms / measured - 1:>+5.0%} "
            f"{'yes' if in_self else 'NO':>3} "
            f"{default.p50_ms:>7.0f} ({default.p50_ms_low:.0f}-{default.p50_ms_high:.0f}) "
            f"{'yes' if in_default else 'NO':>3} "
            f"{fit.p50_ms:>8.0f} {fit_err:>+6.0%}  [{own.source}; {fit.source}]"
        )
    n = len(rows)
    print(f"self-calibration time per model: {', '.join(f'{k} {v:.1f} s' for k, v in probe_s.items())}")
    print(
        f"self-calibrated error {min(errors_self):+.0%} to {max(errors_self):+.0%}; "
        f"inside its range: {inside_self}/{n} (target all)"
    )
    print(f"inside the class defaults' range: {inside_default}/{n}")
    print(f"largest calibrated (leave-one-out) error: {worst:.0%} (target 15%)")
    met = inside_self == n and inside_default == n and worst <= 0.15
    print("targets " + ("met" if met else "NOT met"))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
