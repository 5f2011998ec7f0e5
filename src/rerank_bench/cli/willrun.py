"""`rerank-bench will-it-run` and `rerank-bench profiles`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rerank_bench.cli.common import (
    DocTokensOption,
    InstructionOption,
    JsonOption,
    MaxLengthOption,
    RemoteCodeOption,
    guarded,
    print_json,
    stdout,
)
from rerank_bench.common.vocab import FitVerdict
from rerank_bench.errors import UsageError

ProfilesOption = Annotated[
    list[Path] | None,
    typer.Option("--profiles", metavar="DIR", help="Folder of your own profile files (TOML); repeatable."),
]


@guarded
def will_it_run(
    model: Annotated[
        str | None,
        typer.Argument(
            help="Catalog alias, Hub id (only config.json is fetched) or local folder. Default: every catalog model.",
        ),
    ] = None,
    hardware: Annotated[
        str,
        typer.Option(
            "--hardware",
            metavar="NAME|local|all",
            help="A profile (see `rerank-bench profiles`), local (this machine), or all.",
        ),
    ] = "local",
    vram: Annotated[
        str | None,
        typer.Option("--vram", metavar="SIZE", help="Memory to plan for instead of the device's, e.g. 12GiB."),
    ] = None,
    depth: Annotated[int, typer.Option("--depth", metavar="N", help="Candidate documents per query.")] = 50,
    budget_ms: Annotated[
        float | None, typer.Option("--budget-ms", metavar="MS", help="Latency budget per query.")
    ] = None,
    percentile: Annotated[
        str, typer.Option("--percentile", metavar="p50|p95", help="p50 or p95: which latency the budget applies to.")
    ] = "p95",
    max_length: MaxLengthOption = None,
    instruction: InstructionOption = None,
    doc_tokens: DocTokensOption = None,
    dtype: Annotated[
        str, typer.Option("--dtype", metavar="auto|DTYPE", help="auto, fp32, fp16, bf16 or int8.")
    ] = "auto",
    batch_size: Annotated[
        str,
        typer.Option(
            "--batch-size",
            metavar="auto|N",
            help="auto (the fastest that fits; with --rate --server infinity, the infinity --batch-size with the most "
            "capacity) or N.",
        ),
    ] = "auto",
    attention: Annotated[
        str,
        typer.Option(
            "--attention",
            metavar="sdpa|eager",
            help="sdpa (default in transformers) or eager (keeps the B x heads x L x L scores).",
        ),
    ] = "sdpa",
    profiles_dir: ProfilesOption = None,
    results: Annotated[
        list[Path] | None,
        typer.Option(
            "--results", metavar="PATH", help="Sweep result files or folders measured here (default: results/)."
        ),
    ] = None,
    measure: Annotated[
        bool,
        typer.Option("--measure", help="With --hardware local: measure the chosen configuration now (a short sweep)."),
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            metavar="RPS",
            help="Requests per second to plan for: a serving replica is simulated under Poisson arrivals for its "
            "capacity within --budget-ms, the replicas the rate needs, and their power (or price).",
        ),
    ] = None,
    server: Annotated[
        str,
        typer.Option(
            "--server",
            metavar="tei|infinity|per-request",
            help="With --rate: how the server batches: tei (token budget across requests), infinity (batches of "
            "32 pairs across requests, or --batch-size N) or per-request (one request at a time).",
        ),
    ] = "tei",
    max_batch_tokens: Annotated[
        str | None,
        typer.Option(
            "--max-batch-tokens",
            metavar="auto|N",
            help="With --rate --server tei: TEI's token budget (16384), or auto: the one with the most capacity.",
        ),
    ] = None,
    burstiness: Annotated[
        float,
        typer.Option(
            "--burstiness",
            metavar="X",
            help="With --rate: gamma shape of the arrival gaps, as endpoint --burstiness; 1 Poisson, below 1 burstier.",
        ),
    ] = 1.0,
    arrivals: Annotated[
        Path | None,
        typer.Option(
            "--arrivals",
            metavar="FILE",
            help='Replay a trace\'s arrival times (seconds, one per line, or JSON lines with "t") instead of '
            "Poisson; the plan is for the trace's own rate unless --rate scales it.",
        ),
    ] = None,
    headroom: Annotated[
        float | None,
        typer.Option(
            "--headroom",
            metavar="U",
            help="With --rate: plan each replica at utilisation U at most (e.g. 0.7); default: the budget alone.",
        ),
    ] = None,
    as_endpoint: Annotated[
        bool,
        typer.Option(
            "--as-endpoint",
            help="With --rate: also run `endpoint --capacity`'s own search on the model (its levels, count test "
            "and confirmation) and say what that measurement would report: the rate to expect when you check a "
            "replica.",
        ),
    ] = False,
    trust_remote_code: RemoteCodeOption = False,
    as_json: JsonOption = False,
) -> None:
    """Will this reranker fit this GPU (or a named one) and meet a latency budget at a depth? Memory from the
    architecture, latency measured where it can be and modelled where not; every figure says which.
    Exit 0 when a row says RUNS or TIGHT, 1 when none does.

    With --rate: how many requests a second one replica holds within the budget, and how many replicas the
    rate needs (simulated; `--hardware all` ranks devices by replicas x TDP, or by price_per_hour).

    Examples:

    \b
      rerank-bench will-it-run bge-reranker-v2-m3 --hardware rtx-3060-12gb --depth 50 --budget-ms 200
      rerank-bench will-it-run bge-reranker-base --hardware all --depth 50 --budget-ms 200 --rate 40
    """
    from rerank_bench.errors import GateFailed
    from rerank_bench.willrun.assess import WillRunRequest, parse_size_gib, run_will_it_run, trace_rate

    if arrivals is not None and rate is None:
        rate = trace_rate(arrivals)  # the trace replayed at its own pace

    request = WillRunRequest(
        model=model,
        hardware=hardware,
        vram_gib=parse_size_gib(vram),
        depth=depth,
        budget_ms=budget_ms,
        percentile=percentile,
        max_length=max_length,
        instruction=instruction,
        doc_tokens=doc_tokens,
        dtype=dtype,
        batch_size=batch_size,
        attention=attention,
        profile_dirs=tuple(profiles_dir or ()),
        results=tuple(results or ()),
        measure=measure,
        trust_remote_code=trust_remote_code,
        rate=rate,
        server=server,
        max_batch_tokens=_tokens(max_batch_tokens),
        burstiness=burstiness,
        arrivals=arrivals,
        headroom=headroom,
        as_endpoint=as_endpoint,
    )
    machine = None
    if hardware == "local":
        from rerank_bench.probe import probe_machine

        machine = probe_machine()
    rows = run_will_it_run(request, machine)
    if as_json:
        print_json([r.to_dict() for r in rows])
    else:
        from rerank_bench.render.willrun_view import render_rows

        render_rows(rows, stdout)
    if not any(FitVerdict(r.verdict).runs for r in rows):
        raise GateFailed(f"no row says RUNS or TIGHT ({', '.join(sorted({r.verdict for r in rows}))})")


def _tokens(text: str | None) -> int | str | None:
    """--max-batch-tokens: auto or a whole number (checked with the rest of the request)."""
    if text is None or text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--max-batch-tokens {text!r} is not auto or a number of tokens") from None


@guarded
def profiles(profiles_dir: ProfilesOption = None, as_json: JsonOption = False) -> None:
    """List the hardware profiles will-it-run knows (each figure sourced in its file).

    Examples:

    \b
      rerank-bench profiles --json
    """
    from rerank_bench.willrun.profiles import load_profiles

    found = list(load_profiles(list(profiles_dir or ())).values())
    if as_json:
        print_json([p.to_dict() for p in found])
        return
    from rerank_bench.render.willrun_view import render_profiles

    render_profiles(found, stdout)
