"""The command line. Each command parses, calls one library function, renders, and maps errors to exit codes.

Heavy packages (torch, transformers, pandas) are imported inside the commands that need them, so that
`rerank-bench --help` stays instant.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from rerank_bench import __version__
from rerank_bench.errors import EXIT_INTERRUPTED, RerankBenchError

app = typer.Typer(
    name="rerank-bench",
    help="How fast does a reranker run on this hardware, and will it fit your memory and latency budget?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Piped or redirected output is read in files and CI logs: do not squeeze tables into 80 columns.
stdout = Console(width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"rerank-bench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """How fast does a reranker run on this hardware, and will it fit your memory and latency budget?"""


def run_guarded(action: Callable[[], Any]) -> Any:
    """Run one command's work; turn our typed errors into one line on stderr and the right exit code."""
    try:
        return action()
    except RerankBenchError as exc:
        stderr.print(f"[bold red]error:[/] {escape(exc.one_line())}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        stderr.print("interrupted", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
def probe(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document (schema in README).")] = False,
) -> None:
    """Report what this machine brings to reranking: CPU and vector ISA, usable cores and memory (cgroup
    limits included), NVIDIA GPUs through NVML, Apple MPS, and the versions of the software that runs models.

    Example: rerank-bench probe --json
    """
    from rerank_bench.probe import probe_machine

    report = run_guarded(lambda: probe_machine().to_dict())
    if as_json:
        print_json(report)
    else:
        from rerank_bench.render.probe_view import render_probe

        render_probe(report, stdout)


def _split_multi(values: list[str] | None) -> tuple[str, ...]:
    """--model may be repeated and each value may be a comma list."""
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(out)


@app.command()
def sweep(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Catalog alias, Hub id or local folder; repeat or comma-list. Default: minilm-l6."
        ),
    ] = None,
    batch_size: Annotated[
        str, typer.Option("--batch-size", help="Comma list of batch sizes (pairs per forward pass).")
    ] = "8,16,32,64",
    depth: Annotated[
        str, typer.Option("--depth", help="Comma list of candidate depths (documents per query).")
    ] = "10,20,50,100",
    max_length: Annotated[
        int | None, typer.Option("--max-length", help="Tokens per pair after truncation. Default: the model's.")
    ] = None,
    doc_tokens: Annotated[
        str | None,
        typer.Option(
            "--doc-tokens", help="Document length: N tokens, A:B uniform, or rag (default: the RAG mix, mean ~150)."
        ),
    ] = None,
    workload: Annotated[
        Path | None,
        typer.Option(
            "--workload", help='JSONL file of your own requests: {"query": ..., "documents": [...]} per line.'
        ),
    ] = None,
    sample_with_replacement: Annotated[
        bool,
        typer.Option(
            "--sample-with-replacement",
            help="With --workload: fill requests shorter than --depth by sampling their documents.",
        ),
    ] = False,
    weights: Annotated[
        str,
        typer.Option("--weights", help="auto (real if cached or downloadable, else the random twin), real, or random."),
    ] = "auto",
    revision: Annotated[str | None, typer.Option("--revision", help="Hub revision (branch, tag or commit).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="Comma list of backends: torch, onnx, openvino. One whose packages are missing gives skipped rows.",
        ),
    ] = "torch",
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="Comma list of precisions: fp32, fp16, bf16, int8 (int8: onnx). Ones the device cannot run give skipped rows.",
        ),
    ] = "fp32",
    order: Annotated[
        str,
        typer.Option(
            "--order",
            help="Comma list: given (candidates as in the request), length (batched by token length, less padding).",
        ),
    ] = "given",
    threads: Annotated[
        str | None,
        typer.Option(
            "--threads", help="Comma list of CPU thread counts. Default: the cores this process may use (cgroup-aware)."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Result CSV. Default: results/<UTC date>-<host>-<fingerprint>.csv"),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Append to this result CSV, skipping cases it already holds (ok or oom)."),
    ] = None,
    max_seconds_per_case: Annotated[
        float, typer.Option("--max-seconds-per-case", help="Cap on timed queries per case.")
    ] = 15.0,
    precision: Annotated[
        float, typer.Option("--precision", help="Stop a case once the p50's 95% CI half-width is within this fraction.")
    ] = 0.03,
    case_timeout: Annotated[
        float,
        typer.Option(
            "--case-timeout",
            help="Kill a case whose first query has not returned after this many seconds (a hung device).",
        ),
    ] = 600.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic workload.")] = 0,
    allow_random_head: Annotated[
        bool,
        typer.Option("--allow-random-head", help="Measure a model whose classifier head is not trained (speed only)."),
    ] = False,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            "--trust-remote-code", help="Allow model code from the Hub to run (only for repositories you trust)."
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard", help="K/N: run only the K-th of N deterministic slices of the cases (for CI matrix jobs)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the cases and exit without measuring.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary and rows as JSON on stdout.")] = False,
) -> None:
    """Measure rerankers: pairs/s and per-query latency percentiles across batch sizes and candidate depths,
    on a realistic query/document length mix. Each case is written to the result CSV as soon as it finishes.

    With no options: minilm-l6 (cross-encoder/ms-marco-MiniLM-L6-v2), offline-capable, in a few minutes.

    Example: rerank-bench sweep -m minilm-l6 -m bge-reranker-base --depth 20,50 --batch-size 8,16
    """
    from rerank_bench.errors import EXIT_ENVIRONMENT, EXIT_USAGE
    from rerank_bench.measure.plan import parse_int_list
    from rerank_bench.measure.timing import MeasureSettings
    from rerank_bench.render.sweep_view import ProgressEvents, render_cases, render_summary

    def work() -> tuple[Any, Any]:
        from rerank_bench.backends import DTYPES, ORDERS, SPECS
        from rerank_bench.errors import UsageError
        from rerank_bench.measure.plan import parse_str_list
        from rerank_bench.measure.scheduler import SweepRequest, parse_shard, plan_sweep, run_sweep
        from rerank_bench.probe import probe_machine

        if max_seconds_per_case <= 0 or case_timeout <= 0 or not 0 < precision < 1:
            raise UsageError("--max-seconds-per-case and --case-timeout must be positive, --precision within (0, 1)")
        settings = MeasureSettings(
            max_seconds=max_seconds_per_case,
            target_precision=precision,
            min_seconds=min(MeasureSettings.min_seconds, max_seconds_per_case),
            first_query_timeout_s=case_timeout,
        )
        request = SweepRequest(
            models=_split_multi(model) or ("minilm-l6",),
            batch_sizes=parse_int_list(batch_size, "--batch-size"),
            depths=parse_int_list(depth, "--depth"),
            backends=parse_str_list(backend, "--backend", tuple(SPECS)),
            dtypes=parse_str_list(dtype, "--dtype", DTYPES),
            orders=parse_str_list(order, "--order", ORDERS),
            thread_counts=parse_int_list(threads, "--threads") if threads is not None else None,
            max_length=max_length,
            doc_tokens=doc_tokens,
            workload_file=workload,
            sample_with_replacement=sample_with_replacement,
            weights=weights,
            revision=revision,
            device=device,
            output=output,
            resume=resume,
            seed=seed,
            trust_remote_code=trust_remote_code,
            allow_random_head=allow_random_head,
            settings=settings,
            shard=parse_shard(shard),
        )
        machine = probe_machine()
        plan = plan_sweep(request, machine)
        for notice in plan.notices:
            stderr.print(f"[yellow]notice:[/] {escape(notice)}", highlight=False, soft_wrap=True)
        if dry_run:
            return plan, None
        with ProgressEvents(stderr, len(plan.to_run())) as events:
            outcome = run_sweep(plan, machine, settings, events)
        return plan, outcome

    plan, outcome = run_guarded(work)
    if outcome is None:
        if as_json:
            # `job` is everything a worker needs to measure the case (ab drives workers with it).
            print_json(
                [
                    {
                        "index": c.index,
                        "case_id": c.case_id,
                        **c.key(),
                        "resumed": c.case_id in plan.already_done,
                        "skip": c.skip,
                        "job": {
                            "model": c.model.to_payload(),
                            "backend": c.backend,
                            "dtype": c.dtype,
                            "device": c.device,
                            "threads": c.threads,
                            "max_length": c.max_length,
                            "order": c.order,
                            "depth": c.depth,
                            "batch_size": c.batch_size,
                            "seed": c.seed,
                            "workload": plan.workload,
                        },
                    }
                    for c in plan.cases
                ]
            )
        else:
            render_cases(plan.cases, plan.already_done, stdout)
        return
    from rerank_bench.measure.best_batch import best_batches

    rows = list(plan.resumed_rows) + outcome.rows
    best = best_batches(rows)
    if as_json:
        print_json(
            {
                "run_id": outcome.run_id,
                "output": str(outcome.output),
                "samples": str(outcome.samples),
                "interrupted": outcome.interrupted,
                "summary": best,
                "rows": rows,
            }
        )
    else:
        render_summary(rows, best, str(outcome.output), stdout)
    if outcome.interrupted:
        stderr.print(f"interrupted: {len(outcome.rows)} finished cases are in {outcome.output}", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    for kind, message in outcome.fatal:
        stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if outcome.fatal:
        kinds = {kind for kind, _ in outcome.fatal}
        raise typer.Exit(EXIT_ENVIRONMENT if kinds == {"environment"} else EXIT_USAGE)


@app.command()
def tune(
    model: Annotated[str, typer.Argument(help="Catalog alias, Hub id or local folder.")],
    depth: Annotated[int, typer.Option("--depth", help="Candidate documents per query.")] = 50,
    budget_ms: Annotated[
        float | None,
        typer.Option(
            "--budget-ms",
            help="Latency budget per query (checked on p95, or the slowest query when too few ran for a p95).",
        ),
    ] = None,
    min_agreement: Annotated[
        float, typer.Option("--min-agreement", help="Floor on mean Spearman vs torch fp32 for `best`.")
    ] = 0.99,
    backend: Annotated[
        str, typer.Option("--backend", help="Comma list of backends to search.")
    ] = "torch,onnx,openvino",
    dtype: Annotated[str, typer.Option("--dtype", help="Comma list of precisions to search.")] = "fp32,bf16,fp16,int8",
    batch_size: Annotated[
        str, typer.Option("--batch-size", help="Comma list of batch sizes to search (ascending; pruned).")
    ] = "1,2,4,8,16,32",
    threads: Annotated[
        str | None,
        typer.Option("--threads", help="Comma list of CPU thread counts to search. Default: the usable cores."),
    ] = None,
    max_length: Annotated[
        int | None, typer.Option("--max-length", help="Tokens per pair after truncation. Default: the model's.")
    ] = None,
    doc_tokens: Annotated[
        str | None, typer.Option("--doc-tokens", help="Document length: N, A:B or rag (default).")
    ] = None,
    workload: Annotated[Path | None, typer.Option("--workload", help="JSONL file of your own requests.")] = None,
    weights: Annotated[str, typer.Option("--weights", help="auto, real or random.")] = "auto",
    revision: Annotated[str | None, typer.Option("--revision", help="Hub revision.")] = None,
    allow_random_head: Annotated[
        bool,
        typer.Option("--allow-random-head", help="Measure a model whose classifier head is not trained (speed only)."),
    ] = False,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Allow model code from the Hub to run.")
    ] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    search_queries: Annotated[
        int,
        typer.Option(
            "--search-queries", help="Timed queries per configuration while searching (the same requests for all)."
        ),
    ] = 4,
    confirm_queries: Annotated[
        int, typer.Option("--confirm-queries", help="Timed queries per finalist and round when confirming.")
    ] = 8,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Result CSV. Default: results/<date>-<host>-<fingerprint>-tune.csv"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the answer as JSON (naive, best, best_any_agreement, speedup, ...).")
    ] = False,
) -> None:
    """Find the fastest way to run a reranker at a depth on this machine: backend x precision x order x batch
    size x threads, with each choice's ranking agreement, the speed-up over sentence-transformers' default,
    and ready-to-paste settings. Exit 1 when nothing meets --budget-ms.

    Example: rerank-bench tune minilm-l6 --depth 50 --budget-ms 1000 --min-agreement 0.99
    """
    from rerank_bench.errors import EXIT_FAILED

    def work() -> Any:
        from rerank_bench.backends import DTYPES, USER_BACKENDS
        from rerank_bench.errors import UsageError
        from rerank_bench.measure.plan import parse_int_list, parse_str_list
        from rerank_bench.probe import probe_machine
        from rerank_bench.render.sweep_view import ProgressEvents
        from rerank_bench.tune.search import TuneRequest, run_tune

        if search_queries < 1 or confirm_queries < 1:
            raise UsageError("--search-queries and --confirm-queries must be at least 1")
        request = TuneRequest(
            model=model,
            depth=depth,
            budget_ms=budget_ms,
            min_agreement=min_agreement,
            backends=parse_str_list(backend, "--backend", USER_BACKENDS),
            dtypes=parse_str_list(dtype, "--dtype", DTYPES),
            batch_sizes=parse_int_list(batch_size, "--batch-size"),
            thread_counts=parse_int_list(threads, "--threads") if threads is not None else None,
            max_length=max_length,
            doc_tokens=doc_tokens,
            workload_file=workload,
            weights=weights,
            revision=revision,
            allow_random_head=allow_random_head,
            trust_remote_code=trust_remote_code,
            device=device,
            search_queries=search_queries,
            confirm_queries=confirm_queries,
            output=output,
        )
        machine = probe_machine()
        with ProgressEvents(stderr, None) as events:
            return run_tune(request, machine, events)

    result = run_guarded(work)
    if as_json:
        print_json(result.to_dict())
    else:
        from rerank_bench.render.tune_view import render_tune

        render_tune(result, stdout)
    for note in result.notes:
        stderr.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if result.best_any_agreement is None:
        what = f"within {budget_ms:g} ms" if budget_ms is not None else "at all"
        stderr.print(f"[bold red]no configuration ran {escape(what)}[/] at depth {depth}", highlight=False)
        raise typer.Exit(EXIT_FAILED)


@app.command("will-it-run")
def will_it_run(
    model: Annotated[
        str | None,
        typer.Argument(
            help="Catalog alias, Hub id (only config.json is fetched) or local folder. Default: every catalog model."
        ),
    ] = None,
    hardware: Annotated[
        str, typer.Option("--hardware", help="A profile (see `rerank-bench profiles`), local (this machine), or all.")
    ] = "local",
    vram: Annotated[
        str | None, typer.Option("--vram", help="Memory to plan for instead of the device's, e.g. 12GiB.")
    ] = None,
    depth: Annotated[int, typer.Option("--depth", help="Candidate documents per query.")] = 50,
    budget_ms: Annotated[float | None, typer.Option("--budget-ms", help="Latency budget per query.")] = None,
    percentile: Annotated[
        str, typer.Option("--percentile", help="p50 or p95: which latency the budget applies to.")
    ] = "p95",
    max_length: Annotated[
        int | None, typer.Option("--max-length", help="Tokens per pair. Default: the model's.")
    ] = None,
    doc_tokens: Annotated[
        str | None, typer.Option("--doc-tokens", help="Document length: N, A:B or rag (default).")
    ] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="auto, fp32, fp16, bf16 or int8.")] = "auto",
    batch_size: Annotated[str, typer.Option("--batch-size", help="auto (the fastest that fits) or N.")] = "auto",
    attention: Annotated[
        str,
        typer.Option(
            "--attention", help="sdpa (default in transformers) or eager (keeps the B x heads x L x L scores)."
        ),
    ] = "sdpa",
    profiles_dir: Annotated[
        list[Path] | None, typer.Option("--profiles", help="Folder of your own profile files (TOML); repeatable.")
    ] = None,
    results: Annotated[
        list[Path] | None,
        typer.Option("--results", help="Sweep result files or folders measured here (default: results/)."),
    ] = None,
    measure: Annotated[
        bool,
        typer.Option("--measure", help="With --hardware local: measure the chosen configuration now (a short sweep)."),
    ] = False,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Allow a Hub config's custom code.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a list of objects, one per row.")] = False,
) -> None:
    """Will this reranker fit this GPU (or a named one) and meet a latency budget at a depth? Memory from the
    architecture, latency measured where it can be and modelled where not; every figure says which.
    Exit 0 when a row says RUNS or TIGHT, 1 when none does.

    Example: rerank-bench will-it-run bge-reranker-v2-m3 --hardware rtx-3060-12gb --depth 50 --budget-ms 200
    """
    from rerank_bench.errors import EXIT_FAILED

    def work() -> Any:
        from rerank_bench.fit.assess import WillRunRequest, parse_size_gib, run_will_it_run

        request = WillRunRequest(
            model=model,
            hardware=hardware,
            vram_gib=parse_size_gib(vram),
            depth=depth,
            budget_ms=budget_ms,
            percentile=percentile,
            max_length=max_length,
            doc_tokens=doc_tokens,
            dtype=dtype,
            batch_size=batch_size,
            attention=attention,
            profile_dirs=tuple(profiles_dir or ()),
            results=tuple(results or ()),
            measure=measure,
            trust_remote_code=trust_remote_code,
        )
        machine = None
        if hardware == "local":
            from rerank_bench.probe import probe_machine

            machine = probe_machine()
        return run_will_it_run(request, machine)

    rows = run_guarded(work)
    if as_json:
        print_json([r.to_dict() for r in rows])
    else:
        from rerank_bench.render.willrun_view import render_rows

        render_rows(rows, stdout)
    if not any(r.verdict in ("RUNS", "TIGHT") for r in rows):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def profiles(
    profiles_dir: Annotated[
        list[Path] | None, typer.Option("--profiles", help="Also list the profiles in this folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profiles as JSON.")] = False,
) -> None:
    """List the hardware profiles will-it-run knows (each figure sourced in its file).

    Example: rerank-bench profiles --json
    """

    def work() -> Any:
        from rerank_bench.fit.profiles import load_profiles

        return list(load_profiles(list(profiles_dir or ())).values())

    found = run_guarded(work)
    if as_json:
        print_json([p.to_dict() for p in found])
    else:
        from rerank_bench.render.willrun_view import render_profiles

        render_profiles(found, stdout)


def _finish_comparison(
    comparison: Any, title: str, fmt: str, as_json: bool, github_benchmark: Path | None, fail_on_inconclusive: bool
) -> None:
    from rerank_bench.errors import EXIT_ENVIRONMENT, EXIT_FAILED

    if github_benchmark is not None:
        from rerank_bench.gate.compare import github_benchmark_entries

        github_benchmark.write_text(json.dumps(github_benchmark_entries(comparison), indent=2) + "\n")
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
        stderr.print(f"[bold red]regression:[/] {counts['regressed']} case(s) regressed", highlight=False)
        raise typer.Exit(EXIT_FAILED)
    if counts["inconclusive"] and fail_on_inconclusive:
        stderr.print(f"inconclusive: {counts['inconclusive']} case(s) could not be decided", highlight=False)
        raise typer.Exit(EXIT_ENVIRONMENT)


FormatOption = Annotated[
    str, typer.Option("--format", help="table or markdown (for a PR comment or $GITHUB_STEP_SUMMARY).")
]
ThresholdOption = Annotated[
    str, typer.Option("--max-regression", help="Tolerated slowdown for throughput, p50 and p95, e.g. 5%.")
]
OverrideOption = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold", help="Per-metric override METRIC=PCT (throughput, p50, p95, memory; memory defaults to 10%)."
    ),
]
GithubOption = Annotated[
    Path | None,
    typer.Option(
        "--github-benchmark", help="Also write github-action-benchmark JSON (customSmallerIsBetter) to this file."
    ),
]
InconclusiveOption = Annotated[
    bool, typer.Option("--fail-on-inconclusive", help="Exit 3 when a case cannot be decided.")
]


@app.command()
def compare(
    baseline: Annotated[
        list[Path], typer.Argument(help="Baseline result CSV(s) or folder(s); the last argument is CURRENT.")
    ],
    fmt: FormatOption = "table",
    max_regression: ThresholdOption = "5%",
    threshold: OverrideOption = None,
    ignore: Annotated[
        str,
        typer.Option(
            "--ignore", help="Comma list of key fields to leave out when matching cases (e.g. revision,max_length)."
        ),
    ] = "",
    allow_different_hardware: Annotated[
        bool, typer.Option("--allow-different-hardware", help="Compare runs from different machines (said loudly).")
    ] = False,
    fail_on_inconclusive: InconclusiveOption = False,
    github_benchmark: GithubOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare a run against a baseline: per case and metric, the change with a bootstrap 95% interval from
    the raw samples, and a verdict. A regression needs the change to pass the threshold AND the interval to
    exclude no change. Exit 0 pass, 1 regression, 2 bad input, 3 inconclusive with --fail-on-inconclusive.

    Example: rerank-bench compare results/main.csv results/pr.csv --format markdown >> "$GITHUB_STEP_SUMMARY"
    """
    from rerank_bench.errors import UsageError
    from rerank_bench.gate.compare import compare_files, parse_thresholds

    def work() -> Any:
        if len(baseline) < 2:
            raise UsageError("compare needs BASELINE and CURRENT", "rerank-bench compare BASELINE.csv CURRENT.csv")
        if fmt not in ("table", "markdown"):
            raise UsageError(f"--format {fmt!r} is not table or markdown")
        thresholds = parse_thresholds(max_regression, threshold or [])
        ignored = tuple(f.strip() for f in ignore.split(",") if f.strip())
        return compare_files(baseline[:-1], [baseline[-1]], thresholds, ignored, allow_different_hardware)

    comparison = run_guarded(work)
    _finish_comparison(comparison, "rerank-bench compare", fmt, as_json, github_benchmark, fail_on_inconclusive)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ab(
    ctx: typer.Context,
    a: Annotated[str, typer.Option("--a", help="Sweep options of the baseline arm, as one string.")] = "",
    b: Annotated[str, typer.Option("--b", help="Sweep options of the candidate arm, as one string.")] = "",
    a_cmd: Annotated[
        str | None, typer.Option("--a-cmd", help="Command that runs rerank-bench for A (e.g. venv-a/bin/rerank-bench).")
    ] = None,
    b_cmd: Annotated[str | None, typer.Option("--b-cmd", help="Command that runs rerank-bench for B.")] = None,
    reps: Annotated[int, typer.Option("--reps", help="Repetitions, each with fresh processes for A, A' and B.")] = 3,
    seconds: Annotated[
        float, typer.Option("--seconds", help="Timed turns per repetition (at least 10 queries per arm).")
    ] = 12.0,
    case_timeout: Annotated[
        float, typer.Option("--case-timeout", help="Give up on a worker that does not answer for this many seconds.")
    ] = 600.0,
    fmt: FormatOption = "table",
    max_regression: ThresholdOption = "5%",
    threshold: OverrideOption = None,
    fail_on_inconclusive: InconclusiveOption = False,
    github_benchmark: GithubOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """A/B on this machine in one job: fresh processes for baseline (A), a second baseline (A', the A/A
    check) and candidate (B) take turns one query at a time on the same requests, so the machine's drift
    cancels; judged like `compare`, with the A/A noise floor. Options after the named ones are sweep
    options shared by both arms (a grid of several cases is compared case by case).

    Example: rerank-bench ab --a "--max-length 256" --b "--max-length 512" -m minilm-l6 --depth 20 --batch-size 8 --doc-tokens 200
    """
    from rerank_bench.errors import UsageError
    from rerank_bench.gate.ab import parse_arm, run_ab
    from rerank_bench.gate.compare import parse_thresholds

    def work() -> Any:
        if fmt not in ("table", "markdown"):
            raise UsageError(f"--format {fmt!r} is not table or markdown")
        thresholds = parse_thresholds(max_regression, threshold or [])
        arm_a, arm_b = parse_arm("A", a_cmd, a), parse_arm("B", b_cmd, b)
        shared = list(ctx.args)
        if arm_a == arm_b:
            stderr.print("note: A and B are identical: this is an A/A run", highlight=False)
        if seconds <= 0 or case_timeout <= 0:
            raise UsageError("--seconds and --case-timeout must be positive")
        return run_ab(
            arm_a,
            arm_b,
            shared,
            reps,
            thresholds,
            seconds=seconds,
            timeout_s=case_timeout,
            progress=lambda m: stderr.print(m, highlight=False),
        )

    comparison = run_guarded(work)
    _finish_comparison(comparison, "rerank-bench ab", fmt, as_json, github_benchmark, fail_on_inconclusive)


@app.command()
def report(
    inputs: Annotated[list[Path], typer.Argument(help="Result CSV files or folders (searched recursively).")],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for leaderboard.md/.csv, the PNG plots and report.html.")
    ] = Path("report"),
    budget_ms: Annotated[
        float | None, typer.Option("--budget-ms", help="Latency budget drawn on the latency-vs-depth plot.")
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="FIELD=VALUE[,VALUE] with FIELD model, hardware or backend; repeatable."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the leaderboard and the files written as JSON.")
    ] = False,
) -> None:
    """Merge result CSVs from many machines into a leaderboard (terminal, Markdown, CSV), plots (PNG) and one
    self-contained HTML page (plots embedded, nothing fetched from the network).

    Example: rerank-bench report results/ --out report --budget-ms 200 --filter model=minilm-l6
    """
    from rerank_bench.report.build import build_report, parse_filters

    output = run_guarded(lambda: build_report(inputs, out, budget_ms, parse_filters(filter_ or [])))
    if as_json:
        print_json(output.to_dict())
        return
    from rerank_bench.render.report_view import render_leaderboard

    render_leaderboard(output, stdout)


@app.command("_ab-worker", hidden=True)
def ab_worker() -> None:
    """Internal: one side of `ab`, driven query by query over stdin/stdout (JSON lines).

    Example: (started by rerank-bench ab; not for direct use)
    """
    from rerank_bench.gate.ab_worker import serve

    serve(sys.stdin, sys.stdout)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
