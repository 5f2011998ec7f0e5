"""Arrival gaps of an open-loop load: what `endpoint` sends on and `will-it-run --rate` simulates, one
definition so that a measured level and a simulated one are offered the same kind of traffic."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path


def unit_gaps(count: int, seed: int | str, burstiness: float = 1.0) -> list[float]:
    """`count` inter-arrival gaps of mean 1, gamma distributed with shape `burstiness` (vLLM's definition: 1 is a
    Poisson process, below 1 burstier, above 1 more even), seeded. Every rate scales the same gaps by 1/rate
    (common random numbers), so two levels differ only by their rate."""
    if count < 0 or burstiness <= 0:
        raise ValueError("count must be at least 0 and burstiness positive")
    rng = random.Random(seed)
    return [rng.gammavariate(burstiness, 1.0 / burstiness) for _ in range(count)]


def read_trace(path: Path) -> list[float]:
    """Arrival timestamps in seconds from a file: one number per line, or JSON lines with `t` (seconds, or an
    ISO 8601 time as logs write it). Blank lines and lines starting with # are skipped. One line for the first
    thing wrong, naming the file and line."""
    from datetime import datetime

    from rerank_bench.errors import UsageError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--arrivals {path}: {exc.strerror or exc}", "give a file of timestamps") from None
    out: list[float] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("{"):
                value = json.loads(line)["t"]
                t = datetime.fromisoformat(value).timestamp() if isinstance(value, str) else float(value)
            else:
                t = float(line)
        except (ValueError, KeyError, TypeError):
            raise UsageError(
                f"--arrivals {path} line {number}: {line[:60]!r} is not a timestamp",
                'one number of seconds per line, or JSON lines with "t"',
            ) from None
        if not math.isfinite(t):
            raise UsageError(f"--arrivals {path} line {number}: {line[:60]!r} is not a finite timestamp")
        out.append(t)
    if len(out) < 2 or max(out) == min(out):
        raise UsageError(f"--arrivals {path} has fewer than two distinct timestamps", "a trace needs a span of time")
    return out
