"""CUDA and MPS paths, through fakes at their boundary (torch.cuda, torch.mps, NVML)."""

from types import SimpleNamespace

import pytest
from fake_nvml import FakeGpu, FakeNvml

from rerank_bench.backends.memory import CudaTracker, MpsTracker, RssTracker
from rerank_bench.errors import EnvironmentProblem, UsageError
from rerank_bench.probe.device import resolve_device


def fake_torch(cuda_devices=0, mps=False):
    return SimpleNamespace(
        __version__="2.13.0",
        version=SimpleNamespace(cuda="12.4" if cuda_devices else None),
        cuda=SimpleNamespace(is_available=lambda: cuda_devices > 0, device_count=lambda: cuda_devices),
        backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)),
    )


def test_auto_prefers_cuda_then_mps_then_cpu():
    assert resolve_device("auto", fake_torch(cuda_devices=2)) == "cuda:0"
    assert resolve_device("auto", fake_torch(mps=True)) == "mps"
    assert resolve_device("auto", fake_torch()) == "cpu"
    assert resolve_device("cuda", fake_torch(cuda_devices=1)) == "cuda:0"
    assert resolve_device("cuda:1", fake_torch(cuda_devices=2)) == "cuda:1"


def test_missing_devices_are_environment_errors_and_typos_usage_errors():
    with pytest.raises(EnvironmentProblem, match="torch sees no CUDA device .*CPU-only build"):
        resolve_device("cuda", fake_torch())
    with pytest.raises(EnvironmentProblem, match="only 2 CUDA device"):
        resolve_device("cuda:2", fake_torch(cuda_devices=2))
    with pytest.raises(EnvironmentProblem, match="MPS is not available"):
        resolve_device("mps", fake_torch())
    with pytest.raises(UsageError, match="is not one of"):
        resolve_device("gpu", fake_torch())


def test_rss_tracker_sees_memory_allocated_during_the_case():
    tracker = RssTracker()
    tracker.begin()
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    result = tracker.end()
    del block
    assert result["rss_growth_mib"] >= 60
    assert result["peak_rss_mib"] >= result["rss_growth_mib"]


def test_rss_tracker_falls_back_to_sampling_without_clear_refs(tmp_path):
    import os

    status = tmp_path / "status"

    def set_rss(kib):  # atomically, as the kernel presents /proc/self/status
        (tmp_path / "status.new").write_text(f"VmRSS:\t  {kib} kB\n")
        os.replace(tmp_path / "status.new", status)

    set_rss(102400)  # no VmHWM, no clear_refs: sampling path
    tracker = RssTracker(proc=tmp_path)
    (tmp_path / "clear_refs").mkdir()  # writing to it fails like a read-only /proc
    tracker.begin()
    set_rss(204800)
    import time

    time.sleep(0.05)
    set_rss(153600)
    result = tracker.end()
    assert result == {"peak_rss_mib": 200.0, "rss_growth_mib": 100.0}


class FakeCuda:
    def __init__(self):
        self.calls = []

    def synchronize(self, device):
        self.calls.append(("sync", device))

    def reset_peak_memory_stats(self, device):
        self.calls.append(("reset", device))

    def max_memory_allocated(self, device):
        return 300 * 1024 * 1024

    def max_memory_reserved(self, device):
        return 512 * 1024 * 1024

    def get_device_properties(self, device):
        return SimpleNamespace(uuid="bbbb")


def test_cuda_tracker_resets_synchronises_and_reads_peaks_and_nvml():
    import os

    cuda = FakeCuda()
    nvml = FakeNvml([FakeGpu(uuid="GPU-aaaa"), FakeGpu(uuid="GPU-bbbb", processes=[(os.getpid(), 926 * 1024 * 1024)])])
    tracker = CudaTracker(cuda, 0, nvml_lib=nvml)
    tracker.begin()
    assert cuda.calls == [("sync", 0), ("reset", 0)]  # synchronise before the reset, so no earlier work counts
    result = tracker.end()
    assert cuda.calls[-1] == ("sync", 0)
    assert result["peak_vram_allocated_mib"] == 300.0 and result["peak_vram_reserved_mib"] == 512.0
    assert result["nvml_process_mib"] == 926.0  # matched to NVML by UUID, not by index


def test_mps_tracker_reports_driver_memory():
    mps = SimpleNamespace(
        synchronize=lambda: None,
        current_allocated_memory=lambda: 100 * 1024 * 1024,
        driver_allocated_memory=lambda: 200 * 1024 * 1024,
    )
    tracker = MpsTracker(mps)
    tracker.begin()
    result = tracker.end()
    assert result["peak_vram_allocated_mib"] == 100.0 and result["peak_vram_reserved_mib"] == 200.0


@pytest.mark.parametrize(
    "message",
    [
        "CUDA out of memory. Tried to allocate 2.00 GiB",
        "MPS backend out of memory (MPS allocated: 1.2 GB)",
        "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1073741824 bytes. Error code 12",
        "unable to mmap 4096 bytes from file </tmp/x>: Cannot allocate memory (12)",
        "std::bad_alloc",
        "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer of size 4096",
    ],
)
def test_one_classifier_knows_every_out_of_memory_message(message):
    from rerank_bench.backends.base import is_out_of_memory

    assert is_out_of_memory(RuntimeError(message))
    assert not is_out_of_memory(RuntimeError("shape mismatch: [4, 8] vs [4, 9]"))


def test_probe_counts_an_address_space_limit_as_usable_memory():
    from rerank_bench.probe.cpu import probe_cpu

    cpu = probe_cpu(use_torch=False, address_limit=lambda: 2 * 1024**3)
    assert cpu.address_space_limit_mib == 2048.0 and cpu.memory_usable_mib <= 2048.0
    assert probe_cpu(use_torch=False, address_limit=lambda: None).address_space_limit_mib is None


def test_oom_kill_counter_is_read_from_the_cgroup(tmp_path):
    from rerank_bench.probe.cpu import cgroup_oom_kills

    events = tmp_path / "sys/fs/cgroup/memory.events"
    events.parent.mkdir(parents=True)
    events.write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n")
    assert cgroup_oom_kills(tmp_path) == 2
    assert cgroup_oom_kills(tmp_path / "nowhere") is None
