"""Static int8: the variants as configurations, their calibration requests, and the exports themselves."""

import json

import pytest

from rerank_bench.backends import CALIBRATED, SPECS, base_dtype
from rerank_bench.backends.quantize import calibration_pairs, calibration_recipe, head_nodes, recipe_digest
from rerank_bench.errors import ModelError
from rerank_bench.sweep.support import DeviceTraits, missing_packages, skip_reason
from rerank_bench.workload.build import build_requests

CPU = DeviceTraits(kind="cpu", cpu_flags=frozenset({"avx512f", "avx512_bf16", "avx512_vnni"}))


class WordTokenizer:
    """Enough of a tokenizer for calibration_pairs: a vocabulary of single-token words."""

    def __init__(self):
        self.vocab = {
            w: i for i, w in enumerate(f"word{chr(97 + i)}{chr(97 + j)}" for i in range(20) for j in range(20))
        }
        self.all_special_tokens = []

    def get_vocab(self):
        return self.vocab

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[self.vocab.get(t, 0)] for t in texts]}


def test_variants_are_named_configurations_with_their_own_rules():
    assert base_dtype("int8-static") == base_dtype("int8-sq") == "int8" and base_dtype("bf16") == "bf16"
    assert "int8-static" in SPECS["onnx"].dtypes and "int8-sq" not in SPECS["onnx"].dtypes
    assert {"int8-static", "int8-sq"} <= set(SPECS["openvino"].dtypes)
    assert skip_reason("onnx", "int8-sq", CPU) == (
        "the onnx backend runs fp32, int8, int8-static, int8-ac, not int8-sq"
        " (int8-sq, SmoothQuant through NNCF, runs on --backend openvino)"
    )
    assert skip_reason("torch", "int8-static", CPU).endswith("(int8-static runs on --backend onnx or openvino)")
    cuda = DeviceTraits(kind="cuda", ort_providers=("CUDAExecutionProvider",))
    assert "CPU provider" in skip_reason("onnx", "int8-static", cuda)
    # NNCF is what quantizes for OpenVINO: without it the calibrated variants are skipped, naming it
    found = {"openvino"}
    assert missing_packages("openvino", "int8-static", lambda m: object() if m in found else None) == ["nncf"]
    assert missing_packages("openvino", "bf16", lambda m: object() if m in found else None) == []


def test_synthetic_calibration_never_uses_the_scored_requests():
    tokenizer = WordTokenizer()
    words = list(tokenizer.vocab)
    workload = {"kind": "synthetic", "doc_tokens": {"kind": "rag", "low": 0, "high": 0}}
    recipe = calibration_recipe(workload, reserved=64)
    pairs = calibration_pairs(recipe, tokenizer, 512)
    assert len(pairs) == 128 and pairs == calibration_pairs(recipe, tokenizer, 512)  # seeded
    scored = set()
    for depth in (10, 20, 50, 100):
        for request in build_requests(workload, words, depth, 512, seed=0):
            scored |= {(request.query, d) for d in request.documents}
    assert not scored & set(pairs)


def test_file_calibration_takes_requests_after_the_reserved_ones(tmp_path):
    path = tmp_path / "w.jsonl"
    lines = [{"query": f"q{i}", "documents": [f"doc {i} {j}" for j in range(3)]} for i in range(10)]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    recipe = calibration_recipe({"kind": "file", "path": str(path), "with_replacement": False}, reserved=8)
    pairs = calibration_pairs(recipe, WordTokenizer(), 512)
    assert {q for q, _ in pairs} == {"q8", "q9"}
    digest = recipe_digest(recipe)
    path.write_text(path.read_text() + json.dumps({"query": "q10", "documents": ["x"]}) + "\n")
    assert recipe_digest(recipe) != digest  # a changed file is a new calibration, a new cached export
    with pytest.raises(ModelError, match="beyond the first 20"):
        calibration_pairs({**recipe, "reserved": 20}, WordTokenizer(), 512)


def test_the_head_is_kept_out_of_quantization():
    names = ["/bert/encoder/layer.0/attention/self/query/MatMul", "/classifier/MatMul", "/classifier/Add"]
    assert head_nodes(names) == ["/classifier/MatMul", "/classifier/Add"]
    assert set(CALIBRATED) == {"int8-static", "int8-sq", "int8-ac"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "dtype"), [("onnx", "int8-static"), ("openvino", "int8-static"), ("openvino", "int8-sq")]
)
def test_static_int8_exports_run_and_say_what_they_set(backend, dtype, tiny_bert, tmp_path, monkeypatch):
    """A real calibrated export of a tiny BERT: it scores every document, says how it was quantized, is cached
    under a key that includes its calibration, and its scores follow the fp32 ones (Pearson on a tiny random
    model is all that can be asked of its ranking)."""
    import numpy as np

    from rerank_bench.backends import get_backend
    from rerank_bench.models.resolve import resolve_model
    from rerank_bench.workload.requests import LengthSpec, synthetic_requests

    monkeypatch.setenv("RERANK_BENCH_CACHE", str(tmp_path / "cache"))
    model = resolve_model(str(tiny_bert))
    recipe = {"kind": "synthetic", "doc_tokens": {"kind": "rag", "low": 0, "high": 0}}
    scorer = get_backend(backend).load(model, "cpu", dtype, 1, None, recipe)
    reference = get_backend("torch").load(model, "cpu", "fp32", 1, None)
    requests = synthetic_requests(reference.words(), 12, LengthSpec("rag", 0, 0), 128, seed="t", count=4)
    got = np.array([scorer.score(r, 4) for r in requests]).ravel()
    want = np.array([reference.score(r, 4) for r in requests]).ravel()
    assert got.shape == want.shape and np.isfinite(got).all()
    assert "static int8" in scorer.info.backend_options and scorer.info.export_s > 0
    if dtype == "int8-sq":
        assert "SmoothQuant" in scorer.info.backend_options
    again = get_backend(backend).load(model, "cpu", dtype, 1, None, recipe)
    assert again.info.export_s == 0.0  # found in the cache
    other = {"kind": "synthetic", "doc_tokens": {"kind": "fixed", "low": 64, "high": 64}}
    assert get_backend(backend).load(model, "cpu", dtype, 1, None, other).info.export_s > 0
    assert np.std(got) > 0  # scores that vary, not a constant from a broken graph
    if backend == "onnx":
        # a tiny random BERT's activations are no calibration target for NNCF's ranges (its Pearson there
        # was -0.29 and 0.28); ONNX Runtime's MinMax keeps them: int8 follows fp32
        assert np.corrcoef(got, want)[0, 1] > 0.5


def test_int8_ac_ranks_on_requests_held_apart_from_calibration_and_agreement():
    from rerank_bench.backends.quantize import validation_pairs

    recipe = {"kind": "synthetic", "doc_tokens": {"kind": "rag", "low": 0, "high": 0}}
    held = {pair for request in validation_pairs(recipe, WordTokenizer(), 128) for pair in request}
    calibrated = set(calibration_pairs(recipe, WordTokenizer(), 128))
    assert held and not held & calibrated


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_int8_ac_keeps_the_ranking_on_held_apart_requests(backend, tiny_bert, tmp_path, monkeypatch):
    """A real int8-ac export of a tiny BERT: it says how it was chosen (the ops kept in fp32 and the agreement
    on the held-apart requests) and, where the floor was met, its scores rank as fp32's on other requests. A
    tiny random BERT's scores differ by parts in a million within a request, so any rounding reorders them:
    ONNX Runtime's search then keeps most ops in fp32 and meets the floor; NNCF's accuracy control reverts
    quantizers by groups and may not, which its options must then say."""
    import re

    import numpy as np

    from rerank_bench.backends import get_backend
    from rerank_bench.backends.quantize import AC_FLOOR
    from rerank_bench.models.resolve import resolve_model
    from rerank_bench.sweep.agreement import spearman
    from rerank_bench.workload.requests import LengthSpec, synthetic_requests

    monkeypatch.setenv("RERANK_BENCH_CACHE", str(tmp_path / "cache"))
    model = resolve_model(str(tiny_bert))
    recipe = {"kind": "synthetic", "doc_tokens": {"kind": "rag", "low": 0, "high": 0}}
    scorer = get_backend(backend).load(model, "cpu", "int8-ac", 1, None, recipe)
    options = scorer.info.backend_options
    assert "accuracy-controlled" in options, options
    value = float(re.search(r"mean Spearman (\d\.\d+)", options).group(1))
    if backend == "onnx":
        assert value >= AC_FLOOR - 1e-9 and "kept in fp32:" in options
    if value < AC_FLOOR - 1e-9:
        assert "NOT met" in options
        return
    reference = get_backend("torch").load(model, "cpu", "fp32", 1, None)
    requests = synthetic_requests(reference.words(), 12, LengthSpec("rag", 0, 0), 128, seed="t", count=4)
    rhos = [spearman(scorer.score(r, 4), reference.score(r, 4)) for r in requests]
    assert np.mean(rhos) > 0.95, rhos
