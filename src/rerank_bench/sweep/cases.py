"""The sweep grid, expanded into an explicit list of cases before anything runs (`--dry-run` prints it).

A case's key is its full configuration; `case_id` is a short hash of it. `compare` matches cases across
runs by this key and `--resume` skips cases whose key is already measured, so the key must hold every
setting that changes the measurement, and nothing that does not (no times, no run ids).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rerank_bench.common.case_key import case_id_for, features_label
from rerank_bench.models.resolve import ResolvedModel


@dataclass(frozen=True)
class Case:
    index: int
    model: ResolvedModel = field(compare=False)
    backend: str
    dtype: str
    device: str
    batch_size: int
    depth: int
    max_length: int | None  # None: the model's own, read when it is loaded
    order: str
    threads: int
    workload: str  # "rag", "fixed:N", "uniform:A:B" or "file:NAME@SHA"
    seed: int
    skip: str | None = field(default=None, compare=False)  # why it cannot run here (a skipped row)
    attention: str = ""  # "sdpa", "eager" or "flash_attention_2"; "": the runtime's own (ATTENTIONS)
    prefix: str = ""  # "shared": a decoder reranker's common prompt prefix once per request; "": pairs whole

    def key(self) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "model_id": self.model.model_id,
            "revision": self.model.revision or "",
            "weights": self.model.weights,
            "backend": self.backend,
            "dtype": self.dtype,
            "device": self.device,
            "batch_size": self.batch_size,
            "depth": self.depth,
            "max_length": self.max_length if self.max_length is not None else "",
            "order": self.order,
            "attention": self.attention,
            "prefix": self.prefix,
            "threads": self.threads,
            "workload": self.workload,
            "seed": self.seed,
        }

    @property
    def case_id(self) -> str:
        return case_id_for(self.key())

    def job(self, workload: dict[str, Any]) -> dict[str, Any]:
        """Everything a worker needs to measure this case alone (`sweep --dry-run --json`; ab drives its
        workers with it)."""
        return {
            "model": self.model.to_payload(),
            "backend": self.backend,
            "dtype": self.dtype,
            "device": self.device,
            "threads": self.threads,
            "max_length": self.max_length,
            "order": self.order,
            "attention": self.attention,
            "prefix": self.prefix,
            "depth": self.depth,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "workload": workload,
        }

    def describe(self) -> str:
        threads = f" {self.threads}t" if self.device == "cpu" else ""
        features = features_label(self.attention, self.prefix)
        return (
            f"{self.model.name} {self.backend}/{self.dtype} {self.device}{threads} {self.order}{features} "
            f"batch {self.batch_size} depth {self.depth}"
        )


def effective_batches(batch_sizes: tuple[int, ...], depth: int) -> list[int]:
    """The batch sizes that can differ at this depth, ascending: a query holds `depth` pairs, so a batch larger
    than that runs as one batch of `depth` and is recorded so (batch 64 at depth 10 is measured once, as 10)."""
    return sorted({min(b, depth) for b in batch_sizes})


def clamped_batches_note(batch_sizes: tuple[int, ...], depths: tuple[int, ...]) -> list[str]:
    """One line per depth whose candidates are fewer than some batch sizes, for the plan's notices."""
    notes = []
    for depth in sorted(set(depths)):
        larger = sorted(b for b in set(batch_sizes) if b > depth)
        if larger:
            notes.append(
                f"depth {depth}: batch size {', '.join(map(str, larger))} is more than its {depth} candidates; "
                f"a query is one batch of {depth} pairs, measured once and recorded as batch {depth}"
            )
    return notes


@dataclass(frozen=True)
class Grid:
    """What a sweep varies and what it holds fixed: every case is one point of it."""

    models: tuple[ResolvedModel, ...]
    batch_sizes: tuple[int, ...]
    depths: tuple[int, ...]
    device: str
    thread_counts: tuple[int, ...]  # one per case group; the usable cores when none were asked for
    workload: str  # the workload's label (the case key's `workload`)
    seed: int
    max_length: int | None = None  # None: each model's own (read when it is loaded, or from the catalog)
    backends: tuple[str, ...] = ("torch",)
    dtypes: tuple[str, ...] = ("fp32",)
    orders: tuple[str, ...] = ("given",)
    attentions: tuple[str, ...] = ("",)  # "": the runtime's own attention
    prefixes: tuple[str, ...] = ("",)  # "": every pair whole


# Attention implementations a case may ask transformers for (torch only): "" leaves the runtime's own choice
# (SDPA where transformers has it for the model). flash_attention_2 needs CUDA and the flash-attn package; it is
# also where transformers runs ModernBERT unpadded (its CPU paths pad).
ATTENTIONS = ("sdpa", "eager", "flash_attention_2")
PREFIXES = ("shared",)


def parse_features(text: str, option: str, default: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    """--attention / --prefix values, the default named by its word and kept as "" (the case key's empty)."""
    from rerank_bench.common.options import parse_str_list

    return tuple("" if v == default else v for v in parse_str_list(text, option, (default, *choices)))


def feature_skip(model: ResolvedModel, backend: str, device: str, attention: str, prefix: str) -> str | None:
    """Why a speed feature, or the runtime itself, cannot apply to this model and device (a skipped row), or None."""
    if model.scoring == "yes-no" and backend in ("onnx", "openvino"):
        return f"{backend} cannot score decoder rerankers yet (their yes/no answer is read through torch)"
    if attention and backend not in ("torch", "fake"):
        return f"--attention {attention} is a torch setting; {backend} exports fix their own attention"
    if attention == "flash_attention_2" and not device.startswith("cuda"):
        return "--attention flash_attention_2 needs a CUDA GPU (and the flash-attn package)"
    if prefix and model.scoring != "yes-no":
        return f"--prefix {prefix} applies to decoder rerankers (a prompt every pair shares); {model.name} is not one"
    if prefix and backend not in ("torch", "fake"):
        return f"--prefix {prefix} runs on torch only"
    return None


def expand_cases(grid: Grid, skip: Callable[[str, str], str | None] | None = None) -> list[Case]:
    """models x backends x dtypes x threads x orders x attentions x prefixes x depths x batch sizes, in the
    order they run.

    Batch sizes ascend within each (model, backend, dtype, threads, order, ..., depth) so that after an
    out-of-memory case the larger batch sizes can be skipped. `skip(backend, dtype)` says why a combination
    cannot run here, `feature_skip` why a speed feature does not apply; such cases stay in the list and become
    skipped rows.
    """
    cases = []
    points = itertools.product(
        grid.models,
        grid.backends,
        grid.dtypes,
        grid.thread_counts,
        grid.orders,
        grid.attentions,
        grid.prefixes,
        grid.depths,
    )
    expanded = ((*point, batch) for point in points for batch in effective_batches(grid.batch_sizes, point[-1]))
    for index, (model, backend, dtype, n_threads, order, attention, prefix, depth, batch) in enumerate(expanded):
        why = (skip(backend, dtype) if skip else None) or feature_skip(model, backend, grid.device, attention, prefix)
        cases.append(
            Case(
                index=index,
                model=model,
                backend=backend,
                dtype=dtype,
                device=grid.device,
                batch_size=batch,
                depth=depth,
                max_length=grid.max_length if grid.max_length is not None else model.max_length,
                order=order,
                threads=n_threads,
                workload=grid.workload,
                seed=grid.seed,
                skip=why,
                attention=attention,
                prefix=prefix,
            )
        )
    return cases
