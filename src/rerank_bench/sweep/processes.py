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

from rerank_bench.backends import SPECS, USER_BACKENDS

Job = TypeVar("Job")


def preload_modules() -> list[str]:
    """What the forkserver imports once: the worker's own module and every installed backend's packages. All
    of them, whatever this run measures: once torch and sentence-transformers are in, onnxruntime and
    openvino add about 0.15 s, and the forkserver, started by the first child, serves every later one."""
    modules = ["rerank_bench.sweep.child"]
    for name in USER_BACKENDS:
        for module, _ in SPECS[name].packages:
            if module not in modules and importlib.util.find_spec(module) is not None:
                modules.append(module)
    return modules


def _context() -> Any:
    if "forkserver" not in mp.get_all_start_methods():  # Windows: spawn is all there is
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(preload_modules())  # read when the forkserver starts: at the first child
    return ctx


def _run(target: Callable[[Any, Job], None], environ: dict[str, str], conn: Any, job: Job) -> None:
    os.environ.clear()
    os.environ.update(environ)
    target(conn, job)


def start_child(target: Callable[[Any, Job], None], job: Job) -> tuple[Any, Any]:
    """`target(conn, job)` in a fresh child process; returns (the process, the end of the pipe to read)."""
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_run, args=(target, dict(os.environ), sender, job), daemon=True)
    process.start()
    sender.close()
    return process, receiver
