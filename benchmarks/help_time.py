"""How long `rerank-bench --help` takes, and whether the help path imports heavy packages.

Target: under 0.4 s on the project's 2-core machine, with no torch, transformers or pandas imported.
Run: python benchmarks/help_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "transformers", "pandas", "sentence_transformers", "onnxruntime")


def time_command(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=True)  # warm the file cache once
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def heavy_imports(args: list[str]) -> list[str]:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom rerank_bench.cli import app\n"
        f"r = CliRunner().invoke(app, {args!r})\nassert r.exit_code == 0, r.output\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    return [m for m in out.split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    exe = shutil.which("rerank-bench")
    base = [exe] if exe else [sys.executable, "-m", "rerank_bench"]
    print(f"command: {' '.join(base)} ... ({runs} runs each, wall time of the whole process)")
    worst = 0.0
    for args in (["--help"], ["probe", "--help"], ["sweep", "--help"]):
        times = time_command(base + args, runs)
        median, p90 = statistics.median(times), sorted(times)[int(0.9 * (len(times) - 1))]
        worst = max(worst, median)
        print(
            f"{' '.join(args):<15} median {median * 1000:6.0f} ms   p90 {p90 * 1000:6.0f} ms   "
            f"min {min(times) * 1000:6.0f} ms"
            f"   heavy imports: {', '.join(heavy_imports(args)) or 'none'}"
        )
    print(f"target: median under 400 ms -> {'met' if worst < 0.4 else 'NOT met'} (worst median {worst * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
