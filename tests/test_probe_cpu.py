from pathlib import Path

from fake_nvml import NVML_ERROR_LIBRARY_NOT_FOUND, FakeGpu, FakeNvml

from rerank_bench.probe import hardware_fingerprint, probe_machine
from rerank_bench.probe.cpu import (
    cgroup_cpu_quota,
    cgroup_memory_limit_bytes,
    cpuinfo_fields,
    isa_from_flags,
    probe_cpu,
)


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8
"""


def test_cpuinfo_gives_model_and_flags(tmp_path):
    write(tmp_path, "/proc/cpuinfo", CPUINFO)
    model, flags = cpuinfo_fields(tmp_path)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    assert "amx_tile" in flags and "avx512_bf16" in flags


def test_isa_names_from_flags():
    assert isa_from_flags(["avx2", "fma"], "x86_64") == "AVX2"
    assert (
        isa_from_flags(["avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16"], "x86_64") == "AVX512 (BF16, VNNI)"
    )
    assert isa_from_flags(["avx512f", "avx512bw", "amx_tile", "amx_bf16"], "x86_64") == "AVX512 + AMX"
    assert isa_from_flags(["asimd"], "aarch64") == "NEON"
    assert isa_from_flags(["sse2"], "x86_64") == "DEFAULT"


def test_cgroup_v2_cpu_quota_and_memory_limit(tmp_path):
    write(tmp_path, "/sys/fs/cgroup/cpu.max", "150000 100000\n")
    write(tmp_path, "/sys/fs/cgroup/memory.max", str(4 * 1024**3) + "\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    assert cgroup_memory_limit_bytes(tmp_path) == 4 * 1024**3


def test_cgroup_v2_unlimited(tmp_path):
    write(tmp_path, "/sys/fs/cgroup/cpu.max", "max 100000\n")
    write(tmp_path, "/sys/fs/cgroup/memory.max", "max\n")
    assert cgroup_cpu_quota(tmp_path) is None
    assert cgroup_memory_limit_bytes(tmp_path) is None


def test_cgroup_v1_quota_limit_and_unlimited(tmp_path):
    write(tmp_path, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000\n")
    write(tmp_path, "/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "2147483648\n")
    assert cgroup_cpu_quota(tmp_path) == 0.5
    assert cgroup_memory_limit_bytes(tmp_path) == 2 * 1024**3
    write(tmp_path, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n")
    write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
    assert cgroup_cpu_quota(tmp_path) is None
    assert cgroup_memory_limit_bytes(tmp_path) is None


def test_usable_cores_and_memory_follow_the_cgroup(tmp_path):
    write(tmp_path, "/proc/cpuinfo", CPUINFO)
    write(tmp_path, "/sys/fs/cgroup/cpu.max", "100000 100000\n")
    write(tmp_path, "/sys/fs/cgroup/memory.max", str(1024**3) + "\n")
    cpu = probe_cpu(tmp_path, use_torch=False)
    assert cpu.usable_cores == 1
    assert cpu.cgroup_memory_limit_mib == 1024.0
    assert cpu.memory_usable_mib == 1024.0
    assert cpu.isa == "AVX512 + AMX" and cpu.isa_source == "cpuinfo"


def test_probe_with_no_gpu_library_reports_the_reason_and_no_gpus(tmp_path):
    write(tmp_path, "/proc/cpuinfo", CPUINFO)
    report = probe_machine(
        tmp_path, nvml_lib=FakeNvml(init_error=NVML_ERROR_LIBRARY_NOT_FOUND), use_torch=False
    ).to_dict()
    assert report["gpus"] == []
    assert report["gpu_reason"] == "NVML library not found: no NVIDIA driver"
    assert report["schema_version"] == 2
    assert report["cpu"]["model"] == "Intel(R) Xeon(R) Platinum 8480+"


def test_fingerprint_is_stable_and_changes_with_hardware():
    a = hardware_fingerprint("EPYC", 2, 24105.6, [])
    assert a == hardware_fingerprint("EPYC", 2, 24200.0, [])  # same GiB after rounding
    assert a != hardware_fingerprint("EPYC", 4, 24105.6, [])
    assert a != hardware_fingerprint("EPYC", 2, 24105.6, [("NVIDIA L4", 23034)])
    assert len(a) == 12


def test_probe_fingerprint_includes_gpus(tmp_path):
    write(tmp_path, "/proc/cpuinfo", CPUINFO)
    without = probe_machine(tmp_path, nvml_lib=FakeNvml([]), use_torch=False)
    with_gpu = probe_machine(tmp_path, nvml_lib=FakeNvml([FakeGpu()]), use_torch=False)
    assert without.fingerprint != with_gpu.fingerprint
    assert with_gpu.hardware_name() == "NVIDIA GeForce RTX 4090"


def test_a_masked_model_name_is_told_apart_by_family_stepping_and_caches(tmp_path):
    """Two VMs both say "AMD EPYC": Milan (family 25 model 1) and Genoa (family 25 model 17) differ here."""
    from rerank_bench.probe.cpu import cpu_identity

    def host(folder, model, l3):
        cpuinfo = (
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
            f"model\t\t: {model}\nmodel name\t: AMD EPYC\nstepping\t: 1\nphysical id\t: 0\nsiblings\t: 2\n"
            "cpu cores\t: 2\nflags\t\t: avx2 avx512f\n"
        )
        write(folder, "/proc/cpuinfo", cpuinfo)
        write(folder, "/sys/devices/system/cpu/cpu0/cache/index0/level", "3\n")
        write(folder, "/sys/devices/system/cpu/cpu0/cache/index0/type", "Unified\n")
        write(folder, "/sys/devices/system/cpu/cpu0/cache/index0/size", f"{l3}\n")
        return cpu_identity(folder)

    milan, genoa = host(tmp_path / "a", 1, "32768K"), host(tmp_path / "b", 17, "32768K")
    # the one line fingerprints have always hashed, unchanged by the object it now comes from
    assert (
        milan == "cpu cores=2 cpu family=25 model=1 siblings=2 stepping=1 vendor_id=AuthenticAMD; L3U 32768K; sockets=1"
    )
    assert "model=1" in milan and "vendor_id=AuthenticAMD" in milan and "L3U 32768K" in milan
    assert milan != genoa and host(tmp_path / "c", 17, "32768K") == genoa  # stable for the same host
    fingerprints = {hardware_fingerprint("AMD EPYC", 2, 24000, [], identity) for identity in (milan, genoa)}
    assert len(fingerprints) == 2
