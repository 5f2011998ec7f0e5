"""The command line. Each command parses, calls one library function, renders, and raises a typed error for
an outcome that is not success; `common.guarded` maps every error to its exit code in one place.

One module per command family. Heavy packages (torch, transformers, pandas) are imported inside the
commands that need them, so that `rerank-bench --help` stays instant.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rerank_bench import __version__
from rerank_bench.cli import compare, endpoint, probe, report, sweep, tune, willrun

app = typer.Typer(
    name="rerank-bench",
    help="How fast does a reranker run on this hardware, and will it fit your memory and latency budget?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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


# In the order `--help` lists them.
app.command()(probe.probe)
app.command()(sweep.sweep)
app.command()(tune.tune)
app.command()(endpoint.endpoint)
app.command("serve-folder")(endpoint.serve_folder)
app.command("will-it-run")(willrun.will_it_run)
app.command()(willrun.profiles)
app.command()(compare.compare)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(compare.ab)
app.command()(report.report)
app.command("_ab-worker", hidden=True)(compare.ab_worker)


def main() -> None:
    app()
