"""Parsing of the comma-list options every command shares (`--batch-size 8,16,32`, `--rate 0.5,1,2`)."""

from __future__ import annotations

from rerank_bench.errors import UsageError


def parse_int_list(text: str, option: str, minimum: int = 1) -> tuple[int, ...]:
    """A comma list of integers for a list-valued option, e.g. "8,16,32"."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise UsageError(
                f"{option} takes a comma list of integers, and {part!r} is not one", f"for example {option} 8,16,32"
            ) from None
        if value < minimum:
            raise UsageError(f"{option} values must be at least {minimum}, got {value}")
        values.append(value)
    if not values:
        raise UsageError(f"{option} needs at least one value")
    return tuple(dict.fromkeys(values))


def parse_float_list(text: str, option: str) -> tuple[float, ...]:
    """A comma list of positive numbers, e.g. "0.5,1,2"."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise UsageError(
                f"{option} takes a comma list of numbers, and {part!r} is not one", f"for example {option} 1,2,5"
            ) from None
        if not value > 0 or value == float("inf"):
            raise UsageError(f"{option} values must be positive, got {part}")
        values.append(value)
    if not values:
        raise UsageError(f"{option} needs at least one value")
    return tuple(dict.fromkeys(values))


def parse_str_list(text: str, option: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not values:
        raise UsageError(f"{option} needs at least one value")
    for value in values:
        if value not in choices:
            raise UsageError(f"{option} {value!r} is not one of {', '.join(choices)}")
    return values
