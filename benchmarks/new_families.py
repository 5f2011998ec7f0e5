"""The newer reranker families on this machine and on GPUs it does not have.

1. will-it-run for the decoder rerankers (Qwen3-Reranker-0.6B, -4B and -8B, bge-reranker-v2-gemma,
   mxbai-rerank-base-v2 and -large-v2) on the shipped 16, 24, 48 and 80 GB GPU profiles at depth 50 and 1,024
   tokens a pair: weights, peak, the largest batch that fits, the batch chosen, p95 and the verdict (estimated:
   no GPU here).
2. Memory of each new catalog model (DeBERTa-v3, ModernBERT, the decoders) at batch 1, 8 and 32 and length
   512 and 1,024, from the memory model, next to the fake-tensor tracker's count of the same forward on two
   layers scaled to the model's depth (activations are per layer: the tracker builds two layers, the model
   holds one layer's at a time, so the count is the model's).
3. --measure: `sweep --weights random` of each new encoder family at depth 10 and 20 on this CPU (pairs/s,
   p50, peak memory, tokens per pair), the DeBERTa twin also through onnx and openvino.
4. --measure-large: the same sweep of Qwen3-Reranker-0.6B (torch fp32, the template's tokens in every pair)
   and bge-reranker-v2-m3 at depth 10 and 20 and of mxbai-rerank-base-v2 at depth 10, then
   Qwen3-Reranker-0.6B's speed features at depth 10, each beside the plain fp32 case: bf16 (native on AVX-512
   BF16 / AMX CPUs), the shared prompt prefix, eager attention. Ranking agreement is not scored here (random
   weights: it would mean nothing, and the reference pass of a 0.6B model costs minutes); the shared prefix's
   equal scores are a unit test (tests/test_families.py).

Run: python benchmarks/new_families.py [--measure] [--measure-large] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from rerank_bench.catalog import load_catalog

DECODERS = tuple(m.alias for m in load_catalog() if m.causal)  # the decoder rerankers, as the catalog has them
PROFILES = ("t4", "l4", "l40s", "a100-80gb")  # 16, 24, 48 and 80 GB
NEW = ("mxbai-rerank-xsmall-v1", "mxbai-rerank-base-v1", "mxbai-rerank-large-v1", "gte-reranker-modernbert-base")


def will_it_run(model: str, profile: str) -> dict:
    argv = [sys.executable, "-m", "rerank_bench", "will-it-run", model, "--hardware", profile]
    argv += ["--depth", "50", "--max-length", "1024", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return json.loads(done.stdout)[0]


def verdicts() -> None:
    print("## will-it-run: decoder rerankers, depth 50, 1,024 tokens a pair (estimated)\n")
    print("| model | GPU | dtype | weights MiB | peak MiB | usable MiB | max batch | batch | p95 ms | verdict |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for model in DECODERS:
        for profile in PROFILES:
            r = will_it_run(model, profile)
            p95 = f"{r['p95_ms']:,.0f}" if r.get("p95_ms") else "-"
            print(
                f"| {model} | {r['hardware']} | {r['dtype']} | {r['weights_mib']:,.0f} | {r['peak_mib']:,.0f} | "
                f"{r['memory_mib']:,.0f} | {r['max_batch']} | {r.get('batch_size') or '-'} | {p95} | "
                f"{r['verdict']} |"
            )


def tracked_mib(model: str, batch: int, length: int) -> tuple[float, float]:
    """(memory model's activations, the tracker's) in MiB for the model's layer shape at fp32."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification
    from transformers.initialization import no_init_weights

    from rerank_bench.catalog import find_model
    from rerank_bench.willrun.memory_model import activation_bytes, arch_shape

    entry = find_model(model)
    values = {**entry.config_dict(), "num_hidden_layers": 2}
    config = AutoConfig.for_model(entry.model_type, **{k: v for k, v in values.items() if k != "model_type"})
    config._attn_implementation = "eager" if entry.model_type == "deberta-v2" else "sdpa"
    builder = AutoModelForCausalLM if entry.causal else AutoModelForSequenceClassification
    extra = {"logits_to_keep": 1, "use_cache": False} if entry.causal else {}
    with FakeTensorMode(), no_init_weights():
        built = builder.from_config(config).eval()
        ids = torch.zeros((batch, length), dtype=torch.long)
        mask = torch.ones((batch, length), dtype=torch.long)
        tracker = MemTracker()
        tracker.track_external(built)
        with tracker, torch.no_grad():
            built(input_ids=ids, attention_mask=mask, **extra)
        (peaks,) = tracker.get_tracker_snapshot("peak").values()
    tracked = next(v for k, v in peaks.items() if "ACT" in str(k))
    shape = arch_shape(config, causal=entry.causal)
    return activation_bytes(shape, batch, length, "fp32", config._attn_implementation) / 2**20, tracked / 2**20


def memory_table() -> None:
    print("\n## Activation memory, fp32: memory model against the fake-tensor tracker (MiB)\n")
    print("| model | batch | length | modelled | tracked | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for model in (*NEW, *DECODERS):
        for length in (512, 1024):
            if length > 512 and model.startswith("mxbai") and model.endswith("-v1"):
                continue  # DeBERTa-v3 takes 512 tokens
            for batch in (1, 8, 32):
                if batch == 32 and "8b" in model:
                    continue  # the tracker's own bookkeeping of 32 x 1,024 x 4,096 is slow; 8 shows the fit
                modelled, tracked = tracked_mib(model, batch, length)
                print(f"| {model} | {batch} | {length} | {modelled:,.0f} | {tracked:,.0f} | {modelled / tracked:.3f} |")


def measure(seconds: float) -> None:
    print("\n## Measured here: sweep --weights random (see the CSV for every column)\n", flush=True)
    argv = [sys.executable, "-m", "rerank_bench", "sweep", "-m", ",".join(NEW[:2] + NEW[3:])]
    argv += ["--weights", "random", "--depth", "10,20", "--batch-size", "10", "--max-seconds-per-case", str(seconds)]
    argv += ["-o", "benchmarks/results/new_families.csv"]
    subprocess.run(argv, check=False)
    argv = [sys.executable, "-m", "rerank_bench", "sweep", "-m", NEW[0], "--weights", "random", "--depth", "20"]
    argv += ["--backend", "torch,onnx,openvino", "--batch-size", "10", "--max-seconds-per-case", str(seconds)]
    argv += ["-o", "benchmarks/results/new_families_deberta_backends.csv"]
    subprocess.run(argv, check=False)


def _sweep_without_agreement(request, csv: str) -> None:
    """One sweep through the library, as `sweep` runs it, with the agreement pass off (see the docstring)."""
    import dataclasses
    from pathlib import Path

    from rich.console import Console

    from rerank_bench.probe import probe_machine
    from rerank_bench.render.sweep_view import ProgressEvents
    from rerank_bench.sweep.planner import plan_sweep
    from rerank_bench.sweep.scheduler import run_sweep

    request = dataclasses.replace(request, output=Path(csv))
    machine = probe_machine(use_torch=True)
    plan = dataclasses.replace(plan_sweep(request, machine), agreement=False)
    with ProgressEvents(Console(stderr=True), len(plan.to_run())) as events:
        run_sweep(plan, machine, request.settings, events)


def measure_large(seconds: float) -> None:
    from rerank_bench.sweep.request import SweepRequest
    from rerank_bench.sweep.timing import MeasureSettings

    settings = MeasureSettings(max_seconds=seconds)
    common = dict(weights="random", batch_sizes=(10,), settings=settings)
    csv = "benchmarks/results/new_families_large.csv"
    _sweep_without_agreement(
        SweepRequest(models=("qwen3-reranker-0.6b", "bge-reranker-v2-m3"), depths=(10, 20), **common), csv
    )
    _sweep_without_agreement(SweepRequest(models=("mxbai-rerank-base-v2",), depths=(10,), **common), csv)
    for features in (
        dict(dtypes=("bf16",)),
        dict(prefixes=("shared",)),
        dict(attentions=("eager",)),
    ):
        _sweep_without_agreement(SweepRequest(models=("qwen3-reranker-0.6b",), depths=(10,), **common, **features), csv)
    print_table(csv)


def print_table(csv: str) -> None:
    """The measured rows as a table: speed, latency, tokens per pair (the template's included) and memory."""
    from pathlib import Path

    from rerank_bench.common.case_key import features_label
    from rerank_bench.results.store import read_rows

    print(f"\n## Measured here: sweep --weights random, batch 10 ({csv})\n")
    head = "model | dtype | features | depth | pairs/s | p50 ms | queries | tokens/pair mean (p95) | GFLOP/s"
    print(f"| {head} | of peak | peak RSS MiB | CPU |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in read_rows(Path(csv)):
        if r["status"] != "ok":
            print(f"| {r['model']} | {r['dtype']} | | {r['depth']} | {r['status']}: {r['status_reason']} |")
            continue
        features = features_label(r.get("attention"), r.get("prefix")).strip() or "-"
        peak = f"{r['fraction_of_peak']:.0%}" if r.get("fraction_of_peak") else "-"
        print(
            f"| {r['model']} | {r['dtype']} | {features} | {r['depth']} | {r['pairs_per_s']:.2f} | "
            f"{r['p50_ms']:,.0f} | {r['n_queries']} | {r['pair_tokens_mean']:.0f} ({r['pair_tokens_p95']:.0f}) | "
            f"{r['gflop_per_s']:.1f} | {peak} | {r['peak_rss_mib']:,.0f} | {r['cpu_isa']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", action="store_true", help="also measure the encoder twins here (minutes)")
    parser.add_argument("--measure-large", action="store_true", help="Qwen3-Reranker-0.6B and bge-reranker-v2-m3")
    parser.add_argument("--seconds", type=float, default=10.0, help="--max-seconds-per-case of the sweeps")
    parser.add_argument("--skip-estimates", action="store_true", help="measure only (no verdict or memory tables)")
    parser.add_argument("--table", metavar="CSV", help="print the measured table of a --measure-large CSV")
    args = parser.parse_args()
    if not args.skip_estimates:
        verdicts()
        memory_table()
    if args.measure:
        measure(args.seconds)
    if args.measure_large:
        measure_large(args.seconds)
    elif args.table:
        print_table(args.table)


if __name__ == "__main__":
    main()
