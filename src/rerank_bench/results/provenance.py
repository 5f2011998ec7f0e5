"""Where a result came from: run id, tool version, git state, machine and software versions."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from pathlib import Path
from typing import Any

from rerank_bench import __version__
from rerank_bench.probe import MachineReport


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def git_state(path: Path | None = None) -> tuple[str, bool | None]:
    """(short commit, dirty) of the checkout rerank-bench runs from; ("", None) outside a checkout."""
    where = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return "", None
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return "", None


def run_metadata(machine: MachineReport, run_id: str) -> dict[str, Any]:
    """The columns every row of one run shares."""
    commit, dirty = git_state()
    sw = machine.software
    return {
        "run_id": run_id,
        "tool_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "host": machine.host,
        "hardware_fingerprint": machine.fingerprint,
        "hardware_name": machine.hardware_name(),
        "cpu_model": machine.cpu.model,
        "cpu_isa": machine.cpu.isa,
        "os": machine.os,
        "python_version": sw.get("python"),
        "torch_version": sw.get("torch"),
        "transformers_version": sw.get("transformers"),
        "sentence_transformers_version": sw.get("sentence_transformers"),
        "onnxruntime_version": sw.get("onnxruntime"),
    }


def default_output(machine: MachineReport, directory: Path = Path("results"), suffix: str = "") -> Path:
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in machine.host) or "host"
    return directory / f"{day}-{host}-{machine.fingerprint}{suffix}.csv"
