"""A case's key: every setting that changes a measurement, and nothing that does not (no times, no run ids).

`compare` matches cases across runs by it, `--resume` skips cases whose key is already measured, and endpoint
rows carry one too; so it lives here, where every command can read it.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

KEY_FIELDS = (
    "model",
    "model_id",
    "revision",
    "weights",
    "backend",
    "dtype",
    "device",
    "batch_size",
    "depth",
    "max_length",
    "order",
    "attention",
    "prefix",
    "threads",
    "workload",
    "seed",
    # A served endpoint's load level (`rerank-bench endpoint` rows); empty for in-process cases.
    "endpoint",
    "api",
    "load_mode",
    "concurrency",
    "offered_rps",
    "burstiness",
)
# Key fields added after ids were first published: left out of the hash while empty, so a sweep case keeps the
# id it always had.
LATER_KEY_FIELDS = ("attention", "prefix", "endpoint", "api", "load_mode", "concurrency", "offered_rps", "burstiness")


def features_label(attention: Any, prefix: Any) -> str:
    """A case's speed features as they are shown after its order (" eager shared-prefix"); "" for none."""
    return "".join(f" {f}" for f in (attention, f"{prefix}-prefix" if prefix else "") if f)


def key_text(value: Any) -> str:
    """A key value as the result CSV writes it and reads it back (results/store.format_cell): None is empty,
    a float has seven significant digits (so 23.2145138 and the cell "23.21451" are one value, and 1.0 is
    "1"), text and integers as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.7g}" if math.isfinite(value) else ""
    return str(value)


def case_id_for(key: dict[str, Any]) -> str:
    """A short hash of a case key: the id a result row's own key columns reproduce, whether the row is the dict
    that was written or a line read back from the CSV (every value compared as its cell's text)."""
    later = {k: key_text(key[k]) for k in LATER_KEY_FIELDS if key.get(k) not in (None, "")}
    earlier = {k: key_text(key.get(k)) for k in KEY_FIELDS if k not in LATER_KEY_FIELDS}
    canonical = json.dumps({**earlier, **later}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
