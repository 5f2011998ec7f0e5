#!/usr/bin/env bash
# The whole GPU check in one command, for a lent GPU machine where the package is not installed (a CUDA
# image's python3 with torch, transformers and sentence-transformers, no network): runs the checkout from
# src/ through a `rerank-bench` shim, then scripts/gpu_smoke.sh, then benchmarks/gpu_willrun.py.
# Usage: OUT=DIR bash scripts/gpu_check.sh   (what it measured lands in DIR: logs, JSON lines, the sweeps)
# Each part has its own time limit, so a hang in one still leaves the others' results in $OUT.
set -uo pipefail
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT" /tmp/rb-bin
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# No network there: without this, a hub id's lookups wait for their timeouts before the twin is used.
export HF_HUB_OFFLINE=1 RERANK_BENCH_CACHE=/tmp/rb-cache
printf '#!/bin/sh\nexec python3 -m rerank_bench "$@"\n' > /tmp/rb-bin/rerank-bench
chmod +x /tmp/rb-bin/rerank-bench
export PATH="/tmp/rb-bin:$PATH"

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import sys, torch, transformers, sentence_transformers as st; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'sentence-transformers', st.__version__)"
  nproc
  rerank-bench probe --json | python3 -c "import json, sys; r = json.load(sys.stdin); print(r['gpus'], r.get('gpu_reason'))"
} 2>&1 | tee "$OUT/env.txt"

echo "== scripts/gpu_smoke.sh" | tee "$OUT/smoke.log"
timeout "${SMOKE_S:-200}" bash scripts/gpu_smoke.sh 2>&1 | tee -a "$OUT/smoke.log"
echo "smoke exit ${PIPESTATUS[0]}" | tee -a "$OUT/smoke.log"

echo "== benchmarks/gpu_willrun.py" | tee "$OUT/gpu_willrun.log"
timeout "${BENCH_S:-330}" python3 benchmarks/gpu_willrun.py --out /tmp/gw --budget-s "${BENCH_START_S:-200}" \
  ${MODELS:+--models "$MODELS"} 2>&1 | tee -a "$OUT/gpu_willrun.log"
echo "gpu_willrun exit ${PIPESTATUS[0]}" | tee -a "$OUT/gpu_willrun.log"
cp /tmp/gw/gpu_willrun.jsonl "$OUT/" 2>/dev/null
tar czf "$OUT/sweeps.tgz" -C /tmp/gw sweeps 2>/dev/null
exit 0
