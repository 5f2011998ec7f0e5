"""Starting the measuring child processes: fresh ones, and quickly.

Each load group runs in a process of its own, so that a crash or an out-of-memory kill loses at most one case
and no case runs in a process that has run another model or shape. A spawned process imports torch and
sentence-transformers anew, 6-8 s on a 2-core CPU, paid by every load group and every round of `tune` (a
dozen of them). So children are forked from multiprocessing's forkserver with those packages preloaded: still a
fresh process that has run no model, started in a fraction of a second. The forkserver is itself started by
exec, never forked from this process, and it only imports: no thread pool has run in it, so nothing is
forked mid-computation (PyTorch's own DataLoader forks workers after importing torch the same way).

The forkserver took the environment of its start; a child sets this process's environment of the moment it
is started before it runs its job, as a spawned child would have had it.
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import os
from collections.abc import Callable
from typing import Any, TypeVar

from rerank_bench.backends import SPECS
from rerank_bench.sweep.jobs import GroupJob, ReferenceJob

Job = TypeVar("Job", GroupJob, ReferenceJob)  # what a child is sent


# What the forkserver imports once. Only packages that leave no Python thread behind: forking copies one
# thread, and a thread caught mid-import leaves its module locked in the child for good (openvino starts a
# ThreadPoolExecutor at import, and a child forked past it hung in its first import). torch and
# sentence-transformers are the 6-8 s; onnxruntime and openvino cost about 0.15 s in the child.
PRELOAD = ("rerank_bench.sweep.child", "torch", "sentence_transformers")


def preload_modules() -> list[str]:
    return [m for m in PRELOAD if importlib.util.find_spec(m) is not None]


def _context(backend: str) -> Any:
    """The forkserver for a backend with packages to import; spawn for one without (the fake: a spawned child
    imports rerank-bench alone in about a second, while the forkserver would import torch first) and where
    there is no forkserver (Windows)."""
    if not SPECS[backend].packages or "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(preload_modules())  # read when the forkserver starts: at its first child
    return ctx


def _run(target: Callable[[Any, Job], None], environ: dict[str, str], conn: Any, job: Job) -> None:
    os.environ.clear()
    os.environ.update(environ)
    target(conn, job)


def start_child(target: Callable[[Any, Job], None], job: Job, backend: str) -> tuple[Any, Any]:
    """`target(conn, job)` in a fresh child process that will load `backend`; returns (the process, the end of
    the pipe to read)."""
    ctx = _context(backend)
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_run, args=(target, dict(os.environ), sender, job), daemon=True)
    process.start()
    sender.close()
    return process, receiver
