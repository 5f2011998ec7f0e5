"""`rerank-bench probe`."""

from __future__ import annotations

from typing import Annotated

import typer

from rerank_bench.cli.common import guarded, print_json, stdout


@guarded
def probe(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document (schema in README).")] = False,
) -> None:
    """Report what this machine brings to reranking: CPU and vector ISA, usable cores and memory (cgroup
    limits included), NVIDIA GPUs through NVML, Apple MPS, and the versions of the software that runs models.

    Examples:

    \b
      rerank-bench probe --json
    """
    from rerank_bench.probe import probe_machine

    report = probe_machine().to_dict()
    if as_json:
        print_json(report)
        return
    from rerank_bench.render.probe_view import render_probe

    render_probe(report, stdout)
