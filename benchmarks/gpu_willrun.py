"""will-it-run on a GPU: predicted peak memory and p50 against what `sweep` measures on that GPU.

Needs an NVIDIA GPU and a CUDA build of torch (the machine scripts/gpu_smoke.sh runs on). For each case (model,
dtype, batch, length; every document as long as the length, so each batch is batch x length tokens):
1. `sweep --weights random --device cuda`: p50, pairs/s, peak memory from torch's allocator and from NVML
   (random weights: the trained model's speed and memory);
2. `will-it-run --hardware PROFILE` with no results: the memory and p50 (with its range) a buyer of this GPU
   gets from the shipped profile alone (PROFILE: the one matching the GPU, e.g. h200);
3. `will-it-run --hardware local` with the other models' rows from this GPU as results: the p50 calibrated on
   this GPU without the model itself (leave one model out).
It prints one line per case and writes every row and prediction as JSON lines to --out.

Run: python benchmarks/gpu_willrun.py --out DIR [--models a,b] [--budget-s 300]
     (about 4 minutes on an H200 for the default cases; the device tool's run in scripts/gpu_check.sh)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# (catalog alias, dtype, batch, max length, depth): each family will-it-run models, at lengths where the
# activations are a real share of the memory. Depths kept small for the multi-billion decoders, whose
# agreement reference (fp32, 8 requests) is the slow part of their sweep.
CASES = (
    ("minilm-l6", "fp16", 32, 512, 100),
    ("bge-reranker-v2-m3", "fp16", 32, 1024, 50),
    ("mxbai-rerank-large-v1", "fp16", 32, 512, 50),
    ("gte-reranker-modernbert-base", "bf16", 32, 1024, 50),
    ("qwen3-reranker-0.6b", "bf16", 32, 1024, 50),
    ("bge-reranker-v2-gemma", "bf16", 16, 1024, 20),
    ("qwen3-reranker-4b", "bf16", 16, 1024, 20),
)
ROW_FIELDS = (
    "status",
    "status_reason",
    "p50_ms",
    "p95_ms",
    "pairs_per_s",
    "peak_vram_allocated_mib",
    "peak_vram_reserved_mib",
    "nvml_process_mib",
    "agreement_spearman_mean",
    "gpu_name",
    "weights",
)
PREDICTION_FIELDS = (
    "peak_mib",
    "weights_mib",
    "p50_ms",
    "p50_ms_low",
    "p50_ms_high",
    "source",
    "latency_note",
    "verdict",
)


def rerank_bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rerank_bench", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def sweep(case: tuple[str, str, int, int, int], folder: Path, device: str) -> dict[str, object]:
    model, dtype, batch, length, depth = case
    folder.mkdir(parents=True, exist_ok=True)
    args = ["sweep", "-m", model, "--weights", "random", "--device", device, "--dtype", dtype]
    args += ["--batch-size", str(batch), "--depth", str(depth), "--max-length", str(length)]
    args += ["--doc-tokens", str(length), "--max-seconds-per-case", "4", "-o", str(folder / "r.csv"), "--json"]
    started = time.perf_counter()
    done = rerank_bench(*args, timeout=600)
    out: dict[str, object] = {"sweep_s": round(time.perf_counter() - started, 1), "exit": done.returncode}
    try:
        rows = [r for r in json.loads(done.stdout)["rows"] if r.get("dtype") == dtype]
        out.update({k: rows[-1].get(k) for k in ROW_FIELDS})
    except (ValueError, KeyError, IndexError):
        out["error"] = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return out


def predict(case: tuple[str, str, int, int, int], hardware: str, results: list[Path]) -> dict[str, object]:
    model, dtype, batch, length, depth = case
    args = ["will-it-run", model, "--hardware", hardware, "--dtype", dtype, "--batch-size", str(batch)]
    args += ["--depth", str(depth), "--max-length", str(length), "--doc-tokens", str(length), "--json"]
    for path in results:
        args += ["--results", str(path)]
    done = rerank_bench(*args, timeout=300)
    try:
        row = json.loads(done.stdout)[0]
    except (ValueError, KeyError, IndexError):
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-3:]}
    return {k: row.get(k) for k in PREDICTION_FIELDS}


def pct(predicted: object, measured: object) -> str:
    if not isinstance(predicted, int | float) or not isinstance(measured, int | float) or not measured:
        return "   -"
    return f"{(predicted / measured - 1) * 100:+4.0f}%"


def calibrated_offline(case: tuple[str, str, int, int, int], profile_key: str, csvs: list[Path]) -> dict[str, object]:
    """--replay: what `will-it-run --hardware local` on that GPU answers, from its saved rows, on any machine:
    the profile standing in for the GPU (`local`), the latency model calibrated on the rows given."""
    import dataclasses

    from rerank_bench.results.store import read_rows
    from rerank_bench.willrun.assess import best_prediction, choose_rates
    from rerank_bench.willrun.latency_model import request_lengths
    from rerank_bench.willrun.model_info import load_model_info
    from rerank_bench.willrun.profiles import load_profiles

    model, dtype, batch, length, depth = case
    profile = dataclasses.replace(load_profiles()[profile_key], key="local")
    rows = [r for path in csvs for r in read_rows(path) if r.get("status") == "ok" and r.get("backend") == "torch"]
    info = load_model_info(model, length)
    rates = choose_rates(info, profile, rows, dtype, None)
    requests = request_lengths(depth, str(length), info.max_length, info.specials)
    _, prediction = best_prediction(info, requests, [batch], dtype, rates)
    return {
        "p50_ms": prediction.p50_ms,
        "p50_ms_low": prediction.p50_low_ms,
        "p50_ms_high": prediction.p50_high_ms,
        "source": rates.source,
        "latency_note": rates.note,
    }


def show(case: tuple[str, str, int, int, int], row: dict, from_profile: dict, calibrated: dict) -> None:
    p50 = row.get("p50_ms")
    low, high = from_profile.get("p50_ms_low"), from_profile.get("p50_ms_high")
    span = f"{from_profile.get('p50_ms') or 0:8.1f} ({low or 0:.1f}-{high or 0:.1f})"

    def holds(prediction: dict) -> str:
        low, high = prediction.get("p50_ms_low"), prediction.get("p50_ms_high")
        return "yes" if isinstance(p50, int | float) and low and high and low <= p50 <= high else "no"

    reserved, nvml = row.get("peak_vram_reserved_mib"), row.get("nvml_process_mib")
    context = nvml - reserved if isinstance(nvml, int | float) and isinstance(reserved, int | float) else None
    model, dtype, batch, length, depth = case
    print(
        f"{model:30} {dtype:5} {batch:3} {length:5} {depth:4} | "
        f"{p50 if isinstance(p50, int | float) else 0:8.1f} {span:>26} {pct(from_profile.get('p50_ms'), p50)} "
        f"{holds(from_profile):>3} {calibrated.get('p50_ms') or 0:10.1f} {pct(calibrated.get('p50_ms'), p50)} "
        f"{holds(calibrated):>3} | "
        f"{reserved or 0:8.0f} {nvml or 0:6.0f} {from_profile.get('peak_mib') or 0:9.0f} "
        f"{pct(from_profile.get('peak_mib'), reserved)} {context or 0:5.0f}"
    )
    for what, prediction in (("profile", from_profile), ("calibrated", calibrated)):
        if "error" in prediction:
            print(f"  {what}: {prediction['error']}")
    if row.get("status") != "ok":
        print(f"  sweep: {row.get('status')} {row.get('status_reason') or row.get('error')}")


HEADER = (
    f"{'model':30} {'dtype':5} {'B':>3} {'L':>5} {'D':>4} | {'p50 ms':>8} {'profile (range)':>26} {'off':>5} "
    f"{'in':>3} {'calibrated':>10} {'off':>5} {'in':>3} | "
    f"{'reserved':>8} {'NVML':>6} {'predicted':>9} {'off':>5} {'ctx':>5}"
)


def replay(options: argparse.Namespace) -> int:
    """Predictions of today's code against measurements a GPU run saved: the profile's by the CLI, the
    calibrated ones offline (leave one model out, over the sweeps given)."""
    measured: dict[str, tuple[tuple[str, str, int, int, int], dict]] = {}
    for path in options.replay:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if "measured" in entry:
                measured[entry["case"][0]] = (tuple(entry["case"]), entry["measured"])
    empty = Path(__import__("tempfile").mkdtemp())
    csvs = {p.parent.name: p for folder in options.sweeps for p in folder.glob("*/r.csv")}
    print(HEADER)
    for model, (case, row) in measured.items():
        from_profile = predict(case, options.profile, [empty])
        others = [p for m, p in csvs.items() if m != model]
        calibrated = calibrated_offline(case, options.profile, others) if others else {}
        show(case, row, from_profile, calibrated)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--models", default="", help="comma list of the CASES' aliases (default: all)")
    parser.add_argument("--budget-s", type=float, default=300.0, help="start no sweep after this many seconds")
    parser.add_argument("--profile", default="h200", help="the shipped profile of this GPU")
    parser.add_argument("--device", default="cuda", help="cuda (cpu only to try this script's own flow)")
    parser.add_argument("--dtype", default="", help="every case at this dtype instead of its own")
    parser.add_argument("--replay", type=Path, action="append", help="a gpu_willrun.jsonl of a GPU run: predict again")
    parser.add_argument("--sweeps", type=Path, action="append", default=[], help="with --replay: its sweeps folder")
    options = parser.parse_args()
    if options.replay:
        return replay(options)
    if options.out is None:
        parser.error("--out DIR is needed to measure")
    wanted = set(filter(None, options.models.split(",")))
    cases = [(m, options.dtype or d, b, n, k) for m, d, b, n, k in CASES if not wanted or m in wanted]
    options.out.mkdir(parents=True, exist_ok=True)
    sweeps = options.out / "sweeps"
    empty = options.out / "no-results"
    empty.mkdir(exist_ok=True)
    log = (options.out / "gpu_willrun.jsonl").open("a")
    started = time.monotonic()
    measured: dict[str, dict[str, object]] = {}
    for case in cases:
        if time.monotonic() - started > options.budget_s:
            print(f"{case[0]}: not started, past --budget-s {options.budget_s:.0f}", file=sys.stderr, flush=True)
            continue
        print(f"{case[0]}: sweeping {case[1:]}", file=sys.stderr, flush=True)
        row = sweep(case, sweeps / case[0], options.device)
        measured[case[0]] = row
        log.write(json.dumps({"case": case, "measured": row}) + "\n")
        log.flush()
        print(f"  {row}", file=sys.stderr, flush=True)
    print(HEADER)
    from concurrent.futures import ThreadPoolExecutor

    done = [c for c in cases if c[0] in measured]
    with ThreadPoolExecutor(max_workers=8) as pool:  # each a subprocess; the GPU is idle by now
        profiled = {c[0]: pool.submit(predict, c, options.profile, [empty]) for c in done}
        calibrating = {
            c[0]: pool.submit(
                predict,
                c,
                "local",
                [sweeps / m / "r.csv" for m, r in measured.items() if m != c[0] and r.get("status") == "ok"],
            )
            for c in done
            if any(m != c[0] and r.get("status") == "ok" for m, r in measured.items())
        }
    for case in done:
        row = measured[case[0]]
        from_profile = profiled[case[0]].result()
        calibrated = calibrating[case[0]].result() if case[0] in calibrating else {}
        log.write(json.dumps({"case": case, "profile": from_profile, "calibrated": calibrated}) + "\n")
        log.flush()
        show(case, row, from_profile, calibrated)
    print(f"total {time.monotonic() - started:.0f} s; {os.environ.get('CUDA_VISIBLE_DEVICES', 'all GPUs')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
