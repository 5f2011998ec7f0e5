"""Where rerank-bench keeps what it builds once and reuses: twins, exports, the matmul-peak cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`RERANK_BENCH_CACHE`, default ~/.cache/rerank-bench."""
    return Path(os.environ.get("RERANK_BENCH_CACHE", Path.home() / ".cache" / "rerank-bench"))
