import pytest

from rerank_bench.sweep.agreement import average_ranks, compare_scores, spearman, top_k_overlap


def test_average_ranks_share_ties():
    assert average_ranks([10.0, 20.0, 20.0, 5.0]) == [2.0, 3.5, 3.5, 1.0]


def test_spearman_by_hand():
    # ranks a = 1,2,3,4; b = 1,3,2,4: d^2 = 0+1+1+0 = 2, rho = 1 - 6*2/(4*15) = 0.8
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # constant scores: no defined rho
    assert spearman([1.0], [2.0]) is None


def test_top_k_overlap_counts_shared_members():
    reference = [float(i) for i in range(12)]  # top 10 are indices 2..11
    candidate = list(reference)
    candidate[11], candidate[0] = -1.0, 100.0  # 11 drops out, 0 comes in
    assert top_k_overlap(reference, candidate) == pytest.approx(0.9)
    assert top_k_overlap([1.0, 2.0], [2.0, 1.0]) == 1.0  # fewer than 10 candidates: all of them


def test_compare_scores_summarises_requests():
    reference = [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]
    candidate = [[1.0, 2.0, 3.0, 4.0], [1.5, 3.0, 2.0, 4.0]]
    result = compare_scores(reference, candidate)
    assert result.spearman_mean == pytest.approx(0.9)
    assert result.spearman_worst == pytest.approx(0.8)
    assert result.max_abs_diff == pytest.approx(1.0)
    assert result.requests == 2
    with pytest.raises(ValueError, match="the same non-empty list of requests"):
        compare_scores(reference, candidate[:1])
