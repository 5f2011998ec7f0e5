"""`rerank-bench endpoint`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rerank_bench.cli.common import (
    DocTokensOption,
    InstructionOption,
    JsonOption,
    MaxLengthOption,
    WorkloadOption,
    guarded,
    print_json,
    stderr,
    stdout,
)
from rerank_bench.endpoint.settle import SETTLE_FACTOR, SETTLE_WAIT_S


@guarded
def endpoint(
    url: Annotated[
        str,
        typer.Argument(help="The server's base URL (or its full rerank route), e.g. http://localhost:8080"),
    ],
    api: Annotated[
        str | None,
        typer.Option(
            "--api",
            metavar="tei|infinity|vllm|cohere",
            help="tei, infinity, vllm or cohere. Default: detected from the server's info routes (GET only).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", metavar="NAME", help="The API's model field, where the server serves several or needs one."
        ),
    ] = None,
    depth: Annotated[
        str, typer.Option("--depth", metavar="N,N,...", help="Comma list of documents per request.")
    ] = "50",
    concurrency: Annotated[
        str | None,
        typer.Option(
            "--concurrency", metavar="N,N,...", help="Closed loop: comma list of client counts, e.g. 1,2,4,8."
        ),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            metavar="RPS,RPS,...",
            help="Open loop: comma list of offered requests per second (Poisson arrivals).",
        ),
    ] = None,
    duration: Annotated[
        float, typer.Option("--duration", metavar="SECONDS", help="Closed loop: seconds each level runs.")
    ] = 20.0,
    warmup: Annotated[
        int, typer.Option("--warmup", metavar="N", help="Untimed requests before each level, at least.")
    ] = 3,
    requests: Annotated[
        int | None,
        typer.Option(
            "--requests",
            metavar="N",
            help="Open loop: scheduled requests in a level's window; with --slo-ms an undecided window doubles up to "
            "8x within --max-level-s. Default: three times the fewest that can pass the percentile (258 for p95).",
        ),
    ] = None,
    warmup_s: Annotated[
        float,
        typer.Option(
            "--warmup-s", metavar="SECONDS", help="Open loop: untimed arrivals at the level's own rate for this long."
        ),
    ] = 10.0,
    max_level_s: Annotated[
        float,
        typer.Option(
            "--max-level-s",
            metavar="SECONDS",
            help="Open loop: a level's time limit; past it the level says `time limit`.",
        ),
    ] = 300.0,
    ceiling_concurrency: Annotated[
        int,
        typer.Option(
            "--ceiling-concurrency", metavar="N", help="--capacity: clients of the closed loop that finds the ceiling."
        ),
    ] = 16,
    keepalive_s: Annotated[
        float,
        typer.Option(
            "--keepalive-s",
            metavar="SECONDS",
            help="Idle connections are closed by the client after this (below uvicorn's 5 s, so a server never "
            "closes one as a request goes out on it).",
        ),
    ] = 4.0,
    ready_wait_s: Annotated[
        float,
        typer.Option(
            "--ready-wait-s",
            metavar="SECONDS",
            help="Before each level after the first, a server that refuses connections (restarting, say) is waited "
            "for this long; then the run stops, keeping every finished level.",
        ),
    ] = 60.0,
    settle_wait_s: Annotated[
        float,
        typer.Option(
            "--settle-wait-s",
            metavar="SECONDS",
            help=f"Before each level, requests are sent one at a time until their median is within {SETTLE_FACTOR:g}x "
            "of the depth's unloaded time (a server still busy with the last level's work is slower), up to this long; "
            "then the level runs anyway, said on stderr and in its row (idle_before_ms, settle_s). 0: probe only.",
        ),
    ] = SETTLE_WAIT_S,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle",
            metavar="FILE",
            help="https: a PEM file of CA certificates to trust instead of the system's (a self-signed server's). "
            "Verification is never turned off.",
        ),
    ] = None,
    metrics: Annotated[
        bool, typer.Option("--metrics/--no-metrics", help="Scrape the server's Prometheus /metrics around levels.")
    ] = True,
    burstiness: Annotated[
        float,
        typer.Option(
            "--burstiness", metavar="X", help="Open loop: gamma shape of arrival gaps; 1 Poisson, below 1 burstier."
        ),
    ] = 1.0,
    slo_ms: Annotated[
        float | None,
        typer.Option(
            "--slo-ms",
            metavar="MS",
            help="Latency objective, tested on the count of requests over it (failures count) at 95% confidence: "
            "exit 1 unless every --rate level passes (and --capacity's confirmation); with no --rate, every level.",
        ),
    ] = None,
    percentile: Annotated[
        float, typer.Option("--percentile", metavar="Q", help="The percentile held to --slo-ms (95: p95).")
    ] = 95.0,
    capacity: Annotated[
        bool,
        typer.Option(
            "--capacity",
            help="Search the highest open-loop rate that passes --slo-ms with errors under 1%: one client, a closed "
            "loop for the ceiling, rates between, bisection, then a confirmation level 3x as long.",
        ),
    ] = False,
    timeout_s: Annotated[
        float, typer.Option("--timeout-s", metavar="SECONDS", help="A request without reply after this fails.")
    ] = 60.0,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            metavar="VAR",
            help="Environment variable holding the API key (sent as a Bearer token, never written). Default: "
            "RERANK_BENCH_API_KEY when set.",
        ),
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer",
            metavar="MODEL",
            help="Model whose tokenizer builds the text (exact token counts). Default: estimated.",
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            metavar="MODEL",
            help="Model (alias or folder) to score a few requests in process and compare with the server.",
        ),
    ] = None,
    doc_tokens: DocTokensOption = None,
    workload: WorkloadOption = None,
    sample_with_replacement: Annotated[
        bool, typer.Option("--sample-with-replacement", help="With --workload: fill short requests by sampling.")
    ] = False,
    max_length: MaxLengthOption = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            metavar="qwen3|gemma",
            help="Wrap query and documents in a decoder reranker's prompt template, as a server that scores it as a "
            "sequence classifier (vLLM with hf_overrides) needs them.",
        ),
    ] = None,
    instruction: InstructionOption = None,
    seed: Annotated[
        int, typer.Option("--seed", metavar="N", help="Seed of the workload and of the arrival times.")
    ] = 0,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Result CSV. Default: results/<UTC date>-<host>-<fingerprint>-endpoint.csv",
        ),
    ] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Show every column of the table.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Measure a served reranker (TEI, infinity, vLLM, Cohere-compatible /rerank) under closed- or open-loop load:
    latency percentiles, achieved rate, errors by kind, goodput within --slo-ms, and with --capacity the highest
    rate that meets it. Each level is written to the result CSV as it ends.

    Examples:

    \b
      rerank-bench endpoint http://localhost:8080 --api tei --depth 50 --slo-ms 200 --capacity
    """
    from rerank_bench.common.options import parse_float_list, parse_int_list
    from rerank_bench.endpoint.run import EndpointRequest, run_endpoint
    from rerank_bench.errors import GateFailed
    from rerank_bench.probe import probe_machine
    from rerank_bench.render.endpoint_view import LiveLevels, endpoint_json, render_endpoint

    request = EndpointRequest(
        url=url,
        api=api,
        model=model,
        depths=parse_int_list(depth, "--depth"),
        concurrency=parse_int_list(concurrency, "--concurrency") if concurrency else (),
        rates=parse_float_list(rate, "--rate") if rate else (),
        duration_s=duration,
        warmup_requests=warmup,
        requests=requests,
        warmup_s=warmup_s,
        max_level_s=max_level_s,
        ceiling_concurrency=ceiling_concurrency,
        keepalive_s=keepalive_s,
        ready_wait_s=ready_wait_s,
        settle_wait_s=settle_wait_s,
        ca_bundle=ca_bundle,
        metrics=metrics,
        burstiness=burstiness,
        slo_ms=slo_ms,
        percentile=percentile,
        capacity=capacity,
        timeout_s=timeout_s,
        api_key_env=api_key_env,
        tokenizer=tokenizer,
        reference=reference,
        doc_tokens=doc_tokens,
        workload_file=workload,
        sample_with_replacement=sample_with_replacement,
        max_length=max_length,
        template=template,
        instruction=instruction,
        seed=seed,
        output=output,
    )
    request.check()
    machine = probe_machine(use_torch=bool(tokenizer or reference))
    with LiveLevels(stderr) as live:
        run = run_endpoint(request, machine, live)
    if as_json:
        print_json(endpoint_json(run, slo_ms, percentile))
    else:
        render_endpoint(run, slo_ms, percentile, stdout, wide)
    failures = run.gate_failures() if slo_ms is not None else []
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise GateFailed(f"p{percentile:g} <= {slo_ms:g} ms not met: {failures[0]}{more}")


@guarded
def serve_folder(
    model: Annotated[
        str,
        typer.Argument(help="A catalog alias (written as its random-weight twin) or a local folder."),
    ],
    out: Annotated[Path, typer.Argument(help="The folder to write.")],
) -> None:
    """Write a model folder a server on older libraries can load (infinity pins transformers<=4.57): a generic
    fast tokenizer and fp32 weights, so server and in-process sweep run the same model at the same precision.

    Examples:

    \b
      rerank-bench serve-folder minilm-l6 /tmp/minilm-serve
    """
    from rerank_bench.models.servable import servable_folder

    print(servable_folder(model, out))
