from fake_nvml import NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_LIBRARY_NOT_FOUND, FakeGpu, FakeNvml

from rerank_bench.probe.nvml import parse_visible_devices, process_memory_mib, query_gpus


def test_no_nvml_library_is_an_empty_list_with_a_reason():
    report = query_gpus(FakeNvml(init_error=NVML_ERROR_LIBRARY_NOT_FOUND), environ={})
    assert report.gpus == []
    assert report.reason == "NVML library not found: no NVIDIA driver"


def test_driver_not_loaded_is_an_empty_list_with_a_reason():
    report = query_gpus(FakeNvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED), environ={})
    assert report.gpus == []
    assert "Driver Not Loaded" in report.reason


def test_two_gpus_report_memory_capability_power_and_driver():
    lib = FakeNvml(
        [
            FakeGpu(
                name="NVIDIA A100-SXM4-80GB", uuid="GPU-1111", total_mib=81920, used_mib=512, cc=(8, 0), power_mw=400000
            ),
            FakeGpu(name="NVIDIA L4", uuid="GPU-2222", total_mib=23034, used_mib=0, cc=(8, 9), power_mw=72000),
        ]
    )
    report = query_gpus(lib, environ={"CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert [g.name for g in report.gpus] == ["NVIDIA A100-SXM4-80GB", "NVIDIA L4"]
    a100, l4 = report.gpus
    assert a100.memory_total_mib == 81920.0 and a100.memory_used_mib == 512.0 and a100.memory_free_mib == 81408.0
    assert a100.compute_capability == "8.0" and l4.compute_capability == "8.9"
    assert l4.power_limit_w == 72.0
    assert report.driver_version == "550.54.15" and report.cuda_driver_version == "12.4"
    assert report.reason is None
    assert lib.shutdowns == 1


def test_without_pci_bus_order_two_gpus_carry_a_note_about_cuda_numbering():
    report = query_gpus(FakeNvml([FakeGpu(uuid="GPU-1"), FakeGpu(uuid="GPU-2")]), environ={})
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in report.reason


def test_a_field_that_raises_not_supported_becomes_none_with_a_note():
    lib = FakeNvml([FakeGpu(unsupported={"nvmlDeviceGetPowerManagementLimit"})])
    (gpu,) = query_gpus(lib, environ={}).gpus
    assert gpu.power_limit_w is None
    assert gpu.notes["power_limit_w"] == "not supported"
    assert gpu.memory_total_mib == 24564.0  # the other fields still arrive


def test_mig_on_is_reported_with_a_note():
    (gpu,) = query_gpus(FakeNvml([FakeGpu(mig=(1, 1))]), environ={}).gpus
    assert gpu.mig_mode == "enabled"
    assert "MIG" in gpu.notes["mig_mode"]


def test_gpu_without_mig_support_has_no_mig_mode():
    (gpu,) = query_gpus(FakeNvml([FakeGpu(mig=None)]), environ={}).gpus
    assert gpu.mig_mode is None


def test_cuda_visible_devices_maps_nvml_to_cuda_indices_by_index_and_uuid():
    uuids = ["GPU-aaaa", "GPU-bbbb", "GPU-cccc"]
    assert parse_visible_devices(None, uuids) == [0, 1, 2]
    assert parse_visible_devices("2,0", uuids) == [1, None, 0]
    assert parse_visible_devices("GPU-bbbb", uuids) == [None, 0, None]
    # CUDA stops at the first invalid entry
    assert parse_visible_devices("1,7,0", uuids) == [None, 0, None]
    assert parse_visible_devices("", uuids) == [None, None, None]


def test_query_gpus_applies_cuda_visible_devices():
    lib = FakeNvml([FakeGpu(uuid="GPU-aaaa"), FakeGpu(uuid="GPU-bbbb")])
    gpus = query_gpus(lib, environ={"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}).gpus
    assert [g.cuda_index for g in gpus] == [None, 0]


def test_process_memory_reads_this_pids_usage():
    lib = FakeNvml([FakeGpu(processes=[(10, 300 * 1024 * 1024), (42, 926 * 1024 * 1024)])])
    assert process_memory_mib(42, 0, lib) == 926.0
    assert process_memory_mib(7, 0, lib) is None
    assert process_memory_mib(42, 0, FakeNvml(init_error=NVML_ERROR_LIBRARY_NOT_FOUND)) is None
