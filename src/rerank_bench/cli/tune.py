"""`rerank-bench tune`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rerank_bench.cli.common import (
    BACKEND_HELP,
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
    stderr,
    stdout,
)
from rerank_bench.tune.request import TuneRequest

DEFAULT = TuneRequest(model="")  # the library's defaults are the command's


@guarded
def tune(
    model: Annotated[str, typer.Argument(help="Catalog alias, Hub id or local folder.")],
    depth: Annotated[int, typer.Option("--depth", metavar="N", help="Candidate documents per query.")] = DEFAULT.depth,
    budget_ms: Annotated[
        float | None,
        typer.Option(
            "--budget-ms",
            metavar="MS",
            help="Latency budget per query (checked on p95, or the slowest query when too few ran for a p95).",
        ),
    ] = None,
    min_agreement: Annotated[
        float, typer.Option("--min-agreement", metavar="RHO", help="Floor on mean Spearman vs torch fp32 for `best`.")
    ] = DEFAULT.min_agreement,
    max_ndcg_drop: Annotated[
        float | None,
        typer.Option(
            "--max-ndcg-drop",
            metavar="X",
            help="With a labelled --workload: the most nDCG@10 `best` may lose against torch fp32, e.g. 0.005.",
        ),
    ] = None,
    backend: Annotated[str, typer.Option("--backend", metavar="BACKEND,...", help=BACKEND_HELP)] = joined(
        DEFAULT.backends
    ),
    dtype: Annotated[
        str, typer.Option("--dtype", metavar="DTYPE,...", help=dtype_help("Comma list to search"))
    ] = joined(DEFAULT.dtypes),
    batch_size: Annotated[
        str,
        typer.Option(
            "--batch-size", metavar="N,N,...", help="Comma list of batch sizes to search (ascending; pruned)."
        ),
    ] = joined(DEFAULT.batch_sizes),
    token_budgets: Annotated[
        str,
        typer.Option(
            "--token-budgets",
            metavar="N,N,...",
            help="Comma list of padded-token budgets searched as tokens:N batching (by length, each batch within N "
            "tokens, at most the largest batch size); 0 searches none.",
        ),
    ] = joined(DEFAULT.token_budgets),
    attention: Annotated[
        str,
        typer.Option(
            "--attention",
            metavar="auto|sdpa|eager|flash_attention_2,...",
            help="Comma list of attention implementations searched on torch (auto: transformers' own).",
        ),
    ] = "auto,eager",
    prefix: Annotated[
        str,
        typer.Option(
            "--prefix",
            metavar="whole|shared,...",
            help="Comma list of prompt layouts searched for decoder rerankers (shared: the common prefix once).",
        ),
    ] = "whole,shared",
    threads: ThreadsOption = None,
    max_length: MaxLengthOption = None,
    instruction: InstructionOption = None,
    doc_tokens: DocTokensOption = None,
    workload: WorkloadOption = None,
    weights: WeightsOption = "auto",
    revision: RevisionOption = None,
    allow_random_head: RandomHeadOption = False,
    trust_remote_code: RemoteCodeOption = False,
    device: DeviceOption = "auto",
    search_queries: Annotated[
        int,
        typer.Option(
            "--search-queries",
            metavar="N",
            help="Timed queries per configuration while searching (the same requests for all).",
        ),
    ] = DEFAULT.search_queries,
    confirm_queries: Annotated[
        int,
        typer.Option("--confirm-queries", metavar="N", help="Timed queries per finalist and round when confirming."),
    ] = DEFAULT.confirm_queries,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Result CSV. Default: results/<date>-<host>-<fingerprint>-tune.csv"
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export", metavar="DIR", help="Copy the chosen configuration's model or export to this new folder."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Find the fastest way to run a reranker at a depth on this machine: backend x precision x order x batch
    size x threads, with each choice's ranking agreement, the speed-up over sentence-transformers' default,
    and ready-to-paste settings. Exit 1 when nothing meets --budget-ms.

    Examples:

    \b
      rerank-bench tune minilm-l6 --depth 50 --budget-ms 1000 --min-agreement 0.99
    """
    from rerank_bench.backends import DTYPES, USER_BACKENDS
    from rerank_bench.common.options import parse_int_list, parse_str_list
    from rerank_bench.errors import GateFailed
    from rerank_bench.probe import probe_machine
    from rerank_bench.render.sweep_view import ProgressEvents
    from rerank_bench.sweep.cases import ATTENTIONS, PREFIXES, parse_features
    from rerank_bench.tune.search import run_tune

    request = TuneRequest(
        model=model,
        depth=depth,
        budget_ms=budget_ms,
        min_agreement=min_agreement,
        max_ndcg_drop=max_ndcg_drop,
        backends=parse_str_list(backend, "--backend", USER_BACKENDS),
        dtypes=parse_str_list(dtype, "--dtype", DTYPES),
        batch_sizes=parse_int_list(batch_size, "--batch-size"),
        token_budgets=tuple(n for n in parse_int_list(token_budgets, "--token-budgets", minimum=0) if n > 0),
        attentions=parse_features(attention, "--attention", "auto", ATTENTIONS),
        prefixes=parse_features(prefix, "--prefix", "whole", PREFIXES),
        thread_counts=parse_int_list(threads, "--threads") if threads is not None else None,
        max_length=max_length,
        instruction=instruction,
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
        export_dir=export,
    )
    machine = probe_machine()
    with ProgressEvents(stderr, None) as events:
        result = run_tune(request, machine, events)
    if as_json:
        print_json(result.to_dict())
    else:
        from rerank_bench.render.tune_view import render_tune

        render_tune(result, stdout)
    for line in result.notes:
        notice(line, "note")
    if result.best_any_agreement is None:
        what = f"within {budget_ms:g} ms" if budget_ms is not None else "at all"
        raise GateFailed(f"no configuration ran {what} at depth {depth}")
