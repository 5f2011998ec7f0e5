#!/bin/bash
# Is infinity's open-loop p50 above its closed x1 p50 already at light rates (then it is not queueing)?
#
#     bash benchmarks/open_light_rates_infinity.sh [FOLDER] [ROUNDS]
#
# Serves FOLDER (default the TinyBERT-L2 twin that willrun_vs_infinity.py --measure writes) with infinity batch 8
# and, ROUNDS times (default 2): one client at a time for 15 s, then open-loop levels at 3, 10, 20 and 30
# requests a second, 400 requests each (depth 20, documents of 16-64 tokens). Rows go to
# results/open-light-rates.csv; printed: each level's p50 and the server's own mean time (Prometheus).
# 2026-12-04 09:24 (benchmarks/results/2026-12-04-open_light_rates_infinity-tinybert.txt): closed x1 p50 22-23
# ms, open 29-31 ms at 3, 10 and 20/s and 31-32 ms at 30/s: a request that finds the server idle waits more.
set -euo pipefail
cd "$(dirname "$0")/.."
folder=${1:-/tmp/rerank-bench-serve-tinybert-l2}
rounds=${2:-2}
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
out=results/open-light-rates.csv
rm -f "$out" "${out%.csv}.samples.jsonl"
echo "uptime: $(uptime)"
INFINITY_BATCH_SIZE=8 nice -n 5 bash scripts/serve_infinity.sh "$folder" "$port" > /dev/null 2>&1 &
server=$!
trap 'kill $server 2> /dev/null || true' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port/models" > /dev/null && break; sleep 1; done
url="http://127.0.0.1:$port"
for _ in $(seq "$rounds"); do
    rerank-bench endpoint "$url" --api infinity --depth 20 --doc-tokens 16:64 --concurrency 1 --duration 15 -o "$out" > /dev/null
    rerank-bench endpoint "$url" --api infinity --depth 20 --doc-tokens 16:64 --rate 3,10,20,30 --requests 400 \
        --warmup-s 5 -o "$out" > /dev/null
done
python - "$out" << 'PY'
import sys
from pathlib import Path

from rerank_bench.results.store import read_rows

for r in read_rows(Path(sys.argv[1])):
    load = f"closed x{r['concurrency']}" if r["load_mode"] == "closed" else f"open {r['offered_rps']:g}/s"
    print(f"{load:>12}: p50 {r['p50_ms']:5.1f} ms, server mean {r['server_mean_ms'] or 0:5.1f} ms")
PY
echo "uptime: $(uptime)"
