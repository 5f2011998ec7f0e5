"""Rich rendering of a probe report (display only: the data is MachineReport.to_dict())."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def render_probe(report: dict[str, Any], console: Console) -> None:
    cpu = report["cpu"]
    table = Table(title=f"rerank-bench probe · fingerprint {report['fingerprint']}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("host", report["host"])
    table.add_row("CPU", f"{cpu['model']} ({cpu['architecture']})")
    table.add_row(
        "cores",
        f"{cpu['usable_cores']} usable · {cpu['logical_cores']} logical · {_fmt(cpu['physical_cores'])} physical"
        + (f" · cgroup quota {cpu['cgroup_cpu_quota']:.2f}" if cpu["cgroup_cpu_quota"] else ""),
    )
    table.add_row("vector ISA", f"{cpu['isa']} (from {cpu['isa_source']}; flags: {_fmt(cpu['isa_flags'])})")
    memory = f"{cpu['ram_total_mib'] / 1024:,.1f} GiB total · {cpu['ram_available_mib'] / 1024:,.1f} GiB available"
    if cpu["cgroup_memory_limit_mib"] is not None:
        memory += f" · cgroup limit {cpu['cgroup_memory_limit_mib'] / 1024:,.1f} GiB"
    table.add_row("memory", memory)
    if report["gpus"]:
        for gpu in report["gpus"]:
            table.add_row(
                f"GPU {gpu['index']}",
                f"{_fmt(gpu['name'])} · {_fmt(gpu['memory_total_mib'])} MiB total, "
                f"{_fmt(gpu['memory_free_mib'])} MiB free"
                f" · CC {_fmt(gpu['compute_capability'])} · {_fmt(gpu['power_limit_w'])} W "
                f"· MIG {_fmt(gpu['mig_mode'])}"
                f" · cuda:{_fmt(gpu['cuda_index'])}",
            )
        table.add_row(
            "NVIDIA driver", f"{_fmt(report['nvidia_driver_version'])} (CUDA {_fmt(report['cuda_driver_version'])})"
        )
    else:
        table.add_row("NVIDIA GPUs", f"none: {report['gpu_reason']}")
    if report["gpus"] and report["gpu_reason"]:
        table.add_row("GPU note", report["gpu_reason"])
    mps = report["mps"]
    table.add_row("Apple MPS", "available" if mps["available"] else f"no: {mps['reason']}")
    sw = report["software"]
    build = (
        sw.get("torch_cuda")
        and f"CUDA {sw['torch_cuda']}"
        or sw.get("torch_hip")
        and f"ROCm {sw['torch_hip']}"
        or "CPU"
    )
    table.add_row("torch", f"{_fmt(sw.get('torch'))} ({build} build)")
    table.add_row("transformers", _fmt(sw.get("transformers")))
    table.add_row("sentence-transformers", _fmt(sw.get("sentence_transformers")))
    table.add_row("onnxruntime", f"{_fmt(sw.get('onnxruntime'))} · providers: {_fmt(sw.get('onnxruntime_providers'))}")
    table.add_row("python", _fmt(sw.get("python")))
    console.print(table)
