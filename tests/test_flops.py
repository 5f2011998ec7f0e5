import pytest

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
