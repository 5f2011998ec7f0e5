"""Static (calibrated) int8 for the exported backends: what each variant sets, and the calibration requests.

Calibration requests come from the workload but never from the requests a sweep scores for agreement or
relevance: a synthetic workload's are drawn with their own seed ("calibration", where cases use SEED:DEPTH);
a file's are its requests after the first `reserved` (the agreement and quality requests come from the
front). CALIBRATION_REQUESTS requests of CALIBRATION_DEPTH documents: 128 pairs, the sample size NNCF's
and ONNX Runtime's examples use for BERT-size models.

Variants (the dtype column names them; backend_options says what was set):
- onnx `int8-static`: `onnxruntime.quantization.quantize_static`, QDQ format, per-channel QInt8 weights,
  QUInt8 activations with MinMax ranges, the weight MatMuls only (`MatMulConstBOnly`: attention's
  activation x activation products stay fp32, where a shared scale loses most), on the fused graph, with
  the classifier head left in fp32.
- openvino `int8-static`: `nncf.quantize` with `model_type=TRANSFORMER` (NNCF's transformer patterns: no
  quantizers on softmax, layer-norm and GELU inputs), the MIXED preset (asymmetric activations, symmetric
  weights), fast bias correction, and the classifier head in its ignored scope.
- openvino `int8-sq`: the same with SmoothQuant (alpha 0.95 on MatMuls, NNCF's transformer default), which
  moves activation outliers into the weights before quantizing.
- `int8-ac`: int8 chosen by the ranking it keeps, on VALIDATION_REQUESTS requests held apart from
  calibration, agreement and relevance (their own seed, or a file's requests after the calibration ones):
  onnx: dynamic int8 (per-channel QInt8 weights, the fastest int8 on CPUs without VNNI as measured here)
  with the most sensitive weight ops kept in fp32 until the mean Spearman against fp32 reaches AC_FLOOR
  (`choose_exclusions`); openvino: `nncf.quantize_with_accuracy_control` with that Spearman as its
  validation function and 1 - AC_FLOOR as the largest drop. The ops kept in fp32 are named in
  backend_options, and the export is cached under the floor.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rerank_bench.errors import ModelError

CALIBRATION_REQUESTS = 8
CALIBRATION_DEPTH = 16
CALIBRATION_SEED = "calibration"
SMOOTH_QUANT_ALPHA = 0.95


def calibration_recipe(workload: dict[str, Any], reserved: int) -> dict[str, Any]:
    """Where the calibration requests come from, as plain data (part of the export's cache key)."""
    if workload["kind"] == "file":
        return {"kind": "file", "path": workload["path"], "reserved": reserved}
    return {"kind": "synthetic", "doc_tokens": workload["doc_tokens"]}


def recipe_digest(recipe: dict[str, Any] | None) -> str:
    if recipe is None:
        return ""
    identity = dict(recipe)
    if identity.get("kind") == "file":
        from rerank_bench.workload.requests import workload_digest

        identity["content"] = workload_digest(Path(identity["path"]))
        identity.pop("path")
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


def calibration_pairs(recipe: dict[str, Any] | None, tokenizer: Any, max_length: int) -> list[tuple[str, str]]:
    from rerank_bench.workload.requests import (
        LengthSpec,
        load_workload_file,
        single_token_words,
        synthetic_requests,
    )

    recipe = recipe or {"kind": "synthetic", "doc_tokens": {"kind": "rag", "low": 0, "high": 0}}
    if recipe["kind"] == "file":
        file_requests = load_workload_file(Path(recipe["path"]))[recipe["reserved"] :]
        if not file_requests:
            raise ModelError(
                f"calibrating int8 needs requests in {recipe['path']} beyond the first {recipe['reserved']} "
                "(those are scored for agreement and relevance, so they are never calibrated on)",
                "add requests to the workload, or use dynamic int8 (--dtype int8)",
            )
        chosen = file_requests[:CALIBRATION_REQUESTS]
        return [(r.query, d) for r in chosen for d in r.documents[:CALIBRATION_DEPTH]]
    words = single_token_words(tokenizer)
    spec = LengthSpec(**recipe["doc_tokens"])
    requests = synthetic_requests(
        words, CALIBRATION_DEPTH, spec, max_length, seed=CALIBRATION_SEED, count=CALIBRATION_REQUESTS
    )
    return [(r.query, d) for r in requests for d in r.documents]


def calibration_features(
    pairs: list[tuple[str, str]], tokenizer: Any, names: list[str], max_length: int, batch: int = 8
) -> list[dict[str, Any]]:
    """Batches of tokenized pairs as numpy inputs named as the exported graph names them."""
    out = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        encoded = tokenizer(
            [q for q, _ in chunk],
            [d for _, d in chunk],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        out.append({name: encoded[name].astype("int64") for name in names if name in encoded})
    return out


def head_nodes(names: list[str]) -> list[str]:
    """The classifier's nodes in an exported graph (kept in higher precision: one output, tiny work), and the
    names ONNX Runtime's dynamic quantizer gives a Gemm it first rewrites as MatMul + Add (`{name}_MatMul`,
    onnxruntime/quantization/onnx_model.py): excluding the Gemm's own name alone lets its MatMul be quantized."""
    head = [n for n in names if "classifier" in n or "/pooler/" in n or n.startswith("pooler")]
    return head + [f"{n}_MatMul" for n in head if n.endswith("Gemm")]


def quantize_onnx_static(folder: Path, features: list[dict[str, Any]]) -> str:
    """Replace folder/model.onnx (fp32, fused) with its static QDQ int8 form; returns what was set."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(features)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.items, None)

    source = folder / "model.onnx"
    graph = onnx.load(str(source), load_external_data=False).graph
    names = {node.name for node in graph.node}
    keep = head_nodes(sorted(names))
    target = folder / "model_int8.onnx"
    quantize_static(
        str(source),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=keep,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"MatMulConstBOnly": True, "ActivationSymmetric": False, "WeightSymmetric": True},
    )
    target.replace(source)
    return (
        f"static int8 (QDQ, per-channel QInt8 weights, QUInt8 MinMax activations, weight MatMuls only, "
        f"{sum(1 for n in keep if n in names)} head nodes fp32, {len(features)} calibration batches)"
    )


def quantize_openvino(model: Any, features: list[dict[str, Any]], dtype: str) -> tuple[Any, str]:
    """NNCF post-training quantization of an OpenVINO model; returns (quantized model, what was set)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    names = [op.get_friendly_name() for op in model.get_ops()]
    keep = head_nodes(names)
    smooth = SMOOTH_QUANT_ALPHA if dtype == "int8-sq" else -1.0  # -1: SmoothQuant off
    advanced = AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=smooth))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(features),
        preset=nncf.QuantizationPreset.MIXED,
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(features),
        fast_bias_correction=True,
        ignored_scope=nncf.IgnoredScope(names=keep, validate=False) if keep else None,
        advanced_parameters=advanced,
    )
    what = f"SmoothQuant alpha {smooth:.2f}, " if smooth > 0 else ""
    return quantized, (
        f"NNCF {nncf.__version__} static int8 ({what}transformer patterns, mixed preset, fast bias correction, "
        f"{sum(1 for n in keep if n in names)} head ops fp32, {len(features)} calibration batches)"
    )


# int8-ac: quantization that keeps the ranking. Its floor is fixed rather than tune's --min-agreement, so one
# export (cached) serves every run; it sits above tune's default 0.99 because it is met on requests held apart
# from the ones tune reports agreement on, and a floor met exactly on one set is missed half the time on another.
AC_FLOOR = 0.995  # mean Spearman against fp32 over the validation requests
# NNCF reverts one group of quantizers an iteration and validates again; on MiniLM-L6 it ran past 10 minutes
# without meeting the drop (measured here), so it stops after this many and says whether the drop was met
AC_MAX_ITERATIONS = 8
VALIDATION_REQUESTS = 8
VALIDATION_SEED = "validation"


def validation_pairs(recipe: dict[str, Any] | None, tokenizer: Any, max_length: int) -> list[list[tuple[str, str]]]:
    """Requests (each a list of pairs) that int8-ac's accuracy control ranks on: never calibrated on, never
    scored for the reported agreement (a synthetic workload's with their own seed; a file's after the
    calibration requests)."""
    from rerank_bench.workload.requests import LengthSpec, load_workload_file, single_token_words, synthetic_requests

    recipe = recipe or {"kind": "synthetic", "doc_tokens": {"kind": "rag", "low": 0, "high": 0}}
    if recipe["kind"] == "file":
        start = recipe["reserved"] + CALIBRATION_REQUESTS
        chosen = load_workload_file(Path(recipe["path"]))[start : start + VALIDATION_REQUESTS]
        if not chosen:
            raise ModelError(
                f"int8-ac ranks on requests of {recipe['path']} after the first {start} (agreement, relevance and "
                "calibration use those): the file has none",
                "add requests to the workload, or use --dtype int8-static",
            )
        return [[(r.query, d) for d in r.documents[:CALIBRATION_DEPTH]] for r in chosen]
    words = single_token_words(tokenizer)
    spec = LengthSpec(**recipe["doc_tokens"])
    requests = synthetic_requests(
        words, CALIBRATION_DEPTH, spec, max_length, seed=VALIDATION_SEED, count=VALIDATION_REQUESTS
    )
    return [[(r.query, d) for d in r.documents] for r in requests]


def mean_agreement(reference: list[list[float]], scores: list[list[float]]) -> float:
    """Mean Spearman over requests (a request whose rho is undefined counts as 0: its ranking was lost)."""
    from rerank_bench.common.stats import spearman

    values = [spearman(a, b) for a, b in zip(reference, scores, strict=True)]
    return sum(v if v is not None else 0.0 for v in values) / len(values)


def choose_exclusions(nodes: list[str], agreement_of: Any, floor: float) -> tuple[list[str], float, int]:
    """The fewest nodes to keep in fp32 so that the rest in int8 keeps `floor`: every node in int8 first; if
    that falls short, each node's sensitivity (the agreement gained by keeping it alone in fp32), then the
    most sensitive k kept, k doubling until the floor holds and then bisected down. `agreement_of(excluded)`
    quantizes all but `excluded` and measures. Returns (excluded, its agreement, how many were measured)."""
    measured = 0

    def of(excluded: list[str]) -> float:
        nonlocal measured
        measured += 1
        return agreement_of(set(excluded))

    everything = of([])
    if everything >= floor or not nodes:
        return [], everything, measured
    gains = {n: of([n]) - everything for n in nodes}
    ranked = sorted(nodes, key=lambda n: -gains[n])
    k, value = 1, None
    while True:
        value = of(ranked[:k])
        if value >= floor or k >= len(ranked):
            break
        k = min(len(ranked), 2 * k)
    if value < floor:  # even all in fp32 but the rest: keep everything, no int8 at all, said so by the caller
        return ranked, value, measured
    low, high, best = k // 2, k, value  # low fails (or is 0), high holds
    while high - low > 1:
        middle = (low + high) // 2
        got = of(ranked[:middle])
        if got >= floor:
            high, best = middle, got
        else:
            low = middle
    return ranked[:high], best, measured


def quantize_onnx_ac(folder: Path, validation: list[list[dict[str, Any]]], floor: float = AC_FLOOR) -> str:
    """Replace folder/model.onnx (fp32, fused) with dynamic int8 that keeps the ranking: every weight MatMul
    and fused Attention in int8 (per-channel QInt8 weights), save the fewest kept in fp32 for the mean
    Spearman against fp32 on the validation requests to reach `floor` (choose_exclusions). `validation`: per
    request, its batches of graph inputs. Returns what was set, the kept nodes named."""
    import tempfile

    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = folder / "model.onnx"
    graph = onnx.load(str(source), load_external_data=False).graph
    constants = {init.name for init in graph.initializer}
    head = set(head_nodes([node.name for node in graph.node]))
    candidates = [
        node.name
        for node in graph.node
        if node.name not in head
        and (node.op_type == "Attention" or node.op_type == "MatMul" and node.input[1] in constants)
    ]

    def scores(path: Path) -> list[list[float]]:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        accepted = {i.name for i in session.get_inputs()}
        out = []
        for batches in validation:
            logits = [session.run(None, {k: v for k, v in b.items() if k in accepted})[0] for b in batches]
            out.append(np.concatenate([x[:, 0] if x.ndim == 2 else x for x in logits]).astype(float).tolist())
        return out

    reference = scores(source)
    work = Path(tempfile.mkdtemp(prefix="int8-ac-", dir=folder))

    def build(excluded: set[str], target: Path) -> None:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            weight_type=QuantType.QInt8,
            # only the searched ops: the embeddings' Gather in int8 would cost ranking that no choice here undoes
            op_types_to_quantize=["MatMul", "Attention", "Gemm"],
            nodes_to_exclude=sorted(head | excluded),
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )

    def agreement_of(excluded: set[str]) -> float:
        target = work / "candidate.onnx"
        build(excluded, target)
        return mean_agreement(reference, scores(target))

    kept, value, measured = choose_exclusions(candidates, agreement_of, floor)
    build(set(kept), folder / "model_int8.onnx")
    (folder / "model_int8.onnx").replace(source)
    for leftover in work.iterdir():
        leftover.unlink()
    work.rmdir()
    shown = ", ".join(kept[:12]) + (f" and {len(kept) - 12} more" if len(kept) > 12 else "")
    status = "" if value >= floor else f" (floor NOT met even so: {value:.4f})"
    return (
        f"accuracy-controlled dynamic int8 (per-channel QInt8 weights; {len(candidates) - len(kept)} of "
        f"{len(candidates)} weight ops in int8, kept in fp32: {shown or 'none'}; mean Spearman {value:.4f} >= "
        f"{floor} against fp32 on {len(validation)} held-apart requests, {measured} candidates measured){status}"
    )


def quantize_openvino_ac(
    model: Any, features: list[dict[str, Any]], validation: list[list[dict[str, Any]]], floor: float = AC_FLOOR
) -> tuple[Any, str]:
    """NNCF's accuracy-controlled quantization (`nncf.quantize_with_accuracy_control`) of an OpenVINO model: the
    int8-static settings, then NNCF reverts the quantizers that cost the most until the validation function,
    the mean Spearman against fp32 on the validation requests, drops by at most 1 - floor."""
    import nncf
    import numpy as np
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    names = [op.get_friendly_name() for op in model.get_ops()]
    keep = head_nodes(names)
    reference_model = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def scores_of(compiled: Any, items: Any) -> list[list[float]]:
        accepted = {name for port in compiled.inputs for name in port.get_names()}
        out = []
        for batches in items:
            logits = [compiled({k: v for k, v in b.items() if k in accepted})[0] for b in batches]
            out.append(np.concatenate([x[:, 0] if x.ndim == 2 else x for x in logits]).astype(float).tolist())
        return out

    def key(item: dict[str, Any]) -> bytes:
        return item["input_ids"].tobytes() + repr(item["input_ids"].shape).encode()

    items = [batches[0] for batches in validation]  # one request a validation item (one batch each)
    reference = dict(zip(map(key, items), scores_of(reference_model, [[i] for i in items]), strict=True))

    def validate(compiled: Any, subset: Any) -> tuple[float, list[float]]:
        # NNCF passes the validation items, or a subset of them when it ranks quantizers: each request's
        # agreement against its own fp32 scores, found by the request's token ids. The per-item values are
        # returned too, so NNCF ranks by them instead of running the items itself.
        from rerank_bench.common.stats import spearman

        chosen = list(subset)
        got = scores_of(compiled, [[i] for i in chosen])
        values = [spearman(reference[key(i)], g) or 0.0 for i, g in zip(chosen, got, strict=True)]
        return sum(values) / len(values), values

    before = sum(1 for op in model.get_ops() if op.get_type_name() == "FakeQuantize")
    quantized = nncf.quantize_with_accuracy_control(
        model,
        calibration_dataset=nncf.Dataset(features),
        validation_dataset=nncf.Dataset(items),
        validation_fn=validate,
        max_drop=1.0 - floor,
        drop_type=nncf.DropType.ABSOLUTE,
        preset=nncf.QuantizationPreset.MIXED,
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(features),
        fast_bias_correction=True,
        ignored_scope=nncf.IgnoredScope(names=keep, validate=False) if keep else None,
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(max_num_iterations=AC_MAX_ITERATIONS),
    )
    quantizers = sum(1 for op in quantized.get_ops() if op.get_type_name() == "FakeQuantize") - before
    final, _ = validate(ov.Core().compile_model(quantized, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), items)
    missed = "" if final >= floor - 1e-9 else f" (the drop NOT met within {AC_MAX_ITERATIONS} iterations: {final:.4f})"
    return quantized, (
        f"NNCF {nncf.__version__} accuracy-controlled int8 (transformer patterns, mixed preset, {quantizers} "
        f"quantizers left after reverting the costliest; mean Spearman {final:.4f} against fp32 on "
        f"{len(validation)} held-apart requests, max drop {1.0 - floor:.3f}){missed}"
    )


def validation_features(
    recipe: dict[str, Any] | None, tokenizer: Any, names: list[str], max_length: int
) -> list[list[dict[str, Any]]]:
    """The validation requests, each as its batches of graph inputs."""
    return [
        calibration_features(pairs, tokenizer, names, max_length)
        for pairs in validation_pairs(recipe, tokenizer, max_length)
    ]
