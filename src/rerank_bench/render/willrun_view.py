"""Rich output for `will-it-run` and `profiles`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rerank_bench.common.vocab import FitVerdict
from rerank_bench.render.format import number
from rerank_bench.willrun.profiles import SHOWN_PEAKS

COLOURS = {FitVerdict.RUNS: "green", FitVerdict.TIGHT: "yellow", FitVerdict.TOO_SLOW: "red", FitVerdict.WONT_FIT: "red"}


def _ms(value: Any, low: Any, high: Any) -> str:
    if value is None:
        return "-"
    text = number(value, 0)
    if low is not None and high is not None:
        text += f" ({number(low, 0)}-{number(high, 0)})"
    return text


def _capacity(r: Any) -> str:
    if r.capacity_rps is None:
        return "-"
    text = f"{r.capacity_rps:.3g}/s"
    if r.capacity_rps_low and r.capacity_rps_high:
        text += f" ({r.capacity_rps_low:.3g}-{r.capacity_rps_high:.3g})"
    return text


def _with_range(value: float | None, span: tuple[float, float] | None) -> str:
    text = number(value, 0)
    return text if value is None or not span else f"{text} ({number(span[0], 0)}-{number(span[1], 0)})"


def render_rate_rows(rows: list[Any], console: Console) -> None:
    """--rate: one row per device with the simulated replica's capacity and what the rate needs."""
    table = Table(title=f"rerank-bench will-it-run --rate {rows[0].rate:g} (simulated serving replicas)")
    for name, right in (
        ("model", False),
        ("hardware", False),
        ("dtype", False),
        ("server", False),
        ("capacity / replica", True),
        ("replicas", True),
        ("p50 at rate", True),
        ("p95 at rate", True),
        ("utilisation", True),
        ("power W", True),
        ("$/hour", True),
        ("verdict", False),
    ):
        table.add_column(name, justify="right" if right else "left")
    for r in rows:
        replicas = "-" if r.replicas is None else str(r.replicas)
        if r.replicas is not None and r.replicas_central and r.replicas_central != r.replicas:
            replicas += f" ({r.replicas_central})"
        table.add_row(
            escape(r.model),
            escape(r.hardware),
            r.dtype,
            escape((r.server or "").split(" (")[0]),
            _capacity(r),
            replicas,
            number(r.p50_at_rate_ms, 0),
            _with_range(r.p95_at_rate_ms, r.p95_at_rate_range_ms),
            "-" if r.utilisation is None else f"{r.utilisation:.0%}",
            number(r.power_w, 0),
            number(r.cost_per_hour, 2),
            f"[{COLOURS[r.verdict]}]{r.verdict}[/]",
        )
    console.print(table)
    _lines(rows, console)
    servers = dict.fromkeys(r.server for r in rows if r.server)
    for server in servers:
        console.print(escape(f"server: {server}"), highlight=False)
    for r in rows:
        if r.server_setting_note:
            console.print(
                escape(f"server setting for {r.model} on {r.hardware}: {r.server_setting_note}"), highlight=False
            )
        for note in r.notes:
            if note.startswith("`endpoint --capacity`"):  # --as-endpoint
                console.print(escape(f"{r.model} on {r.hardware}: {note}"), highlight=False)
    console.print(
        "Capacity: the highest rate one replica holds within the budget, the median of 5 simulated arrival streams "
        "(range from the latency estimate's); replicas cover the range's slow end, in brackets what the central "
        "figure alone needs; p95 at rate: the mean of 5 runs (range: with the estimate's fast and slow costs). "
        "Cost is replicas x TDP unless a profile gives "
        "price_per_hour (no shipped profile does: prices are yours).",
        highlight=False,
    )


def _lines(rows: list[Any], console: Console) -> None:
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


def render_rows(rows: list[Any], console: Console) -> None:
    if rows and rows[0].rate is not None:
        render_rate_rows(rows, console)
        return
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
    _lines(rows, console)
    if rows:
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
        peaks = [number(p.peak_tflops.get(k), 1) for k in SHOWN_PEAKS]
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
