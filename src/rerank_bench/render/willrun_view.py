"""Rich output for `will-it-run` and `profiles`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rerank_bench.render.format import number

COLOURS = {"RUNS": "green", "TIGHT": "yellow", "TOO SLOW": "red", "WON'T FIT": "red"}


def _ms(value: Any, low: Any, high: Any) -> str:
    if value is None:
        return "-"
    text = number(value, 0)
    if low is not None and high is not None:
        text += f" ({number(low, 0)}-{number(high, 0)})"
    return text


def render_rows(rows: list[Any], console: Console) -> None:
    table = Table(title="rerank-bench will-it-run")
    for name, right in (
        ("model", False),
        ("hardware", False),
        ("dtype", False),
        ("weights MiB", True),
        ("peak MiB", True),
        ("usable MiB", True),
        ("headroom MiB", True),
        ("max batch", True),
        ("batch", True),
        ("p50 ms", True),
        ("p95 ms", True),
        ("budget", True),
        ("source", False),
        ("verdict", False),
    ):
        table.add_column(name, justify="right" if right else "left")
    for r in rows:
        colour = COLOURS[r.verdict]
        table.add_row(
            escape(r.model),
            escape(r.hardware),
            r.dtype,
            number(r.weights_mib, 0),
            number(r.peak_mib, 0),
            number(r.memory_mib, 0),
            number(r.headroom_mib, 0),
            str(r.max_batch),
            str(r.batch_size),
            _ms(r.p50_ms, r.p50_ms_low, r.p50_ms_high),
            _ms(r.p95_ms, r.p95_ms_low, r.p95_ms_high),
            number(r.budget_ms, 0),
            r.source,
            f"[{colour}]{r.verdict}[/]",
        )
    console.print(table)
    for r in rows:
        line = f"{r.verdict} {r.model} on {r.hardware}: {r.reason}"
        if r.change:
            line += f". What would change it: {r.change}"
        console.print(escape(line), highlight=False)
    if rows:
        console.print(escape(f"memory: {rows[0].memory_note}"), highlight=False)
        notes = dict.fromkeys(r.latency_note for r in rows)
        for note in notes:
            console.print(escape(f"latency: {note}"), highlight=False)
        console.print("Ranges are the estimate's spread; figures without one were measured.", highlight=False)


def render_profiles(profiles: list[Any], console: Console) -> None:
    table = Table(title="hardware profiles (rerank-bench will-it-run --hardware NAME)")
    for name, right in (
        ("name", False),
        ("profile", False),
        ("kind", False),
        ("memory GiB", True),
        ("bandwidth GB/s", True),
        ("fp32", True),
        ("fp16", True),
        ("bf16", True),
        ("int8", True),
        ("TDP W", True),
    ):
        table.add_column(name, justify="right" if right else "left")
    for p in profiles:
        peaks = [number(p.peak_tflops.get(k), 1) for k in ("fp32", "fp16", "bf16", "int8")]
        table.add_row(
            escape(p.key),
            escape(p.name),
            p.kind,
            number(p.memory_gib, 0),
            number(p.memory_bandwidth_gbs, 0),
            *peaks,
            number(p.tdp_w, 0),
        )
    console.print(table)
    console.print(
        "Peaks are dense TFLOPS (TOPS for int8); each file under hardware_profiles/ names its sources.", highlight=False
    )
