#!/usr/bin/env bash
# Exercise the CUDA code paths for real, on a machine with an NVIDIA GPU and a CUDA build of torch.
# Usage: bash scripts/gpu_smoke.sh [model]   (default: minilm-l6; its random-weight twin when offline)
# Checks: probe sees the GPU through NVML with a CUDA index; a sweep on cuda measures, with peak memory from
# torch's allocator and NVML filled in; fp16/bf16 rows (bf16 skipped below CC 8.0) with agreement vs fp32;
# will-it-run's predicted peak memory against torch.cuda.max_memory_reserved and NVML for the same batch
# and length; --device cuda:N beyond the last GPU is an environment error (exit 3).
set -euo pipefail
model="${1:-minilm-l6}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== probe"
rerank-bench probe --json > "$out/probe.json"
python3 - "$out/probe.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
gpus = report["gpus"]
assert gpus, f"no GPU found: {report['gpu_reason']}"
for g in gpus:
    print(f"GPU {g['index']}: {g['name']} {g['memory_total_mib']} MiB, CC {g['compute_capability']}, cuda:{g['cuda_index']}, notes {g['notes']}")
assert report["software"]["torch_cuda"], "torch is a CPU-only build"
PY

echo "== sweep on cuda"
rerank-bench sweep -m "$model" --device cuda --depth 20,100 --batch-size 16,64 --max-seconds-per-case 5 -o "$out/r.csv" --json > "$out/sweep.json"
python3 - "$out/sweep.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
for r in rows:
    print(f"{r['model']} batch {r['batch_size']} depth {r['depth']}: {r['status']} {r.get('pairs_per_s')} pairs/s, "
          f"p50 {r.get('p50_ms')} ms, allocated {r.get('peak_vram_allocated_mib')} MiB, reserved "
          f"{r.get('peak_vram_reserved_mib')} MiB, NVML {r.get('nvml_process_mib')} MiB, gpu {r.get('gpu_name')}")
ok = [r for r in rows if r["status"] == "ok"]
assert ok, "no case measured"
for r in ok:
    assert r["device"].startswith("cuda"), r["device"]
    assert r["peak_vram_allocated_mib"] and r["peak_vram_reserved_mib"], "torch peak memory missing"
    assert r["peak_vram_reserved_mib"] >= r["peak_vram_allocated_mib"]
    if r.get("nvml_process_mib") is not None:
        assert r["nvml_process_mib"] >= r["peak_vram_reserved_mib"] * 0.9, "NVML should see at least the allocator's memory"
print("sweep on cuda: ok")
PY

echo "== dtypes on cuda, with ranking agreement"
rerank-bench sweep -m "$model" --device cuda --dtype fp16,bf16 --order given,length --depth 50 --batch-size 32 \
  --max-seconds-per-case 5 -o "$out/d.csv" --json > "$out/dtypes.json"
python3 - "$out/dtypes.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
for r in rows:
    print(f"{r['dtype']} {r['order']}: {r['status']} {r.get('status_reason') or ''} {r.get('pairs_per_s')} pairs/s, "
          f"rho {r.get('agreement_spearman_mean')}, {r.get('gflop_per_s')} GFLOP/s = {r.get('fraction_of_peak')} of peak")
fp16 = [r for r in rows if r["dtype"] == "fp16" and r["status"] == "ok"]
assert fp16 and all(r.get("agreement_spearman_mean") is not None for r in fp16), "fp16 rows need agreement"
PY

echo "== will-it-run: predicted peak memory vs measured"
python3 - "$model" "$out" <<'PY'
import json, subprocess, sys
model, out = sys.argv[1], sys.argv[2]
batch, length = 32, 512
pred = json.loads(subprocess.check_output(["rerank-bench", "will-it-run", model, "--hardware", "local",
                                           "--batch-size", str(batch), "--max-length", str(length), "--json"]))[0]
import torch
from rerank_bench.models.resolve import resolve_model
from rerank_bench.backends import get_backend
from rerank_bench.workload.requests import Request
m = resolve_model(model, "auto", None, False, False, None)
scorer = get_backend("torch").load(m, "cuda:0", pred["dtype"], 1, length)
words = scorer.words()
doc = " ".join(words[i % len(words)] for i in range(length))
torch.cuda.reset_peak_memory_stats()
scorer.score(Request(query="a b c", documents=tuple([doc] * batch)), batch)
reserved = torch.cuda.max_memory_reserved() / 2**20
print(f"predicted peak {pred['peak_mib']:.0f} MiB (weights {pred['weights_mib']:.0f}) vs torch reserved {reserved:.0f} MiB")
from rerank_bench.probe.nvml import process_memory_mib
import os
nvml = process_memory_mib(os.getpid(), 0)
print(f"NVML process memory (context included): {nvml} MiB; will-it-run takes a 690 MiB context allowance off the GPU")
assert abs(pred["peak_mib"] - reserved) / reserved < 0.35, "predicted peak is far from torch's reserved memory"
PY

echo "== a GPU that is not there"
set +e
rerank-bench sweep -m "$model" --device cuda:64 --depth 10 --batch-size 8 -o "$out/x.csv" 2> "$out/err.txt"
rc=$?
set -e
cat "$out/err.txt"
[ "$rc" -eq 3 ] || { echo "expected exit 3, got $rc"; exit 1; }
echo "gpu smoke: all checks passed"
