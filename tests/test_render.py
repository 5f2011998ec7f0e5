"""What a person reads in the terminal: tables that fit, headline figures never cut, every caveat marked."""

import io

from rich.console import Console

from rerank_bench.render.sweep_view import NDCG_HEADER, SUMMARY_COLUMNS, render_summary
from rerank_bench.sweep.best_batch import best_batches


def row(batch, pps, p50, n=30, weights="random", status="ok", reason=""):
    return {
        "model": "minilm-l6",
        "weights": weights,
        "backend": "openvino",
        "dtype": "bf16",
        "order": "length",
        "threads": 2,
        "device": "cpu",
        "depth": 100,
        "batch_size": batch,
        "pairs_per_s": pps,
        "p50_ms": p50,
        "p95_ms": None if p50 is None else p50 * 1.2,
        "p50_ci_low_ms": None if p50 is None else p50 * 0.98,
        "p50_ci_high_ms": None if p50 is None else p50 * 1.02,
        "n_queries": n,
        "pair_tokens_mean": 172.4,
        "padding_efficiency": 0.93,
        "gflop_per_s": 493.2,
        "fraction_of_peak": 0.601,
        "agreement_spearman_mean": 0.99876,
        "agreement_spearman_worst": 0.9912,
        "agreement_top10_overlap": 0.99,
        "peak_rss_mib": 1234.5,
        "status": status,
        "status_reason": reason,
    }


ROWS = [
    row(8, 12345.6789, 245.3),
    row(16, 11111.1, 312.9),
    row(64, 2045.3, None, n=2),
    row(128, None, None, n=0, status="oom", reason="CUDA out of memory. Tried to allocate 2.00 GiB"),
]


def rendered(width, wide=False):
    console = Console(width=width, file=io.StringIO(), record=True)
    render_summary(ROWS, best_batches(ROWS), "results/x.csv", console, wide)
    return console.export_text()


def test_headline_figures_are_never_cut_at_ordinary_widths():
    for width in (100, 140):
        text = rendered(width)
        for figure in ("12,345.7", "245.3", "294.4", "minilm-l6 (random)", "openvino bf16 length 2t"):
            assert figure in text, (width, figure, text)
        assert "…" not in text.split("Best batch size")[0], text


def test_columns_that_do_not_fit_are_left_out_and_named_and_wide_shows_all():
    narrow = rendered(100)
    left_out = " ".join(narrow.split("not shown at this width:")[1].split())
    assert "rho mean/worst top10" in left_out and "GFLOP/s (peak)" in left_out and "(--wide shows them" in left_out
    assert "0.999/0.991" not in narrow and "493 (60%)" not in narrow
    wide = rendered(100, wide=True)
    assert "not shown at this width" not in wide
    header = next(line for line in wide.splitlines() if line.strip().startswith("model"))
    # every column, but nDCG@10, which only labelled rows have (tests/test_quality.py shows it)
    every = [c.header for c in SUMMARY_COLUMNS if c.header != NDCG_HEADER]
    assert every == [h for h in every if h in header] and NDCG_HEADER not in wide
    for figure in ("0.999/0.991 0.99", "493 (60%)", "240.4-250.2", "12,345.7", "minilm-l6 (random)"):
        assert figure in wide, figure


def test_random_weights_and_too_few_queries_are_marked_in_every_table():
    text = rendered(140)
    best = text.split("Best batch size per model and depth")[1]
    assert "minilm-l6 (random)" in best  # the summary keeps the twin marker
    assert " ok [1] " in text and "[1] too few queries for a median (2; 3 needed)" in text
    assert "1 case(s) ran too few queries for a median" in text
    assert "(random): the architecture twin with random weights" in text


def test_status_reasons_are_numbered_notes_under_the_table():
    text = rendered(100)
    assert " oom [2]" in text and "[2] CUDA out of memory. Tried to allocate 2.00 GiB" in text
    assert "3 of 4 cases ok" in text
