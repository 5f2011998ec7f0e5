"""`rerank-bench compare`, `rerank-bench ab` and ab's hidden worker."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rerank_bench.cli.common import JsonOption, check_format, guarded, print_json, stderr, stdout

FormatOption = Annotated[
    str,
    typer.Option("--format", metavar="FORMAT", help="table or markdown (for a PR comment or $GITHUB_STEP_SUMMARY)."),
]
ThresholdOption = Annotated[
    str,
    typer.Option("--max-regression", metavar="PCT", help="Tolerated slowdown for throughput, p50 and p95, e.g. 5%."),
]
OverrideOption = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        metavar="METRIC=PCT",
        help="Per-metric override METRIC=PCT (throughput, p50, p95, memory; memory defaults to 10%).",
    ),
]
GithubOption = Annotated[
    Path | None,
    typer.Option(
        "--github-benchmark",
        metavar="FILE",
        help="Also write github-action-benchmark JSON (customSmallerIsBetter) to this file.",
    ),
]
InconclusiveOption = Annotated[
    bool, typer.Option("--fail-on-inconclusive", help="Exit 3 when a case cannot be decided.")
]


def _finish(comparison: Any, title: str, fmt: str, as_json: bool, github: Path | None, strict: bool) -> None:
    """Render the comparison, then say no once if the gate fails (exit 1), or cannot decide and must (exit 3)."""
    from rerank_bench.errors import EnvironmentProblem, GateFailed

    if github is not None:
        from rerank_bench.compare.baseline import github_benchmark_entries
        from rerank_bench.results.store import write_text

        write_text(github, json.dumps(github_benchmark_entries(comparison), indent=2) + "\n")
    if as_json:
        print_json(comparison.to_dict())
    elif fmt == "markdown":
        from rerank_bench.render.compare_view import render_markdown

        sys.stdout.write(render_markdown(comparison, title))
    else:
        from rerank_bench.render.compare_view import render_table

        render_table(comparison, stdout, title)
    counts = comparison.counts
    if counts["regressed"]:
        raise GateFailed(f"{counts['regressed']} case(s) regressed", label="regression")
    if counts["inconclusive"] and strict:
        raise EnvironmentProblem(f"{counts['inconclusive']} case(s) could not be decided", label="inconclusive")


@guarded
def compare(
    baseline: Annotated[
        list[Path],
        typer.Argument(help="Baseline result CSV(s) or folder(s); the last argument is CURRENT."),
    ],
    fmt: FormatOption = "table",
    max_regression: ThresholdOption = "5%",
    threshold: OverrideOption = None,
    ignore: Annotated[
        str,
        typer.Option(
            "--ignore",
            metavar="FIELD,...",
            help="Comma list of key fields to leave out when matching cases (e.g. revision,max_length).",
        ),
    ] = "",
    allow_different_hardware: Annotated[
        bool, typer.Option("--allow-different-hardware", help="Compare runs from different machines (said loudly).")
    ] = False,
    fail_on_inconclusive: InconclusiveOption = False,
    github_benchmark: GithubOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare a run against a baseline: per case and metric, the change with a bootstrap 95% interval from
    the raw samples, and a verdict. A regression needs the change to pass the threshold AND the interval to
    exclude no change. Exit 0 pass, 1 regression, 2 bad input, 3 inconclusive with --fail-on-inconclusive.

    Examples:

    \b
      rerank-bench compare results/main.csv results/pr.csv --format markdown >> "$GITHUB_STEP_SUMMARY"
    """
    from rerank_bench.compare.baseline import compare_files, parse_thresholds
    from rerank_bench.errors import UsageError

    if len(baseline) < 2:
        raise UsageError("compare needs BASELINE and CURRENT", "rerank-bench compare BASELINE.csv CURRENT.csv")
    check_format(fmt)
    thresholds = parse_thresholds(max_regression, threshold or [])
    ignored = tuple(f.strip() for f in ignore.split(",") if f.strip())
    comparison = compare_files(baseline[:-1], [baseline[-1]], thresholds, ignored, allow_different_hardware)
    _finish(comparison, "rerank-bench compare", fmt, as_json, github_benchmark, fail_on_inconclusive)


@guarded
def ab(
    ctx: typer.Context,
    a: Annotated[
        str, typer.Option("--a", metavar="ARGS", help="Sweep options of the baseline arm, as one string.")
    ] = "",
    b: Annotated[
        str, typer.Option("--b", metavar="ARGS", help="Sweep options of the candidate arm, as one string.")
    ] = "",
    a_cmd: Annotated[
        str | None,
        typer.Option(
            "--a-cmd", metavar="COMMAND", help="Command that runs rerank-bench for A (e.g. venv-a/bin/rerank-bench)."
        ),
    ] = None,
    b_cmd: Annotated[
        str | None, typer.Option("--b-cmd", metavar="COMMAND", help="Command that runs rerank-bench for B.")
    ] = None,
    reps: Annotated[
        int, typer.Option("--reps", metavar="N", help="Repetitions, each with fresh processes for A, A' and B.")
    ] = 3,
    seconds: Annotated[
        float,
        typer.Option("--seconds", metavar="SECONDS", help="Timed turns per repetition (at least 10 queries per arm)."),
    ] = 12.0,
    case_timeout: Annotated[
        float,
        typer.Option(
            "--case-timeout", metavar="SECONDS", help="Give up on a worker that does not answer for this many seconds."
        ),
    ] = 600.0,
    fmt: FormatOption = "table",
    max_regression: ThresholdOption = "5%",
    threshold: OverrideOption = None,
    fail_on_inconclusive: InconclusiveOption = False,
    github_benchmark: GithubOption = None,
    as_json: JsonOption = False,
) -> None:
    """A/B on this machine in one job: fresh processes for baseline (A), a second baseline (A', the A/A
    check) and candidate (B) take turns one query at a time on the same requests, so the machine's drift
    cancels; judged like `compare`, with the A/A noise floor. Options after the named ones are sweep
    options shared by both arms (a grid of several cases is compared case by case).

    Examples:

    \b
      rerank-bench ab --a "--max-length 256" --b "--max-length 512" -m minilm-l6 --depth 20 --batch-size 8
    """
    from rerank_bench.compare.ab import parse_arm, run_ab
    from rerank_bench.compare.baseline import parse_thresholds

    check_format(fmt)
    thresholds = parse_thresholds(max_regression, threshold or [])
    arm_a, arm_b = parse_arm("A", a_cmd, a), parse_arm("B", b_cmd, b)
    comparison = run_ab(
        arm_a,
        arm_b,
        list(ctx.args),
        reps,
        thresholds,
        seconds=seconds,
        timeout_s=case_timeout,
        progress=lambda m: stderr.print(m, highlight=False),
    )
    _finish(comparison, "rerank-bench ab", fmt, as_json, github_benchmark, fail_on_inconclusive)


def ab_worker() -> None:
    """Internal: one side of `ab`, driven query by query over stdin/stdout (JSON lines).

    Examples:

    \b
      (started by rerank-bench ab; not for direct use)
    """
    from rerank_bench.compare.ab_worker import serve

    serve(sys.stdin, sys.stdout)
