"""`rerank-bench sweep`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rerank_bench.cli.common import (
    ATTENTION_HELP,
    BACKEND_HELP,
    ORDER_HELP,
    PREFIX_HELP,
    DeviceOption,
    DocTokensOption,
    InstructionOption,
    JsonOption,
    MaxLengthOption,
    RandomHeadOption,
    RemoteCodeOption,
    RevisionOption,
    ThreadsOption,
    WeightsOption,
    WorkloadOption,
    dtype_help,
    guarded,
    joined,
    notice,
    print_json,
    split_multi,
    stderr,
    stdout,
)
from rerank_bench.sweep.request import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_MODEL,
    DEFAULT_PRUNE_RATIO,
    SweepRequest,
    parse_shard,
)

DEFAULT = SweepRequest()  # the library's defaults are the command's


@guarded
def sweep(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="MODEL",
            help=f"Catalog alias, Hub id or local folder; repeat or comma-list. Default: {DEFAULT_MODEL}.",
        ),
    ] = None,
    batch_size: Annotated[
        str | None,
        typer.Option(
            "--batch-size",
            metavar="N,N,...",
            help="Comma list of batch sizes (pairs per forward pass), each measured. Default: "
            f"{joined(DEFAULT_BATCH_SIZES)}, where a depth's larger ones are skipped once one runs below "
            f"{DEFAULT_PRUNE_RATIO:.0%} of the best pairs/s so far.",
        ),
    ] = None,
    depth: Annotated[
        str, typer.Option("--depth", metavar="N,N,...", help="Comma list of candidate depths (documents per query).")
    ] = joined(DEFAULT.depths),
    max_length: MaxLengthOption = None,
    instruction: InstructionOption = None,
    doc_tokens: DocTokensOption = None,
    workload: WorkloadOption = None,
    sample_with_replacement: Annotated[
        bool,
        typer.Option(
            "--sample-with-replacement",
            help="With --workload: fill requests shorter than --depth by sampling their documents.",
        ),
    ] = False,
    weights: WeightsOption = "auto",
    revision: RevisionOption = None,
    device: DeviceOption = "auto",
    backend: Annotated[
        str,
        typer.Option("--backend", metavar="BACKEND,...", help=BACKEND_HELP),
    ] = joined(DEFAULT.backends),
    dtype: Annotated[
        str,
        typer.Option("--dtype", metavar="DTYPE,...", help=dtype_help()),
    ] = joined(DEFAULT.dtypes),
    order: Annotated[
        str,
        typer.Option("--order", metavar="ORDER,...", help=ORDER_HELP),
    ] = joined(DEFAULT.orders),
    attention: Annotated[
        str,
        typer.Option("--attention", metavar="auto|sdpa|eager|flash_attention_2,...", help=ATTENTION_HELP),
    ] = "auto",
    prefix: Annotated[
        str,
        typer.Option("--prefix", metavar="whole|shared,...", help=PREFIX_HELP),
    ] = "whole",
    threads: ThreadsOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Result CSV. Default: results/<UTC date>-<host>-<fingerprint>.csv"
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            metavar="FILE",
            help="Append to this result CSV, skipping cases it already holds (ok, and oom unless --retry-oom).",
        ),
    ] = None,
    retry_oom: Annotated[
        bool, typer.Option("--retry-oom", help="With --resume: measure cases that ran out of memory again too.")
    ] = False,
    max_seconds_per_case: Annotated[
        float, typer.Option("--max-seconds-per-case", metavar="SECONDS", help="Cap on timed queries per case.")
    ] = DEFAULT.settings.max_seconds,
    precision: Annotated[
        float,
        typer.Option(
            "--precision",
            metavar="FRACTION",
            help="Stop a case once the p50's 95% CI half-width is within this fraction.",
        ),
    ] = DEFAULT.settings.target_precision,
    case_timeout: Annotated[
        float,
        typer.Option(
            "--case-timeout",
            metavar="SECONDS",
            help="Kill a case whose first query has not returned after this many seconds.",
        ),
    ] = DEFAULT.settings.first_query_timeout_s,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the synthetic workload.")] = DEFAULT.seed,
    allow_random_head: RandomHeadOption = False,
    trust_remote_code: RemoteCodeOption = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help="K/N: run only the K-th of N deterministic slices of the cases (CI matrix jobs).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the cases and exit without measuring.")] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Show every column of the table, whatever the terminal's width.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Measure rerankers: pairs/s and per-query latency percentiles across batch sizes and candidate depths,
    on a realistic query/document length mix. Each case is written to the result CSV as soon as it finishes.

    With no options: minilm-l6 (cross-encoder/ms-marco-MiniLM-L6-v2), offline-capable, in a few minutes.

    Examples:

    \b
      rerank-bench sweep -m minilm-l6 -m bge-reranker-base --depth 20,50 --batch-size 8,16
    """
    from rerank_bench.backends import DTYPES, SPECS, parse_orders
    from rerank_bench.common.options import parse_int_list, parse_str_list
    from rerank_bench.errors import UsageError
    from rerank_bench.probe import probe_machine
    from rerank_bench.render.sweep_view import ProgressEvents, render_cases, render_summary
    from rerank_bench.sweep.best_batch import best_batches
    from rerank_bench.sweep.cases import ATTENTIONS, PREFIXES, parse_features
    from rerank_bench.sweep.planner import plan_sweep
    from rerank_bench.sweep.scheduler import run_sweep
    from rerank_bench.sweep.timing import MeasureSettings

    settings = MeasureSettings.from_options(max_seconds_per_case, precision, case_timeout)
    models = split_multi(model)
    if model is not None and not models:
        raise UsageError(f"--model {' '.join(map(repr, model))} names no model", "for example -m minilm-l6")
    request = SweepRequest(
        models=models or DEFAULT.models,
        batch_sizes=parse_int_list(batch_size, "--batch-size") if batch_size is not None else None,
        depths=parse_int_list(depth, "--depth"),
        backends=parse_str_list(backend, "--backend", tuple(SPECS)),  # the fake too: tests drive it
        dtypes=parse_str_list(dtype, "--dtype", DTYPES),
        orders=parse_orders(order),
        attentions=parse_features(attention, "--attention", "auto", ATTENTIONS),
        prefixes=parse_features(prefix, "--prefix", "whole", PREFIXES),
        thread_counts=parse_int_list(threads, "--threads") if threads is not None else None,
        max_length=max_length,
        instruction=instruction,
        doc_tokens=doc_tokens,
        workload_file=workload,
        sample_with_replacement=sample_with_replacement,
        weights=weights,
        revision=revision,
        device=device,
        output=output,
        resume=resume,
        retry_oom=retry_oom,
        seed=seed,
        trust_remote_code=trust_remote_code,
        allow_random_head=allow_random_head,
        settings=settings,
        shard=parse_shard(shard),
    )
    # torch's build is stamped on rows torch measures; a sweep of the fake backend alone (ab's planning, the
    # tests) does not pay its 1.5 s import for it
    machine = probe_machine(use_torch=any(backend != "fake" for backend in request.backends))
    plan = plan_sweep(request, machine)
    for line in plan.notices:
        notice(line)
    if dry_run and as_json:
        print_json(plan.dry_run())
    if dry_run:
        if not as_json:
            render_cases(plan.cases, plan.already_done, stdout)
        return
    with ProgressEvents(stderr, len(plan.to_run())) as events:
        outcome = run_sweep(plan, machine, settings, events)
    rows = list(plan.resumed_rows) + outcome.rows
    best = best_batches(rows)
    if as_json:
        print_json({**outcome.summary(), "summary": best, "rows": rows})
    else:
        render_summary(rows, best, str(outcome.output), stdout, wide)
    failure = outcome.failure(plan.resumed_rows)
    if failure is not None:
        raise failure
