"""Output of `compare` and `ab`: a Rich table, or Markdown for a pull-request comment."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rerank_bench.compare.baseline import Comparison, MetricResult

MARK = {
    "regressed": "❌ regressed",
    "improved": "✅ improved",
    "unchanged": "unchanged",
    "inconclusive": "❔ inconclusive",
    "n/a": "n/a",
}


def _ratio(m: MetricResult) -> str:
    if m.ratio is None:
        return "-"
    text = f"{(m.ratio - 1) * 100:+.1f}%"
    if m.low is not None and m.high is not None:
        text += f" [{(m.low - 1) * 100:+.1f}%, {(m.high - 1) * 100:+.1f}%]"
    return text


def _value(m: MetricResult, which: float | None) -> str:
    if which is None:
        return "-"
    return f"{which:.4f}" if m.metric == "ndcg@10" else f"{which:,.1f}"


def render_table(comparison: Comparison, console: Console, title: str) -> None:
    for note in comparison.notes:
        style = "bold red" if note.startswith(("DIFFERENT HARDWARE", "DIFFERENT SPEED", "BUSY MACHINE")) else "yellow"
        console.print(f"[{style}]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    table = Table(title=title)
    for name, right in (
        ("case", False),
        ("metric", False),
        ("baseline", True),
        ("current", True),
        ("change [95% CI]", True),
        ("threshold", True),
        ("verdict", False),
    ):
        table.add_column(name, justify="right" if right else "left")
    for case in comparison.cases:
        label = case.label + (f"\nA/A noise ±{case.noise * 100:.1f}%" if case.noise is not None else "")
        for i, m in enumerate(case.metrics):
            verdict = MARK.get(m.verdict, m.verdict) + (f" ({m.note})" if m.verdict == "n/a" and m.note else "")
            table.add_row(
                label if i == 0 else "",
                m.metric,
                _value(m, m.baseline),
                _value(m, m.current),
                _ratio(m),
                f"{m.threshold * 100:.0f}%",
                verdict,
            )
        table.add_row("", "[bold]case[/]", "", "", "", "", f"[bold]{MARK[case.verdict]}[/]", end_section=True)
    console.print(table)
    _unmatched(comparison, console.print)
    counts = comparison.counts
    console.print(", ".join(f"{n} {v}" for v, n in counts.items()), highlight=False)


def _unmatched(comparison: Comparison, emit: object) -> None:
    for label in comparison.only_in_baseline:
        emit(f"only in baseline (not compared): {label}")  # type: ignore[operator]
    for label in comparison.only_in_current:
        emit(f"only in current (not compared): {label}")  # type: ignore[operator]


def render_markdown(comparison: Comparison, title: str) -> str:
    counts = comparison.counts
    lines = [f"## {title}", ""]
    headline = (
        "❌ **regression**"
        if counts["regressed"]
        else "❔ **inconclusive**"
        if counts["inconclusive"]
        else "✅ **no regression**"
    )
    lines.append(f"{headline}: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    lines.append("")
    for note in comparison.notes:
        lines.append(f"> {note}")
    if comparison.notes:
        lines.append("")
    lines.append("| case | metric | baseline | current | change [95% CI] | threshold | verdict |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for case in comparison.cases:
        label = case.label + (f" (A/A noise ±{case.noise * 100:.1f}%)" if case.noise is not None else "")
        for i, m in enumerate(case.metrics):
            lines.append(
                f"| {label if i == 0 else ''} | {m.metric} | {_value(m, m.baseline)} | {_value(m, m.current)} | "
                f"{_ratio(m)} | {m.threshold * 100:.0f}% | {MARK.get(m.verdict, m.verdict)} |"
            )
    unmatched: list[str] = []
    _unmatched(comparison, unmatched.append)
    if unmatched:
        lines.append("")
        lines.extend(f"- {u}" for u in unmatched)
    lines.append("")
    lines.append(
        "A regression needs the change to pass the threshold and its bootstrap 95% interval to exclude no change."
    )
    return "\n".join(lines) + "\n"
