#!/usr/bin/env bash
# Serve a reranker with infinity (PyPI infinity-emb) on the CPU, from a local model folder, offline.
#
#   scripts/serve_infinity.sh FOLDER [PORT]      # builds the venv on first use, then serves on PORT (7997)
#   scripts/serve_infinity.sh --build-only       # only builds the venv (exit 3 if that cannot be done)
#
# infinity pins numpy<2, sentence-transformers<4, typer<0.13, rich<14 and transformers<=4.57, which cannot share
# an environment with rerank-bench, so it lives in its own virtual environment (which is how a server runs
# anyway). FOLDER must be loadable by transformers 4.x: `rerank-bench serve-folder MODEL OUT` writes one.
# Environment: INFINITY_VENV (default ${RERANK_BENCH_CACHE:-~/.cache/rerank-bench}/infinity-venv),
# INFINITY_VERSION (0.0.78), INFINITY_BATCH_SIZE (32, infinity's own default), TORCH_VERSION (2.13.0: the
# CPU wheel on the project's machines; elsewhere an unpinned torch pulls a CUDA build).
set -euo pipefail
VENV="${INFINITY_VENV:-${RERANK_BENCH_CACHE:-$HOME/.cache/rerank-bench}/infinity-venv}"
VERSION="${INFINITY_VERSION:-0.0.78}"
TORCH="${TORCH_VERSION:-2.13.0}"

build() {
  # A marker written last: a build cut short is rebuilt, never used half-installed.
  if [ -f "$VENV/.rerank-bench-complete" ]; then return 0; fi
  echo "serve_infinity: building $VENV (infinity-emb $VERSION, torch $TORCH); this takes a few minutes once" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  if ! "$VENV/bin/pip" install -q "infinity-emb[server,torch]==$VERSION" "torch==$TORCH" >&2; then
    echo "serve_infinity: could not install infinity-emb $VERSION into $VENV (see pip's output above)" >&2
    rm -rf "$VENV"
    exit 3
  fi
  touch "$VENV/.rerank-bench-complete"
}

if [ "${1:-}" = "--build-only" ]; then build; exit 0; fi
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: scripts/serve_infinity.sh FOLDER [PORT]: FOLDER must be a local model folder" >&2
  exit 2
fi
build
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 INFINITY_ANONYMOUS_USAGE_STATS=0 DO_NOT_TRACK=1
exec "$VENV/bin/infinity_emb" v2 --model-id "$1" --engine torch --device cpu --port "${2:-7997}" \
  --batch-size "${INFINITY_BATCH_SIZE:-32}" --no-model-warmup
