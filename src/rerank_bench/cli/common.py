"""What every command shares: the consoles, the one place errors become exit codes, JSON output, and the
options several commands take (declared once so their help reads the same everywhere)."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from rerank_bench.backends import DTYPES, ORDERS, SPECS, USER_BACKENDS
from rerank_bench.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, RerankBenchError, Terminated, UsageError

# Piped or redirected output is read in files and CI logs: do not squeeze tables into 80 columns.
stdout = Console(width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def guarded(command: F) -> F:
    """Every outcome of a command mapped to its exit code, here and only here: a typed error (raised while
    working, or after the answer is rendered, such as a failed gate) is one line on stderr and its exit code;
    Ctrl-C is 130. typer.Exit passes through untouched."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        previous = _stop_on_sigterm()
        try:
            with data_only_stdout(bool(kwargs.get("as_json"))):
                return command(*args, **kwargs)
        except RerankBenchError as exc:
            colour = "yellow" if exc.label in ("interrupted", "terminated") else "bold red"
            stderr.print(f"[{colour}]{exc.label}:[/] {escape(exc.one_line())}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except Terminated:
            stderr.print("terminated", highlight=False)
            raise typer.Exit(EXIT_TERMINATED) from None
        except KeyboardInterrupt:
            stderr.print("interrupted", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return run  # type: ignore[return-value]


def _stop_on_sigterm() -> Any:
    """SIGTERM (kill, a CI timeout) stops a command the way Ctrl-C does, so finished rows are kept and it says
    so, rather than dying silently with 143. Only in the main thread (signal handlers cannot be set elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: Any) -> None:
        raise Terminated()

    return signal.signal(signal.SIGTERM, stop)


# Where --json's document goes while data_only_stdout holds the process's own stdout for stderr.
_json_out: TextIO | None = None


@contextmanager
def data_only_stdout(active: bool) -> Iterator[None]:
    """With --json, stdout carries the one JSON document and nothing else. Libraries print to stdout (NNCF's
    log lines and progress bars, a converter's warnings), in this process and in the workers it starts, so
    for the command's duration file descriptor 1 points at stderr (children inherit it) and print_json writes
    to the real stdout, kept aside. Only where stdout is the process's own descriptor (not a test's capture)."""
    global _json_out
    try:
        real = active and sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):  # a captured stream has no descriptor
        real = False
    if not real:
        yield
        return
    sys.stdout.flush()
    kept = os.dup(1)
    os.dup2(2, 1)
    _json_out = os.fdopen(os.dup(kept), "w")
    try:
        yield
    finally:
        sys.stdout.flush()  # what libraries wrote goes to stderr, before stdout is given back
        _json_out.close()
        _json_out = None
        os.dup2(kept, 1)
        os.close(kept)


def print_json(data: Any) -> None:
    out = _json_out or sys.stdout
    out.write(json.dumps(data, indent=2, default=str) + "\n")
    out.flush()


def notice(message: str, label: str = "notice") -> None:
    stderr.print(f"[yellow]{label}:[/] {escape(message)}", highlight=False, soft_wrap=True)


def split_multi(values: list[str] | None) -> tuple[str, ...]:
    """An option that may be repeated and whose values may each be a comma list."""
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(out)


def check_format(fmt: str) -> None:
    if fmt not in ("table", "markdown"):
        raise UsageError(f"--format {fmt!r} is not table or markdown")


JsonOption = Annotated[bool, typer.Option("--json", help="Print the answer as JSON on stdout.")]
MaxLengthOption = Annotated[
    int | None,
    typer.Option("--max-length", metavar="N", help="Tokens per pair after truncation. Default: the model's."),
]
InstructionOption = Annotated[
    str | None,
    typer.Option(
        "--instruction",
        metavar="TEXT",
        help="Decoder (yes/no) rerankers: the instruction in their prompt template. Default: the model card's.",
    ),
]
DocTokensOption = Annotated[
    str | None,
    typer.Option(
        "--doc-tokens",
        metavar="N|A:B|rag",
        help="Document length: N tokens, A:B uniform, or rag (default: the RAG mix).",
    ),
]
WorkloadOption = Annotated[
    Path | None,
    typer.Option(
        "--workload",
        metavar="FILE",
        help='JSONL file of your own requests: {"query": ..., "documents": [...]} per line, optionally with '
        '"labels" (a grade per document) or "relevant" (indices); or a BEIR folder (corpus, queries, qrels).',
    ),
]
WeightsOption = Annotated[
    str,
    typer.Option(
        "--weights",
        metavar="auto|real|random",
        help="auto (real if cached or downloadable, else the random twin), real, or random.",
    ),
]
RevisionOption = Annotated[
    str | None, typer.Option("--revision", metavar="REV", help="Hub revision (branch, tag or commit).")
]
DeviceOption = Annotated[str, typer.Option("--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps.")]
RandomHeadOption = Annotated[
    bool,
    typer.Option("--allow-random-head", help="Measure a model whose classifier head is not trained (speed only)."),
]
RemoteCodeOption = Annotated[
    bool,
    typer.Option("--trust-remote-code", help="Allow model code from the Hub to run (only for repositories you trust)."),
]


def joined(values: tuple[object, ...]) -> str:
    """A default tuple as the comma list the option takes."""
    return ",".join(str(v) for v in values)


def dtype_help(lead: str = "Comma list") -> str:
    """--dtype's help from the backends' specs: each precision with the backends that run it."""
    runs = [f"{d} ({', '.join(b for b in USER_BACKENDS if d in SPECS[b].dtypes)})" for d in DTYPES]
    return f"{lead}: {', '.join(runs)}. One a backend or the device cannot run gives skipped rows."


BACKEND_HELP = f"Comma list: {', '.join(USER_BACKENDS)}. One whose packages are missing gives skipped rows."
ATTENTION_HELP = (
    "Comma list of auto, sdpa, eager, flash_attention_2: the attention implementation asked of transformers "
    "(torch only; auto: its own, SDPA where it has one). flash_attention_2 needs CUDA and flash-attn; it is "
    "where transformers runs ModernBERT unpadded."
)
PREFIX_HELP = (
    "Comma list of whole, shared: decoder rerankers only; shared runs the prompt, instruction and query every "
    "pair begins with once per request and each pair's rest against it (same scores, fewer tokens)."
)
ORDER_HELP = (
    f"Comma list of {', '.join(ORDERS)} or tokens:N: given (candidates as in the request), length (batched by token "
    "length), tokens:N (by length, each batch within N padded tokens, at most the batch size)."
)

ThreadsOption = Annotated[
    str | None,
    typer.Option(
        "--threads", metavar="N,N,...", help="Comma list of CPU thread counts. Default: the cores this process may use."
    ),
]
