import pytest
from tiny_models import DEBERTA_V3, MODERNBERT

from rerank_bench.models.flops import EncoderShape, pair_flops, request_flops


def test_pair_flops_by_hand():
    shape = EncoderShape(layers=1, hidden=2, intermediate=4, labels=1)
    # per layer: 8*3*2*2 + 4*3*3*2 + 4*3*2*4 = 96 + 72 + 96 = 264; head: 2*4 + 2*2 = 12
    assert pair_flops(shape, 3) == 276
    assert request_flops(shape, [3, 3]) == 552


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("length", [16, 100])
def test_analytic_count_matches_flop_counter_on_the_meta_device(attn, length):
    """torch's FlopCounterMode counts every matmul of the real graph; built on the meta device, no weights."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        num_labels=1,
        attn_implementation=attn,
    )
    with torch.device("meta"):
        model = BertForSequenceClassification(config).eval()
        ids = torch.zeros((2, length), dtype=torch.long)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids)  # no mask: mask preprocessing reads values, which meta tensors lack
    counted = counter.get_total_flops()
    analytic = 2 * pair_flops(EncoderShape.from_config(config), length)
    assert analytic == pytest.approx(counted, rel=0.02)


FAMILIES = {"deberta-v2": DEBERTA_V3, "modernbert": MODERNBERT}


def counted_flops(config, length, causal=False):
    """Every matmul torch counts in one forward of `config`'s model over two pairs of `length` tokens, on fake
    tensors (these forwards read tensor values, which meta tensors lack), eager attention (torch's counter
    does not count SDPA's kernel on the CPU); a causal reranker with logits at the last position only."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from transformers.initialization import no_init_weights

    config._attn_implementation = "eager"
    builder = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    forward = {"logits_to_keep": 1, "use_cache": False} if causal else {}
    with FakeTensorMode(), no_init_weights():
        model = builder.from_config(config).eval()
        ids = torch.zeros((2, length), dtype=torch.long)
        mask = torch.ones((2, length), dtype=torch.long)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(input_ids=ids, attention_mask=mask, **forward)
    return counter.get_total_flops()


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("length", [16, 200])
def test_family_terms_match_the_flop_counter(family, length):
    """DeBERTa's relative-position scores and ModernBERT's gated feed-forward, against the matmuls torch counts
    on the real graph. DeBERTa's once-per-pass projections of the position embeddings are counted by torch,
    not by us: taken off here."""
    from transformers import AutoConfig

    config = AutoConfig.for_model(
        family,
        hidden_size=256,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=640,
        num_labels=1,
        vocab_size=1000,
        pad_token_id=0,
        **FAMILIES[family],
    )
    counted = counted_flops(config, length)
    shape = EncoderShape.from_config(config)
    once_per_pass = 2 * 2 * shape.relative_span * shape.hidden**2 * shape.layers  # DeBERTa: key_proj, query_proj
    assert 2 * pair_flops(shape, length) == pytest.approx(counted - once_per_pass, rel=0.02)


@pytest.mark.parametrize("family", ["qwen3", "qwen2"])
@pytest.mark.parametrize("length", [16, 200])
def test_decoder_count_matches_the_flop_counter(length, family):
    """A Qwen3 (Qwen3-Reranker) or Qwen2 (mxbai-rerank v2: biased q/k/v, no per-head norms) decoder with
    grouped-query attention and SwiGLU, logits at the last position only (as the yes/no scorer asks for them),
    against the matmuls torch counts."""
    from transformers import AutoConfig

    config = AutoConfig.for_model(
        family,
        hidden_size=256,
        num_hidden_layers=3,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=64,
        intermediate_size=640,
        vocab_size=5000,
        use_cache=False,
    )
    counted = counted_flops(config, length, causal=True)
    assert 2 * pair_flops(EncoderShape.from_config(config, causal=True), length) == pytest.approx(counted, rel=0.02)
