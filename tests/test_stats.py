"""Statistics against numbers computed by hand."""

import math
import random

import pytest

from rerank_bench.common.stats import (
    batch_means_interval,
    binom_cdf,
    clopper_pearson,
    distribution,
    median_ci,
    median_ci_ranks,
    min_samples_for,
    p50_relative_halfwidth,
    percentile,
    quantile_ci_ranks,
    summarize_latencies,
)


def test_percentile_interpolates_between_ranks():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    ten = [float(i) for i in range(1, 11)]
    assert percentile(ten, 90) == pytest.approx(9.1)  # position 8.1 -> 9 + 0.1 * (10 - 9)
    assert percentile(ten, 95) == pytest.approx(9.55)
    assert percentile(ten, 0) == 1.0 and percentile(ten, 100) == 10.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_rejects_nonsense():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="within 0..100"):
        percentile([1.0], 101)


def test_minimum_samples_per_percentile():
    # the fewest n with 1 - (q/100)^n >= 0.95: log(0.05) / log(0.95) = 58.4 -> 59; / log(0.99) = 298.1 -> 299
    assert [min_samples_for(q) for q in (50, 90, 95, 99)] == [5, 29, 59, 299]
    assert 1 - 0.95**59 >= 0.95 > 1 - 0.95**58


def test_median_ci_ranks_from_the_binomial():
    # n=5: even [x1, x5] covers the median with only 1 - 2/32 = 93.75%
    assert median_ci_ranks(5) is None
    lo, hi, coverage = median_ci_ranks(6)
    assert (lo, hi) == (1, 6) and coverage == pytest.approx(1 - 2 / 64)
    lo, hi, coverage = median_ci_ranks(10)
    # P(X<=1) = 11/1024 -> [x2, x9] covers 1 - 22/1024; [x3, x8] only 1 - 112/1024 = 89%
    assert (lo, hi) == (2, 9) and coverage == pytest.approx(1 - 22 / 1024)


def test_median_ci_and_relative_halfwidth():
    values = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0]
    assert median_ci(values) == (11.0, 18.0)
    # median 14.5, half-width (18 - 11) / 2 = 3.5
    assert p50_relative_halfwidth(values) == pytest.approx(3.5 / 14.5)
    assert p50_relative_halfwidth(values[:5]) is None


def test_summary_leaves_out_percentiles_it_cannot_support():
    latencies = [10.0, 20.0, 30.0, 40.0, 50.0]
    s = summarize_latencies(latencies)
    assert s.n == 5
    assert s.mean_ms == 30.0
    assert s.stdev_ms == pytest.approx(math.sqrt(250.0))  # sample variance: 1000 / 4
    assert s.p50_ms == 30.0
    assert s.p90_ms is None and s.p95_ms is None and s.p99_ms is None
    assert s.missing_percentiles == ("p90 needs 29 queries", "p95 needs 59 queries", "p99 needs 299 queries")
    assert s.p50_ci_low_ms is None  # n=5 has no two-sided 95% interval
    two = summarize_latencies([10.0, 30.0])
    assert two.p50_ms is None and two.missing_percentiles[0] == "p50 needs 5 queries"


def test_summary_with_enough_samples_reports_tail_percentiles():
    latencies = [float(i) for i in range(1, 301)]  # 1..300 ms
    s = summarize_latencies(latencies)
    assert s.p50_ms == pytest.approx(150.5)
    assert s.p99_ms == pytest.approx(297.01)  # position 296.01 -> 297 + 0.01
    assert s.missing_percentiles == ()
    assert s.p50_ci_low_ms < 150.5 < s.p50_ci_high_ms
    low, high = s.intervals[95]
    assert low < s.p95_ms < high and high <= 300.0
    assert s.intervals[99][1] is None  # 300 samples bound p99 from above only one-sided: no 97.5% upper end


def test_distribution_of_token_counts():
    d = distribution([10, 20, 30, 40])
    assert d == {"mean": 25.0, "p50": 25.0, "p95": pytest.approx(38.5)}


def test_median_ci_ranks_agree_with_the_normal_approximation_for_large_n():
    lo, hi, _ = median_ci_ranks(400)
    # exact binomial; the normal approximation gives 200 - 1.96 * 20 / 2 = 180.4 -> 180
    assert (lo, hi) == (180, 221)
    exact_lo, exact_hi, _ = median_ci_ranks(199)
    assert abs(exact_lo - (199 / 2 - 1.96 * 199**0.5 / 2)) <= 1.5


def test_tail_percentile_ranks_from_the_binomial():
    # n = 59, q = 0.95: P(Bin <= 51) = 0.0195 <= 0.025 < P(Bin <= 52), so x_(52) is the lower end; no upper end
    # at 97.5% (1 - 0.95^59 = 0.952 < 0.975)
    assert quantile_ci_ranks(59, 95) == (52, None)
    assert binom_cdf(51, 59, 0.95) <= 0.025 < binom_cdf(52, 59, 0.95)
    # n = 100: the upper end is x_(100): P(Bin(100, 0.95) <= 98) = 1 - 0.95^100 - 100 * 0.05 * 0.95^99 = 0.963 < 0.975
    assert quantile_ci_ranks(100, 95) == (90, 100)
    assert binom_cdf(98, 100, 0.95) == pytest.approx(1 - 0.95**100 - 100 * 0.05 * 0.95**99)


def test_failures_are_slower_than_any_reply_in_a_percentile():
    values = [10.0] * 90 + [math.inf] * 10
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == math.inf
    assert percentile(values, 89) == 10.0  # position 88.11: between two replies
    assert percentile(values, 90.5) == math.inf  # position 89.6: between the last reply and the first failure
    s = summarize_latencies(values, noun="requests")
    assert s.p95_ms == math.inf and s.p50_ms == 10.0 and s.mean_ms == math.inf


def test_batch_means_interval_by_hand_and_in_order_summaries_hold_it():
    """Ten blocks of 20 equal latencies alternating 10, 12, ...: the p95 of all 200 is 12, each block's p95 its
    value; the blocks' mean 11, sd sqrt(10/9) = 1.0541, lag-1 correlation negative (taken as 0): half-width
    2.262 x 1.0541 / sqrt(10) = 0.754 around 12. The order statistics alone give 12-12 (every rank near the
    p95 holds a 12): taken in order, the summary's interval holds both."""
    alternating = [v for i in range(10) for v in [10.0 if i % 2 == 0 else 12.0] * 20]
    low, high = batch_means_interval(alternating, 95)
    assert (low, high) == pytest.approx((12.0 - 0.754, 12.0 + 0.754), abs=5e-4)
    assert summarize_latencies(alternating).intervals[95] == (12.0, 12.0)
    assert summarize_latencies(alternating, in_order=True).intervals[95] == pytest.approx((11.246, 12.754), abs=5e-4)
    assert batch_means_interval(alternating[:199], 95) is None  # blocks of 19: a block's p95 is its maximum
    assert batch_means_interval([*alternating[:-1], math.inf], 95) is None  # a block's p95 on a failure


def test_in_order_intervals_cover_the_p95_of_correlated_latencies():
    """An AR(1) series (each value 0.9 x the last plus N(0, 1)), as a queue's latencies run: its p95 is
    1.6449 / sqrt(1 - 0.81) = 3.7743. The order statistics' 95% interval assumes independent samples and holds
    it in about half of 200 runs of 1,000; with the batch-means interval beside it, in at least nine in ten.
    On independent samples both cover."""
    phi, runs = 0.9, 200
    true_p95 = 1.6448536 / math.sqrt(1 - phi * phi)

    def series(seed: int, correlation: float) -> list[float]:
        rng = random.Random(seed)
        x, out = rng.gauss(0, 1) / math.sqrt(1 - correlation * correlation), []
        for _ in range(1000):
            x = correlation * x + rng.gauss(0, 1)
            out.append(x)
        return out

    def coverage(correlation: float, truth: float, in_order: bool) -> float:
        hits = 0
        for seed in range(runs):
            low, high = summarize_latencies(series(seed, correlation), in_order=in_order).intervals[95]
            hits += low <= truth <= high
        return hits / runs

    assert coverage(phi, true_p95, in_order=False) < 0.7
    assert coverage(phi, true_p95, in_order=True) >= 0.9
    assert coverage(0.0, 1.6448536, in_order=True) >= 0.9


def test_clopper_pearson_bounds_by_hand():
    # k = 0: the upper bound solves (1 - p)^n = 0.05
    low, high = clopper_pearson(0, 59)
    assert low == 0.0 and high == pytest.approx(1 - 0.05 ** (1 / 59), rel=1e-6)
    # 3 of 100: P(Bin(100, high) <= 3) = 0.05 and P(Bin(100, low) >= 3) = 0.05 at the bounds
    low, high = clopper_pearson(3, 100)
    assert binom_cdf(3, 100, high) == pytest.approx(0.05, abs=1e-6)
    assert 1 - binom_cdf(2, 100, low) == pytest.approx(0.05, abs=1e-6)
    assert (round(low, 4), round(high, 4)) == (0.0082, 0.0757)


def test_fractional_counts_take_the_binomial_tail_through_the_incomplete_beta():
    from rerank_bench.common.stats import regularized_beta

    # I_0.5(2, 3) = P(Bin(4, 0.5) >= 2) = 1 - 5/16; P(Bin(5, 0.2) <= 1) = I_0.8(4, 2) = 0.8^5 + 5 * 0.2 * 0.8^4
    assert regularized_beta(0.5, 2, 3) == pytest.approx(11 / 16, abs=1e-12)
    assert regularized_beta(0.8, 4, 2) == pytest.approx(0.8**5 + 0.2 * 5 * 0.8**4, abs=1e-12)
    assert regularized_beta(0.3, 2.5, 1.0) == pytest.approx(0.3**2.5, abs=1e-12)  # I_x(a, 1) = x^a
    # effective counts: continuous in the count, and between the whole counts either side
    low, high = clopper_pearson(3.0000001, 100.0000001)
    assert (low, high) == pytest.approx(clopper_pearson(3, 100), abs=1e-6)
    assert clopper_pearson(2, 100)[1] < clopper_pearson(2.5, 100.0001)[1] < clopper_pearson(3, 100)[1]
    with pytest.raises(ValueError, match="need 0 <= k <= n"):
        clopper_pearson(2.5, 2.0)


def test_paired_ratio_cancels_drift_that_unpaired_statistics_cannot():
    import random as _random

    from rerank_bench.compare.bootstrap import bootstrap_ratio, paired_ratio

    rng = _random.Random(0)
    runs, base_runs, cur_runs = [], [], []
    for run in range(3):
        pairs = []
        for q in range(40):
            machine = 1 + 0.08 * math.sin(q / 5 + run)  # the machine's speed drifts by +-8%
            request = 80 + 40 * (q % 8) / 7  # requests differ in length
            a = request * machine * rng.uniform(0.99, 1.01)
            b = request * machine * 1.10 * rng.uniform(0.99, 1.01)  # 10% more work
            pairs.append((a, b))
        runs.append(pairs)
        base_runs.append([a for a, _ in pairs])
        cur_runs.append([b for _, b in pairs])
    paired = paired_ratio(runs)
    unpaired = bootstrap_ratio(base_runs, cur_runs, "mean")
    assert paired.ratio == pytest.approx(1.10, abs=0.005)
    assert 1.09 < paired.low < paired.high < 1.11
    assert (paired.high - paired.low) < (unpaired.high - unpaired.low) / 3


class FakeClockScorer:
    """A scorer whose query takes as long as its request has tokens (1 ms per token) on a fake clock."""

    def __init__(self):
        self.now = 0.0
        self.queries = []

    def clock(self):
        return self.now

    def score(self, request, batch_size):
        self.queries.append(request)
        self.now += len(request.documents[0].split()) / 1000.0
        return [0.0] * len(request.documents)

    def reset_padding_counters(self):
        pass

    def padding_counters(self):
        return 0, 0


def unequal_requests():
    from rerank_bench.workload.records import Request

    lengths = [400, 40, 40, 40, 40, 40, 40, 40]  # one long request: a cut pass would skew the mean
    return [Request(f"q{i}", (" ".join(["w"] * n),)) for i, n in enumerate(lengths)]


def test_equal_speed_gives_equal_throughput_whatever_the_time_cap():
    """Two configurations of equal speed but different time caps are timed on whole passes of the same set,
    so they report the same throughput; cycling through requests and stopping at the cap would not."""
    from rerank_bench.sweep.timing import MeasureSettings, run_timed

    rates, passes = [], []
    for cap in (0.45, 2.1):  # cycling and stopping at the cap would give 6.25 and 7.4 queries/s here
        scorer = FakeClockScorer()
        settings = MeasureSettings(max_seconds=cap, min_queries=10**6, target_precision=1e-9, warmup_queries=0)
        m = run_timed(scorer, unequal_requests(), 1, settings, clock=scorer.clock)
        assert len(m.latencies_ms) % 8 == 0 and m.passes == len(m.latencies_ms) // 8
        assert m.stop_reason == f"time_cap ({m.passes} pass{'es' if m.passes > 1 else ''} of 8)"
        rates.append(len(m.latencies_ms) / m.measure_s)
        passes.append(m.passes)
    # a pass takes 0.68 s: the 2.1 s budget holds three (a fourth would end at 2.72 s), 0.45 s only the first
    assert passes == [1, 3]
    assert rates[0] == pytest.approx(rates[1]) and rates[0] == pytest.approx(1000 / 85)  # mean 85 tokens


def test_a_pass_is_started_only_if_it_should_end_within_the_budget():
    from rerank_bench.sweep.timing import MeasureSettings, run_timed

    for cap, expected in ((1.0, 1), (1.35, 1), (1.37, 2), (2.05, 3)):
        scorer = FakeClockScorer()
        settings = MeasureSettings(max_seconds=cap, min_queries=10**6, target_precision=1e-9, warmup_queries=0)
        m = run_timed(scorer, unequal_requests(), 1, settings, clock=scorer.clock)
        assert m.passes == expected, cap
        assert m.measure_s <= cap + 1e-9  # the budget is never overrun once a pass's length is known


def test_warm_up_is_the_longest_request_then_a_whole_timed_pass():
    from rerank_bench.sweep.timing import MeasureSettings, run_timed

    scorer = FakeClockScorer()
    settings = MeasureSettings(max_seconds=0.1, warmup_queries=1, warmup_max_seconds=100.0)
    m = run_timed(scorer, unequal_requests(), 1, settings, clock=scorer.clock)
    assert m.warmup_queries == 1 and len(scorer.queries[0].documents[0].split()) == 400
    assert len(scorer.queries) == 1 + 8 and m.passes == 1  # the warm-up, then one whole timed pass


def test_the_request_set_represents_the_mix_and_is_the_same_for_everyone():
    from rerank_bench.sweep.timing import MeasureSettings, request_set
    from rerank_bench.workload.records import Request

    pool = [Request(f"q{i}", (" ".join(["w"] * n),)) for i, n in enumerate([5, 90, 10, 70, 30, 50, 20, 60])]

    def tokens(r):
        return len(r.documents[0].split())

    chosen = request_set(pool, 4, tokens)
    # sorted 5,10,20,30,50,60,70,90: the middles of four slices are 10, 30, 60, 90, in the pool's order
    assert [tokens(r) for r in chosen] == [90, 10, 30, 60]
    assert request_set(pool, 4, tokens) == chosen and request_set(pool, 20, tokens) == pool
    sizes = [MeasureSettings().request_set_size(d) for d in (10, 20, 50, 100)]
    assert sizes == [10, 5, 3, 3] and MeasureSettings(set_size=4).request_set_size(100) == 4
