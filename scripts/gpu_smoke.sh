#!/usr/bin/env bash
# Exercise the CUDA code paths for real, on a machine with an NVIDIA GPU and a CUDA build of torch.
# Usage: bash scripts/gpu_smoke.sh [model]   (default: minilm-l6; its random-weight twin when offline)
# Checks: probe sees the GPU through NVML with a CUDA index; a sweep on cuda measures, with peak memory from
# torch's allocator and NVML filled in; --device cuda:N beyond the last GPU is an environment error (exit 3).
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

echo "== a GPU that is not there"
set +e
rerank-bench sweep -m "$model" --device cuda:64 --depth 10 --batch-size 8 -o "$out/x.csv" 2> "$out/err.txt"
rc=$?
set -e
cat "$out/err.txt"
[ "$rc" -eq 3 ] || { echo "expected exit 3, got $rc"; exit 1; }
echo "gpu smoke: all checks passed"
