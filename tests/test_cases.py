"""The sweep grid is expanded into plain data before anything runs."""

import pytest

from rerank_bench.common.case_key import case_id_for
from rerank_bench.common.options import parse_int_list, parse_str_list
from rerank_bench.errors import UsageError
from rerank_bench.models.resolve import resolve_model
from rerank_bench.sweep.cases import Grid, expand_cases


def fake(spec="fake:"):
    return resolve_model(spec)


def test_grid_is_models_x_depths_x_batches_with_batches_ascending():
    models = [fake("fake:a=1"), fake("fake:b=1")]
    cases = expand_cases(Grid(tuple(models), (32, 8, 16), (10, 50), "cpu", (2,), "rag", 0))
    # depth 10 holds 10 pairs: batches 16 and 32 are both one batch of 10, measured once as batch 10
    assert len(cases) == 2 * (2 + 3)
    first_model = [(c.depth, c.batch_size) for c in cases if c.model.spec == "fake:a=1"]
    assert first_model == [(10, 8), (10, 10), (50, 8), (50, 16), (50, 32)]
    assert [c.index for c in cases] == list(range(10))
    assert len({c.case_id for c in cases}) == 10


def test_case_key_holds_every_setting_and_ids_are_stable():
    (case,) = expand_cases(Grid((fake(),), (8,), (10,), "cpu", (2,), "fixed:100", 7, max_length=256))
    key = case.key()
    assert key["batch_size"] == 8 and key["depth"] == 10 and key["max_length"] == 256
    assert key["workload"] == "fixed:100" and key["seed"] == 7 and key["threads"] == 2
    assert key["backend"] == "torch" and key["dtype"] == "fp32" and key["weights"] == "random"
    # ids compare values as text, so a key read back from a CSV gives the same id
    assert case.case_id == case_id_for({k: str(v) for k, v in key.items()})
    (other,) = expand_cases(Grid((fake(),), (8,), (10,), "cpu", (2,), "fixed:100", 8, max_length=256))
    assert other.case_id != case.case_id


def test_parse_int_list():
    assert parse_int_list("8, 16,32,16", "--batch-size") == (8, 16, 32)
    with pytest.raises(UsageError, match="--batch-size takes a comma list of integers, and 'x' is not one"):
        parse_int_list("8,x", "--batch-size")
    with pytest.raises(UsageError, match="at least 1"):
        parse_int_list("0", "--depth")
    with pytest.raises(UsageError):
        parse_int_list(" , ", "--depth")


def test_parse_str_list():
    assert parse_str_list("torch,fake", "--backend", ("torch", "fake")) == ("torch", "fake")
    with pytest.raises(UsageError, match="'onnx' is not one of torch"):
        parse_str_list("onnx", "--backend", ("torch",))


def test_max_length_beyond_the_model_is_refused_with_its_limit(tiny_bert):
    from typer.testing import CliRunner

    from rerank_bench.cli import app

    result = CliRunner().invoke(app, ["sweep", "-m", "minilm-l6", "--max-length", "4096", "--dry-run"])
    assert result.exit_code == 2
    assert "--max-length 4096 is more than minilm-l6 takes (512 tokens)" in " ".join(result.output.split())
    local = CliRunner().invoke(app, ["sweep", "-m", str(tiny_bert), "--max-length", "100000", "--dry-run"])
    assert local.exit_code == 2 and "takes (" in local.output


@pytest.mark.slow
def test_one_twin_serves_every_max_length():
    from rerank_bench.backends.hf_checkpoint import model_source

    model = resolve_model("tinybert-l2", weights="random")
    assert model_source(model, 128)[0] == model_source(model, 256)[0] == model_source(model, None)[0]


def test_speed_features_expand_as_key_fields_and_what_cannot_apply_is_a_skipped_case():
    """--attention and --prefix are grid dimensions: the default (empty) keeps every case id as it was before
    they existed; a shared prefix for a classifier, or an attention choice for an export, is a skipped case
    saying why."""
    from rerank_bench.common.case_key import KEY_FIELDS
    from rerank_bench.sweep.cases import parse_features

    grid = Grid(
        (fake(),),
        (8,),
        (10,),
        "cpu",
        (2,),
        "rag",
        0,
        backends=("torch", "onnx"),
        attentions=parse_features("auto,eager", "--attention", "auto", ("sdpa", "eager")),
        prefixes=parse_features("whole,shared", "--prefix", "whole", ("shared",)),
    )
    cases = expand_cases(grid)
    assert [(c.backend, c.attention, c.prefix) for c in cases] == [
        (b, a, p) for b in ("torch", "onnx") for a in ("", "eager") for p in ("", "shared")
    ]
    skips = {(c.backend, c.attention, c.prefix): c.skip for c in cases}
    assert skips["torch", "", ""] is None and skips["torch", "eager", ""] is None
    assert "applies to decoder rerankers" in skips["torch", "", "shared"]
    assert skips["onnx", "eager", ""] == "--attention eager is a torch setting; onnx exports fix their own attention"
    plain = cases[0]
    # the id of a case without features is the hash of the key as it was before the two fields existed
    before = {k: v for k, v in plain.key().items() if k not in ("attention", "prefix")}
    assert plain.case_id == case_id_for(before)
    assert len({c.case_id for c in cases}) == len(cases)
    assert {"attention", "prefix"} <= set(KEY_FIELDS)
    with pytest.raises(UsageError, match="--attention 'flash' is not one of auto, sdpa, eager"):
        parse_features("flash", "--attention", "auto", ("sdpa", "eager"))
    cuda_only = expand_cases(Grid((fake(),), (8,), (10,), "cpu", (2,), "rag", 0, attentions=("flash_attention_2",)))
    assert cuda_only[0].skip == "--attention flash_attention_2 needs a CUDA GPU (and the flash-attn package)"
