"""The memory model against torch's fake-tensor memory tracker, and the parameter counts of the catalog."""

import pytest
from tiny_models import DEBERTA_V3, MODERNBERT

from rerank_bench.catalog import load_catalog
from rerank_bench.willrun.memory_model import (
    ArchShape,
    activation_bytes,
    max_batch,
    peak_mib,
    usable_memory_mib,
    weights_bytes,
)

GRID = [(1, 16), (8, 128), (32, 256), (8, 512), (64, 32), (2, 384)]
SHAPES = [(384, 12, 1536), (256, 4, 1024), (768, 12, 3072)]


def tracked_bytes(config, batch, length, causal=False):
    """Peak activation bytes of one forward of `config`'s model, built and run on fake tensors (no weights are
    made; transformers' own initialisation reads values, so it is switched off). A causal reranker runs as
    the yes/no scorer runs it: no KV cache, logits at the last position only."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from transformers.initialization import no_init_weights

    builder = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    forward = {"logits_to_keep": 1, "use_cache": False} if causal else {}
    with FakeTensorMode(), no_init_weights():
        model = builder.from_config(config).eval()
        ids = torch.zeros((batch, length), dtype=torch.long)
        mask = torch.ones((batch, length), dtype=torch.long)
        tracker = MemTracker()
        tracker.track_external(model)
        with tracker, torch.no_grad():
            model(input_ids=ids, attention_mask=mask, **forward)
        (device_peaks,) = tracker.get_tracker_snapshot("peak").values()
    return next(v for k, v in device_peaks.items() if "ACT" in str(k))


def tracked_activation_bytes(batch, length, attention, hidden, heads, intermediate):
    from transformers import BertConfig

    config = BertConfig(
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        num_labels=1,
        attn_implementation=attention,
    )
    return tracked_bytes(config, batch, length), config


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize(("hidden", "heads", "intermediate"), SHAPES)
def test_activation_formula_matches_fake_tensor_tracking(attention, hidden, heads, intermediate):
    for batch, length in GRID:
        tracked, _ = tracked_activation_bytes(batch, length, attention, hidden, heads, intermediate)
        shape = ArchShape(
            layers=2,
            hidden=hidden,
            intermediate=intermediate,
            heads=heads,
            vocab=30522,
            max_position=512,
            params=0,
            linear_params=0,
        )
        modelled = activation_bytes(shape, batch, length, "fp32", attention)
        assert modelled == pytest.approx(tracked, rel=0.10), (batch, length)


@pytest.mark.parametrize("alias", [m.alias for m in load_catalog()])  # every catalog entry
def test_meta_device_parameter_counts_equal_the_published_ones(alias):
    from rerank_bench.catalog import find_model
    from rerank_bench.willrun.assess import load_model_info

    info = load_model_info(alias, None)
    assert info.arch.params == pytest.approx(find_model(alias).params, rel=0.01)
    assert 0 < info.arch.linear_params < info.arch.params


def test_weights_and_batches_by_hand():
    shape = ArchShape(
        layers=1, hidden=4, intermediate=8, heads=2, vocab=10, max_position=16, params=1000, linear_params=600
    )
    assert weights_bytes(shape, "fp32") == 4000 and weights_bytes(shape, "fp16") == 2000
    assert weights_bytes(shape, "int8") == 600 + 400 * 4
    # sdpa: max(5*BLh, 3*BLh + 2*BLf) * 4 + B*L^2 at B=2, L=3: BLh=24, BLf=48 -> (72+96)*4 + 18 = 690
    assert activation_bytes(shape, 2, 3, "fp32", "sdpa") == 690
    assert max_batch(shape, 3, "fp32", "sdpa", "cpu", available_mib=0.0) == 0


def test_usable_memory_rules():
    gpu, why = usable_memory_mib("nvidia", 12)
    assert gpu == 12 * 1024 - 690 - 32 and "CUDA context" in why
    assert usable_memory_mib("apple", 16)[0] == pytest.approx(16 * 1024 * 0.67)
    assert usable_memory_mib("cpu", 10)[0] == pytest.approx(10 * 1024 * 0.8)
    # The caching allocator's margin is on the activations (the blocks it keeps for reuse), not the weights.
    shape = ArchShape(2, 64, 256, 4, 1000, 64, 2**20, 0)
    weights, activations = weights_bytes(shape, "fp16") / 2**20, activation_bytes(shape, 8, 128, "fp16") / 2**20
    assert weights > 0 and activations > 0
    assert peak_mib(shape, 8, 128, "fp16", "sdpa", "cpu") == pytest.approx(weights + activations)
    assert peak_mib(shape, 8, 128, "fp16", "sdpa", "nvidia") == pytest.approx(weights + 1.5 * activations)


def family_config(family, attention, **values):
    from transformers import AutoConfig

    config = AutoConfig.for_model(family, num_hidden_layers=2, num_labels=1, **values)
    config._attn_implementation = attention
    return config


FAMILY_CASES = {
    # mxbai-rerank-xsmall-v1's layer shape (DeBERTa-v3 with its 512 relative positions)
    "deberta-v2": (
        "eager",
        dict(
            hidden_size=384,
            num_attention_heads=6,
            intermediate_size=1536,
            vocab_size=1000,
            pad_token_id=0,
            **DEBERTA_V3,
        ),
    ),
    # gte-reranker-modernbert-base's layer shape
    "modernbert": (
        "sdpa",
        dict(hidden_size=768, num_attention_heads=12, intermediate_size=1152, vocab_size=50368, **MODERNBERT),
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILY_CASES))
def test_family_activation_formulas_match_fake_tensor_tracking(family):
    from rerank_bench.willrun.memory_model import arch_shape

    attention, values = FAMILY_CASES[family]
    grid = [(1, 16), (8, 128), (32, 256), (8, 512), (64, 32)] + ([(2, 2048)] if family == "modernbert" else [])
    for batch, length in grid:
        config = family_config(family, attention, **values)
        tracked = tracked_bytes(config, batch, length)
        shape = arch_shape(config)
        modelled = activation_bytes(shape, batch, length, "fp32", attention)
        assert modelled == pytest.approx(tracked, rel=0.10), (batch, length)


DECODERS = {
    # Qwen3-Reranker-0.6B-wide layers: GQA 16/8 heads of 128, SwiGLU
    "qwen3": dict(hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072,
                  vocab_size=151936),
    # bge-reranker-v2-gemma's (Gemma-2B) layers: 8 heads of 256 sharing one key/value head, GeGLU 16384 wide
    "gemma": dict(hidden_size=2048, num_attention_heads=8, num_key_value_heads=1, head_dim=256, intermediate_size=16384,
                  vocab_size=256000),
    # mxbai-rerank-base-v2's (Qwen2.5-0.5B) layers: 14 heads of 64 sharing two key/value heads, biased q/k/v
    "qwen2": dict(hidden_size=896, num_attention_heads=14, num_key_value_heads=2, head_dim=64, intermediate_size=4864,
                  vocab_size=151936),
}  # fmt: skip


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("family", sorted(DECODERS))
def test_decoder_activation_formula_matches_fake_tensor_tracking(family, attention):
    """One forward pass without a KV cache and logits at the last position only, as the yes/no scorer runs it."""
    from rerank_bench.willrun.memory_model import arch_shape

    widths = DECODERS[family]
    config = family_config(family, attention, **widths, tie_word_embeddings=True, use_cache=False)
    shape = arch_shape(config, causal=True)
    assert shape.family == "decoder"
    assert (shape.kv_heads, shape.head_dim) == (widths["num_key_value_heads"], widths["head_dim"])
    for batch, length in [(1, 16), (8, 128), (32, 256), (4, 1024), (1, 2048)]:
        tracked = tracked_bytes(config, batch, length, causal=True)
        modelled = activation_bytes(shape, batch, length, "fp32", attention)
        assert modelled == pytest.approx(tracked, rel=0.10), (batch, length)
