"""Apple MPS as torch sees it. Thin by design: this code path is exercised for real only on a Mac."""

from __future__ import annotations

import contextlib
from typing import Any

MIB = 1024**2


def probe_mps(torch_module: Any | None = None) -> dict[str, Any]:
    """{'available': bool, 'reason': str|None, 'recommended_max_memory_mib': float|None}."""
    if torch_module is None:
        try:
            import torch as torch_module
        except ImportError:
            return {"available": False, "reason": "torch not importable", "recommended_max_memory_mib": None}
    torch: Any = torch_module
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_built():
        return {
            "available": False,
            "reason": "this torch build has no MPS support (MPS is macOS only)",
            "recommended_max_memory_mib": None,
        }
    if not mps.is_available():
        return {
            "available": False,
            "reason": "MPS built but not available (needs macOS 12.3+ on Apple silicon)",
            "recommended_max_memory_mib": None,
        }
    recommended = None
    with contextlib.suppress(AttributeError, RuntimeError):
        # Unified memory: Metal's recommended working set is the share of RAM the GPU may use.
        recommended = round(torch.mps.recommended_max_memory() / MIB, 1)
    return {"available": True, "reason": None, "recommended_max_memory_mib": recommended}
