"""How every terminal view writes a number: thousands separators, fixed digits, "-" for a missing value."""

from __future__ import annotations

from typing import Any


def number(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "-"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)
