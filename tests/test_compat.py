import pytest

from rerank_bench.sweep.support import DeviceTraits, missing_packages, skip_reason

AVX512_BF16 = DeviceTraits("cpu", frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}))
AVX2 = DeviceTraits("cpu", frozenset({"avx2", "fma"}))
T4 = DeviceTraits("cuda", cuda_capability=(7, 5), ort_providers=("CPUExecutionProvider",))
A100 = DeviceTraits("cuda", cuda_capability=(8, 0), ort_providers=("CUDAExecutionProvider", "CPUExecutionProvider"))


@pytest.mark.parametrize(
    ("backend", "dtype", "device", "fragment"),
    [
        ("torch", "fp32", AVX2, None),
        ("torch", "bf16", AVX512_BF16, None),
        ("torch", "bf16", AVX2, "no native bf16"),
        ("torch", "fp16", AVX512_BF16, "no native fp16"),
        ("torch", "int8", AVX512_BF16, "int8 runs on --backend onnx"),
        ("onnx", "int8", AVX2, None),
        ("onnx", "fp16", AVX512_BF16, "runs fp32, int8"),
        ("onnx", "bf16", AVX512_BF16, "runs fp32, int8"),
        ("openvino", "bf16", AVX512_BF16, None),
        ("openvino", "bf16", AVX2, "no native bf16"),
        ("openvino", "fp32", A100, "not on CUDA"),
        ("torch", "bf16", T4, "compute capability 8.0"),
        ("torch", "fp16", T4, None),
        ("torch", "bf16", A100, None),
        ("onnx", "fp32", T4, "CUDAExecutionProvider"),
        ("onnx", "fp32", A100, None),
        ("onnx", "fp32", DeviceTraits("mps"), "MPS"),
    ],
)
def test_skip_rules(backend, dtype, device, fragment):
    reason = skip_reason(backend, dtype, device, [])
    if fragment is None:
        assert reason is None
    else:
        assert reason is not None and fragment in reason


def test_missing_packages_name_the_extra():
    found = {"onnxruntime"}
    missing = missing_packages("onnx", find_spec=lambda name: object() if name in found else None)
    assert missing == ["onnx"]
    reason = skip_reason("onnx", "fp32", AVX2, missing)
    assert "pip install 'rerank-bench[onnx]'" in reason
