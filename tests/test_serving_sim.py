"""will-it-run --rate: the serving simulation against queueing answers known by hand, and the command."""

import json
import math
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.willrun.rate_plan import scaled
from rerank_bench.willrun.serving_sim import (
    Conditions,
    ServerPolicy,
    find_capacity,
    service_bound_rps,
    simulate,
)

runner = CliRunner()
ONE_PAIR = [[100]]  # every request: one pair of 100 tokens


def constant(ms):
    return lambda lengths: ms


def test_md1_mean_wait_matches_pollaczek_khinchine():
    # M/D/1, service D = 10 ms, rho = 0.5: mean wait in queue rho D / (2 (1 - rho)) = 5 ms, so sojourn 15 ms
    result = simulate(50.0, ONE_PAIR, constant(10.0), ServerPolicy("per-request", batch_size=1), 40000, seed=1)
    mean = sum(result.latencies_ms) / len(result.latencies_ms)
    assert mean == pytest.approx(15.0, rel=0.05)
    assert result.utilisation == pytest.approx(0.5, abs=0.02) and result.stable
    assert min(result.latencies_ms) == pytest.approx(10.0)  # nobody is faster than the service time


def test_a_server_without_batching_holds_below_its_service_rate_and_not_above():
    policy = ServerPolicy("per-request", batch_size=1)
    below = simulate(80.0, ONE_PAIR, constant(10.0), policy, 4000, seed=2)  # 100/s service rate
    above = simulate(120.0, ONE_PAIR, constant(10.0), policy, 4000, seed=2)
    assert below.stable and below.utilisation == pytest.approx(0.8, abs=0.04)
    assert not above.stable and above.utilisation > 0.97
    # the queue of an overloaded server grows without end: the last requests wait far longer than the first
    assert above.latencies_ms[-1] > 50 * below.p95_ms
    assert service_bound_rps(ONE_PAIR, constant(10.0), policy) == pytest.approx(100.0)
    capacity = find_capacity(ONE_PAIR, constant(10.0), policy, budget_ms=1e9)
    assert 90.0 <= capacity.rate_rps < 100.0  # never at or past the service rate, whatever the budget


def test_batching_across_requests_raises_capacity():
    # 50 pairs a request; a batch costs 20 ms + 1 ms a pair. One request at a time, batches of 8: 7 batches,
    # 190 ms a request, so at most 5.3/s. Batching 32 pairs across requests: 50/32 batches of 52 ms = 81 ms.
    requests = [[100] * 50]

    def cost(lengths):
        return 20.0 + len(lengths)

    alone = find_capacity(requests, cost, ServerPolicy("per-request", batch_size=8), budget_ms=2000)
    shared = find_capacity(requests, cost, ServerPolicy("infinity", batch_size=32), budget_ms=2000)
    assert service_bound_rps(requests, cost, ServerPolicy("per-request", batch_size=8)) == pytest.approx(1000 / 190)
    assert alone.rate_rps < 1000 / 190
    assert shared.rate_rps > 1.5 * alone.rate_rps


def test_tei_batches_stay_within_their_token_budget():
    seen = []

    def cost(lengths):
        seen.append(lengths)
        return 5.0

    requests = [[300, 20, 20, 20], [10] * 6]
    padded = ServerPolicy("tei", max_batch_tokens=400, padded=True)
    simulate(500.0, requests, cost, padded, 200, seed=3)
    assert all(len(b) * max(b) <= 400 or len(b) == 1 for b in seen)
    assert any(len(b) > 1 for b in seen)
    seen.clear()
    flash = ServerPolicy("tei", max_batch_tokens=400, padded=False)
    simulate(500.0, requests, cost, flash, 200, seed=3)
    assert all(sum(b) <= 400 for b in seen) and any(len(b) * max(b) > 400 for b in seen)


def test_the_same_seed_gives_the_same_answer():
    policy = ServerPolicy("infinity", batch_size=4)
    requests = [[50, 80, 120], [60] * 5]

    def cost(lengths):
        return 1.0 + 0.01 * len(lengths) * max(lengths)

    a = simulate(30.0, requests, cost, policy, 2000, seed=9)
    b = simulate(30.0, requests, cost, policy, 2000, seed=9)
    c = simulate(30.0, requests, cost, policy, 2000, seed=10)
    assert a.latencies_ms == b.latencies_ms and a.p95_ci_ms == b.p95_ci_ms
    assert a.latencies_ms != c.latencies_ms
    low, high = a.p95_ci_ms
    assert low <= a.p95_ms <= high or math.isclose(low, high)


def _rate(*args):
    result = runner.invoke(app, ["will-it-run", "minilm-l6", "--depth", "50", *args, "--json"])
    return result, (json.loads(result.stdout) if result.stdout.strip().startswith("[") else None)


def test_rate_rows_carry_capacity_replicas_and_their_latency():
    result, rows = _rate("--hardware", "l4", "--budget-ms", "200", "--rate", "40")
    assert result.exit_code == 0, result.output
    (row,) = rows
    for key in ("rate", "capacity_rps", "capacity_rps_low", "capacity_rps_high", "replicas", "utilisation"):
        assert row[key] is not None, key
    assert row["server"].startswith("tei") and row["simulated_seconds"] > 10
    assert row["capacity_rps_low"] <= row["capacity_rps"] <= row["capacity_rps_high"]
    # replicas cover the slow end of the capacity's range; the central figure's own count is beside them
    assert row["replicas"] == math.ceil(40 / row["capacity_rps_low"]) >= row["replicas_central"]
    assert row["replicas_central"] == math.ceil(40 / row["capacity_rps"])
    low, high = row["capacity_spread_rps"]  # the central capacity over five arrival streams
    assert low <= row["capacity_rps"] <= high and high / low < 1.3
    assert row["p95_at_rate_ms"] <= 200 and 0 < row["utilisation"] < 1
    assert row["power_w"] == row["replicas"] * 72  # the L4's TDP


def test_a_rate_beyond_one_replica_needs_more_and_an_idle_miss_is_too_slow():
    _, (one,) = _rate("--hardware", "l4", "--budget-ms", "200", "--rate", "1")
    _, (many,) = _rate("--hardware", "l4", "--budget-ms", "200", "--rate", "500")
    assert one["replicas"] == 1 and many["replicas"] == math.ceil(500 / many["capacity_rps_low"]) >= 3
    result, (slow,) = _rate("--hardware", "cpu-4core-avx2-laptop", "--budget-ms", "50", "--rate", "10")
    assert result.exit_code == 1 and slow["verdict"] == "TOO SLOW" and "before any load" in slow["reason"]
    assert slow["replicas"] is None


def test_devices_at_a_rate_rank_by_power_or_by_price(tmp_path):
    """--hardware all sorts with sort_rows; four devices here keep the test short (all 20 take about a minute).
    Each device is assessed once, with two of them priced in the user's own profiles (a user's file replaces
    the shipped one of the same name); the ranking by power is the same rows with no price."""
    import dataclasses

    from rerank_bench.willrun.assess import WillRunRequest, run_will_it_run, sort_rows
    from rerank_bench.willrun.profiles import builtin_dir

    prices = {"h100": 0.50, "l4": 0.80}
    for key, price in prices.items():
        text = (builtin_dir() / f"{key}.toml").read_text()
        (tmp_path / f"{key}.toml").write_text(f"price_per_hour = {price}\n" + text)
    rows = []
    for key in ("h100", "l4", "t4", "rtx-4090"):
        request = WillRunRequest(model="minilm-l6", hardware=key, budget_ms=200, rate=40, profile_dirs=(tmp_path,))
        rows += run_will_it_run(request, None)
    assert all(r.verdict in ("RUNS", "TIGHT") for r in rows)
    by_power = sort_rows([dataclasses.replace(r, cost_per_hour=None) for r in rows], by_hardware=True)
    assert [r.power_w for r in by_power] == sorted(r.replicas * r.tdp_w for r in by_power)
    # the priced devices come first, by replicas x price, whatever their power
    by_price = sort_rows(rows, by_hardware=True)
    assert {r.hardware_key for r in by_price[:2]} == {"h100", "l4"}
    assert [r.cost_per_hour for r in by_price[:2]] == sorted(r.replicas * prices[r.hardware_key] for r in by_price[:2])
    assert all(r.cost_per_hour is None for r in by_price[2:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "40"], "--rate needs --budget-ms"),
        (["--rate", "0", "--budget-ms", "200"], "--rate 0 must be a positive"),
        (["--rate", "4", "--budget-ms", "200", "--server", "triton"], "--server 'triton' is not one of"),
        (["--max-batch-tokens", "512", "--budget-ms", "200"], "--max-batch-tokens is TEI's batching"),
        (["--rate", "4", "--budget-ms", "200", "--burstiness", "0"], "--burstiness 0 must be positive"),
    ],
)
def test_bad_rate_options_are_one_line(args, message):
    result, _ = _rate("--hardware", "l4", *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_the_p95_interval_is_centred_on_the_p95_and_widened_when_blocks_are_correlated():
    """Ten blocks of 20 equal latencies, so each block's p95 is its value. Alternating blocks (10, 12, 10, ...):
    mean 11, sd sqrt(10/9) = 1.0541, lag-1 correlation negative (taken as 0), half-width 2.262 x 1.0541 /
    sqrt(10) = 0.754, around the p95 of all 200 (12, not the blocks' mean 11). A rising run (10, 11, ..., 19):
    sd sqrt(82.5/9) = 3.0277, lag-1 correlation 57.75/82.5 = 0.7, so the half-width is widened by
    sqrt(1.7/0.3) = 2.3805: 2.262 x 3.0277 / sqrt(10) x 2.3805 = 5.1554, around the p95 of all, 19."""
    from rerank_bench.willrun.serving_sim import p95_interval

    alternating = [v for i in range(10) for v in [10.0 if i % 2 == 0 else 12.0] * 20]
    low, high = p95_interval(alternating)
    assert (low + high) / 2 == pytest.approx(12.0)
    assert (high - low) / 2 == pytest.approx(0.754, abs=5e-4)
    rising = [v for i in range(10) for v in [10.0 + i] * 20]
    low, high = p95_interval(rising)
    assert (low + high) / 2 == pytest.approx(19.0)
    assert (high - low) / 2 == pytest.approx(5.1554, abs=5e-4)
    assert p95_interval([5.0] * 100) == (5.0, 5.0)  # fewer than 20 a block: no interval to give


def test_the_p95_interval_over_seeds_never_goes_below_the_p50():
    """Two seeds give a t of 12.7: with batch times varying by sigma 1 their two p95s differ enough that the
    symmetric interval reached below zero (a plan printed a p95 range of -108 to 718 ms). A p95 is never below
    the p50: the low end stops there."""
    from rerank_bench.willrun.rate_plan import at_rate

    wide = Conditions(service_sigma=1.0)
    at = at_rate(30.0, [[60] * 8], constant(20.0), ServerPolicy("infinity", batch_size=8), wide, seeds=2)
    low, high = at.p95_ci_ms
    assert low >= at.p50_ms > 0 and high > at.p95_ms > low


def test_burstier_arrivals_wait_longer_and_lower_the_capacity():
    """D = 10 ms, rho = 0.5. Gamma gaps of shape k have a squared coefficient of variation 1/k, so by Kingman's
    approximation the mean wait is rho/(1 - rho) x (1/k)/2 x D: 5 ms for Poisson (k = 1, exact for M/D/1), about
    20 ms for k = 0.25 (the approximation is low for such variable arrivals) and about 1.25 ms for k = 4. The
    simulated waits follow that order, and so, the other way round, do the capacities within p95 <= 60 ms."""
    policy = ServerPolicy("per-request", batch_size=1)

    def mean_wait(burstiness):
        result = simulate(50.0, ONE_PAIR, constant(10.0), policy, 40000, seed=1, conditions=Conditions(burstiness))
        return sum(result.latencies_ms) / len(result.latencies_ms) - 10.0

    poisson, bursty, even = mean_wait(1.0), mean_wait(0.25), mean_wait(4.0)
    assert poisson == pytest.approx(5.0, rel=0.1)
    assert bursty > 20.0 * 0.9 and bursty > 4 * poisson
    assert even < 1.25 * 1.5 and even < poisson / 4
    plain = simulate(50.0, ONE_PAIR, constant(10.0), policy, 4000, seed=1)
    assert (
        plain.latencies_ms
        == simulate(50.0, ONE_PAIR, constant(10.0), policy, 4000, seed=1, conditions=Conditions(1.0)).latencies_ms
    )
    capacities = [
        find_capacity(ONE_PAIR, constant(10.0), policy, budget_ms=60.0, conditions=Conditions(b), seeds=2).rate_rps
        for b in (0.25, 1.0, 4.0)
    ]
    assert capacities == sorted(capacities) and capacities[0] < 0.5 * capacities[1]


def test_mg1_with_varying_batch_times_matches_pollaczek_khinchine_with_the_second_moment():
    """M/G/1: service D x a lognormal factor of mean 1 and sigma 0.5, so E[S] = D = 10 ms and
    E[S^2] = D^2 exp(sigma^2) = 100 x 1.2840 = 128.40 ms^2. At 50/s (rho = 0.5) the mean wait is
    lambda E[S^2] / (2 (1 - rho)) = 0.05 x 128.40 / 1 = 6.42 ms, so the mean sojourn is 16.42 ms (fixed
    service gave 15); the p95 rises with the spread too."""
    policy = ServerPolicy("per-request", batch_size=1)
    varied = simulate(50.0, ONE_PAIR, constant(10.0), policy, 40000, seed=1, conditions=Conditions(service_sigma=0.5))
    fixed = simulate(50.0, ONE_PAIR, constant(10.0), policy, 40000, seed=1)
    mean = sum(varied.latencies_ms) / len(varied.latencies_ms)
    assert mean == pytest.approx(16.42, rel=0.05)
    assert varied.utilisation == pytest.approx(0.5, abs=0.02)
    assert varied.p95_ms > fixed.p95_ms * 1.2


def test_tei_forms_one_batch_ahead_so_its_batches_are_smaller_at_moderate_load():
    """TEI's batching task forms the next batch as soon as the model takes the last (a channel of one): at
    moderate load it holds whatever has arrived by then, so batches are smaller than a server that waits for
    the model to finish and then takes everything queued (here 10.6 pairs against 11.8 at utilisation near
    0.6): more batches, each paying the fixed 20 ms, so the model is busier and a request that arrives just
    after a batch was formed waits for two: the p50 rises."""
    requests = [[60] * 10]

    def cost(lengths):
        return 20.0 + 0.2 * len(lengths)

    prefetch = ServerPolicy("tei", max_batch_tokens=16384, padded=True)
    waits = ServerPolicy("tei", max_batch_tokens=16384, padded=True, prefetch=False)
    ahead = simulate(30.0, requests, cost, prefetch, 3000, seed=4)
    after = simulate(30.0, requests, cost, waits, 3000, seed=4)
    assert ahead.stable and after.stable
    assert ahead.mean_batch_pairs < 0.93 * after.mean_batch_pairs
    assert ahead.utilisation > after.utilisation and ahead.p50_ms > after.p50_ms


def test_the_seeds_spread_shrinks_with_longer_runs():
    """Five seeds of a capacity search: their range is what one run of that length can say; four times the
    requests per run narrows it (about twice, as 1/sqrt(n))."""
    policy = ServerPolicy("per-request", batch_size=1)
    cost = constant(10.0)

    def spread(n):
        capacity = find_capacity(ONE_PAIR, cost, policy, budget_ms=60.0, n_requests=n, seeds=5)
        low, high = capacity.spread_rps
        assert low <= capacity.rate_rps <= high and len(capacity.seed_rates_rps) == 5
        return (high - low) / capacity.rate_rps

    short, long = spread(300), spread(4800)
    assert long < short / 2


def test_a_replayed_trace_of_constant_gaps_is_a_deterministic_arrival_process():
    """Gaps all equal, replayed at 50/s: arrivals every 20 ms exactly, so a 10 ms server never queues
    (D/D/1) and every latency is the service time; any seed gives the same stream."""
    from rerank_bench.willrun.serving_sim import arrivals_ms, trace_gaps

    gaps = trace_gaps([3.0 + 0.5 * i for i in range(40)])  # a trace at 2/s, any span
    assert gaps == (1.0,) * 39
    trace = Conditions(trace_gaps=gaps)
    assert arrivals_ms(50.0, 5, seed=3, conditions=trace) == pytest.approx([20.0, 40.0, 60.0, 80.0, 100.0])
    result = simulate(50.0, ONE_PAIR, constant(10.0), ServerPolicy("per-request", batch_size=1), 500, 7, trace)
    assert set(result.latencies_ms) == {10.0}


def test_mser_drops_the_transient_and_nothing_from_a_flat_run():
    """MSER-5 by hand: 20 values of 10 then 80 of 1 are 4 batch means of 10 and 16 of 1; dropping the first 4
    leaves 16 equal means (statistic 0), the minimum, so 20 values go. A constant run keeps everything, and a
    run too short for 4 batches is left alone."""
    from rerank_bench.willrun.serving_sim import mser_truncation

    assert mser_truncation([10.0] * 20 + [1.0] * 80) == 20
    assert mser_truncation([3.0] * 100) == 0
    assert mser_truncation([9.0, 1.0, 1.0]) == 0
    # never more than half the batches, however the run trends
    assert mser_truncation([float(i) for i in range(100)]) <= 50


def test_headroom_adds_replicas_until_each_runs_at_most_that_busy():
    from rerank_bench.willrun.rate_plan import plan_rate

    policy = ServerPolicy("per-request", batch_size=1)
    costs = (constant(10.0), constant(8.0), constant(12.0))
    plain = plan_rate(150.0, 60.0, "p95", ONE_PAIR, policy, costs, seeds=2)
    roomy = plan_rate(150.0, 60.0, "p95", ONE_PAIR, policy, costs, headroom=0.35, seeds=2)
    assert plain.replicas == math.ceil(150.0 / plain.capacity_rps_low) and plain.utilisation > 0.35
    assert not plain.headroom_bound
    assert roomy.headroom_bound and roomy.replicas > plain.replicas and roomy.utilisation <= 0.35
    # one replica fewer would run busier than the headroom: 150/s x 10 ms over n replicas
    assert 1.5 / (roomy.replicas - 1) > 0.35


def test_arrivals_trace_and_headroom_options(tmp_path):
    trace = tmp_path / "arrivals.jsonl"
    trace.write_text(
        "\n".join(json.dumps({"t": f"2026-12-03T10:00:{i // 4:02d}.{(i % 4) * 25:02d}"}) for i in range(200))
    )
    result, rows = _rate("--hardware", "l4", "--budget-ms", "200", "--arrivals", str(trace), "--headroom", "0.6")
    assert result.exit_code == 0, result.output
    (row,) = rows
    assert row["rate"] == pytest.approx(4.0)  # the trace's own pace: 4 a second
    assert "replayed from a trace of 200 timestamps" in row["server"] and row["utilisation"] <= 0.6
    bad = tmp_path / "bad.txt"
    bad.write_text("1.0\n2.0\nnoon\n")
    result, _ = _rate("--hardware", "l4", "--budget-ms", "200", "--arrivals", str(bad))
    assert result.exit_code == 2 and "line 3: 'noon' is not a timestamp" in result.output
    result, _ = _rate("--hardware", "l4", "--budget-ms", "200", "--rate", "5", "--headroom", "1.5")
    assert result.exit_code == 2 and "--headroom 1.5 must be a utilisation" in result.output


def test_a_machines_batch_time_spread_comes_from_its_sidecars(tmp_path):
    """Four passes over a set of two requests; each request's repeats sit at log offsets 0, 0.1, 0, 0.1 from
    its own level: within-request sum of squares 4 x 0.05^2 = 0.01 each, 0.02 over 6 degrees of freedom, so
    sigma = sqrt(0.02 / 6) = 0.057735 whatever the two requests' own sizes."""
    from rerank_bench.willrun.calibration import request_spread

    e = math.exp(0.1)
    latencies = [10.0, 30.0, 10.0 * e, 30.0 * e, 10.0, 30.0, 10.0 * e, 30.0 * e]
    sigma, df = request_spread(latencies, 2)
    assert df == 6 and sigma == pytest.approx(0.057735, abs=1e-6)
    assert request_spread(latencies[:4], 2) is None  # 2 degrees of freedom: too few repeats


def test_a_served_overhead_is_recovered_from_an_idle_and_a_loaded_level():
    """Rows made from the model itself: a one-client level 30 ms slower than the idle replica, and an open level
    at 40/s whose p50 is what the replica gives when 10 of those 30 ms are the server's own work on the model's
    CPU (the rest outside it). The fit finds the split back (the bisection's step aside), and names the rows
    that fed it; where even all 30 ms beside the model fall short, the rest goes on every batch."""
    from rerank_bench.willrun.served_calibration import _p50, fit_overhead, with_batch_overhead

    requests = [[60] * 8]
    policy = ServerPolicy("infinity", batch_size=8)
    cost = constant(10.0)
    plain = Conditions()
    idle = _p50(1.0, requests, cost, policy, plain) + 30.0
    split = Conditions(request_overhead_ms=20.0, request_cpu_ms=10.0)
    loaded = _p50(40.0, requests, cost, policy, split)
    rows = [
        {"load_mode": "closed", "concurrency": 1, "p50_ms": idle, "utc_time": "1", "_file": "a.csv"},
        {"load_mode": "open", "offered_rps": 40.0, "p50_ms": loaded, "utc_time": "2", "_file": "a.csv"},
    ]
    fit = fit_overhead(rows, requests, cost, policy, plain, lambda c: 100.0)
    assert fit.request_cpu_ms == pytest.approx(10.0, abs=0.05)
    assert fit.per_request_ms == pytest.approx(20.0, abs=0.05) and fit.per_batch_ms == 0.0
    assert "a.csv closed x1" in fit.source and "open 40/s" in fit.source
    # a loaded level slower than 30 ms of CPU a request explains: the rest is put on each batch
    busier = Conditions(request_cpu_ms=30.0)
    rows[1]["p50_ms"] = _p50(40.0, requests, with_batch_overhead(cost, 3.0), policy, busier)
    fit = fit_overhead(rows, requests, cost, policy, plain, lambda c: 100.0)
    assert fit.request_cpu_ms == pytest.approx(30.0, abs=0.01) and fit.per_batch_ms == pytest.approx(3.0, abs=0.05)
    assert fit_overhead(rows[1:], requests, cost, policy, plain, lambda c: 100.0) is None  # no idle level
    # TEI's x-tokenization-time on the idle level is the share beside the model, measured: 12 ms of the 30, and
    # the loaded level (simulated with 12 ms of CPU and 2 ms a batch) leaves the 2 ms for each batch
    rows[0]["server_tokenization_p50_ms"] = 12.0
    measured = Conditions(request_overhead_ms=18.0, request_cpu_ms=12.0)
    rows[1]["p50_ms"] = _p50(40.0, requests, with_batch_overhead(cost, 2.0), policy, measured)
    fit = fit_overhead(rows, requests, cost, policy, plain, lambda c: 100.0)
    assert fit.request_cpu_ms == 12.0 and fit.per_request_ms == pytest.approx(18.0, abs=0.05)
    assert fit.per_batch_ms == pytest.approx(2.0, abs=0.05) and "x-tokenization-time 12.0 ms" in fit.source


def test_a_level_that_failed_its_slo_slows_a_fit_that_would_pass_it(tmp_path):
    """One client and a light level fit an overhead under which 60/s meets a p95 of twice what it simulates
    there; a level that failed that SLO at 60/s (its requests cut short by the stop) says the server does not
    hold it, so the model's own time is slowed until the simulated p95 at 60/s reaches the SLO, and the source
    says which level did it. A failed level the fit already fails, or one judged at p99, changes nothing."""
    from rerank_bench.willrun.served_calibration import _p50, _p95, endpoint_rows, fit_overhead, with_batch_overhead

    requests = [[60] * 8]
    policy = ServerPolicy("infinity", batch_size=8)
    cost = constant(10.0)
    plain = Conditions()
    rows = [
        {"load_mode": "closed", "concurrency": 1, "p50_ms": _p50(1.0, requests, cost, policy, plain) + 5.0,
         "utc_time": "1", "_file": "a.csv"},
        {"load_mode": "open", "offered_rps": 20.0, "p50_ms": _p50(20.0, requests, cost, policy, plain) + 5.0,
         "utc_time": "2", "_file": "a.csv", "slo_verdict": "pass"},
    ]  # fmt: skip

    def p95_under(fit, rate):
        served = Conditions(
            request_overhead_ms=fit.per_request_ms,
            request_cpu_ms=fit.request_cpu_ms,
            service_sigma=fit.service_sigma,
            idle_wake_ms=fit.idle_wake_ms,
        )
        priced = with_batch_overhead(scaled(cost, fit.model_speed), fit.per_batch_ms)
        return _p95(rate, requests, priced, policy, served)

    plain_fit = fit_overhead(rows, requests, cost, policy, plain, lambda c: 100.0)
    assert plain_fit.model_speed == 1.0
    passes_at_60 = p95_under(plain_fit, 60.0)
    failed = {"load_mode": "open", "offered_rps": 60.0, "slo_ms": 2 * passes_at_60, "slo_percentile": 95.0,
              "slo_verdict": "fail", "requests_failed": 12, "p50_ms": 900.0, "utc_time": "3",
              "_file": "a.csv"}  # fmt: skip
    bounded = fit_overhead([*rows, failed], requests, cost, policy, plain, lambda c: 100.0)
    assert 1.0 < bounded.model_speed < 3.0
    assert p95_under(bounded, 60.0) >= failed["slo_ms"] > p95_under(plain_fit, 60.0)
    assert "open 60/s (p95 over" in bounded.source and "failed the SLO where the fit met it" in bounded.source
    # the one-client level is still met: a slower model leaves less of it outside
    assert bounded.per_request_ms + bounded.request_cpu_ms < plain_fit.per_request_ms + plain_fit.request_cpu_ms
    for harmless in ({**failed, "slo_ms": passes_at_60 / 2}, {**failed, "slo_percentile": 99.0}):
        assert fit_overhead([*rows, harmless], requests, cost, policy, plain, lambda c: 100.0) == plain_fit
    # a level with failed requests reaches the fit only as such a bound: read back from a file, it is kept
    # where it failed its SLO, and left out where it did not (a lagging generator's level is `invalid`)
    from rerank_bench.results.schema import COLUMN_NAMES, SCHEMA_VERSION
    from rerank_bench.results.store import write_csv

    here = {"hardware_fingerprint": "h", "backend": "endpoint", "status": "ok", "schema_version": SCHEMA_VERSION}
    levels = [{**here, **r} for r in (rows[0], failed, {**failed, "slo_verdict": "invalid", "utc_time": "4"})]
    write_csv(
        tmp_path / "levels.csv", list(COLUMN_NAMES), [{k: v for k, v in r.items() if k != "_file"} for r in levels]
    )
    kept = endpoint_rows((tmp_path,), "h")
    assert [(r["load_mode"], r.get("slo_verdict") or None) for r in kept] == [("closed", None), ("open", "fail")]


def test_a_served_spread_is_recovered_from_the_loaded_levels_p95():
    """A level simulated at 30/s with 2 ms a request on the model's CPU and 20 ms batches varying by sigma 0.5
    (the in-process rows said 0.1): its p50 and p95 fit the share and the spread back (a wider spread alone
    raises the p50 too, so the share is refitted under each spread tried); a p95 the in-process spread already
    reaches leaves the spread as it was."""
    from rerank_bench.willrun.served_calibration import _p50, _p95, fit_overhead

    requests = [[60] * 8]
    policy = ServerPolicy("infinity", batch_size=8)
    cost = constant(20.0)
    base = Conditions(service_sigma=0.1)
    idle = _p50(1.0, requests, cost, policy, base) + 10.0
    served = Conditions(service_sigma=0.5, request_overhead_ms=8.0, request_cpu_ms=2.0)
    rows = [
        {"load_mode": "closed", "concurrency": 1, "p50_ms": idle, "utc_time": "1", "_file": "a.csv"},
        {"load_mode": "open", "offered_rps": 30.0, "utc_time": "2", "_file": "a.csv",
         "p50_ms": _p50(30.0, requests, cost, policy, served), "p95_ms": _p95(30.0, requests, cost, policy, served)},
    ]  # fmt: skip
    fit = fit_overhead(rows, requests, cost, policy, base, lambda c: 100.0)
    assert fit.service_sigma == pytest.approx(0.5, abs=0.05) and fit.request_cpu_ms == pytest.approx(2.0, abs=0.5)
    assert "batch times varying by sigma 0.10 -> 0.5" in fit.source
    rows[1]["p95_ms"] = 1.0  # below anything simulated: nothing to add
    assert fit_overhead(rows, requests, cost, policy, base, lambda c: 100.0).service_sigma == 0.1


def _served_levels(monkeypatch):
    """A one-client row 10 ms over the idle replica and three open levels simulated at 20, 26 and 32/s with 2 ms
    a request on the model's CPU and 20 ms batches varying by sigma 0.4 (in-process: 0.1); the fit on rows of
    them; and (requests, cost, policy). Shorter simulations than the command's (the levels are made with the
    same) keep a test's several fits to seconds."""
    from rerank_bench.willrun import served_calibration as sc

    monkeypatch.setattr(sc, "SIM_REQUESTS", 600)
    monkeypatch.setattr(sc, "SEEDS", 2)
    requests = [[60] * 8]
    policy = ServerPolicy("infinity", batch_size=8)
    cost = constant(20.0)
    base = Conditions(service_sigma=0.1)
    served = Conditions(service_sigma=0.4, request_overhead_ms=8.0, request_cpu_ms=2.0)
    idle = {"load_mode": "closed", "concurrency": 1, "p50_ms": sc._p50(1.0, requests, cost, policy, base) + 10.0,
            "utc_time": "0", "_file": "a.csv"}  # fmt: skip
    levels = [
        {"load_mode": "open", "offered_rps": r, "requests_sent": 300, "utc_time": str(i), "_file": "a.csv",
         "p50_ms": sc._p50(r, requests, cost, policy, served), "p95_ms": sc._p95(r, requests, cost, policy, served)}
        for i, r in enumerate((20.0, 26.0, 32.0), start=1)
    ]  # fmt: skip

    def fitted(rows):
        return sc.fit_overhead(rows, requests, cost, policy, base, lambda c: 100.0)

    return idle, levels, fitted, (requests, cost, policy)


def test_every_steady_level_fits_the_served_spread_together_so_one_slow_run_moves_it_less(monkeypatch):
    """Three open levels simulated at 20, 26 and 32/s with 2 ms a request on the model's CPU and 20 ms batches
    varying by sigma 0.4: fitted together they give the spread back. One level's p95 raised by half (a run of
    slow replies in a few hundred requests) moves a fit on that level alone far more than the fit on all three
    (here +0.33 against +0.12); a level whose latency was still rising is left out, and only the MAX_LEVELS
    levels of most requests count. Shorter simulations than the command's (the levels are made with the same)
    keep the test's eight fits to seconds."""
    from rerank_bench.willrun import served_calibration as sc

    idle, levels, fitted, _ = _served_levels(monkeypatch)
    rows = [idle, *levels]

    together = fitted(rows)
    assert together.service_sigma == pytest.approx(0.4, abs=0.05)
    assert "open 20/s, 26/s, 32/s" in together.source and "their p95s" in together.source
    slow = {**levels[0], "p95_ms": levels[0]["p95_ms"] * 1.5}
    alone = fitted([rows[0], slow]).service_sigma
    with_others = fitted([rows[0], slow, *levels[1:]]).service_sigma
    assert alone - 0.4 > 0.15 and 0 < with_others - 0.4 < (alone - 0.4) / 2, (alone, with_others)
    rising = {**levels[2], "offered_rps": 40.0, "p50_ms": 5000.0, "p95_ms": 9000.0, "level_state": "not steady"}
    assert fitted([*rows, rising]) == together
    shorter = [{**r, "requests_sent": 100, "offered_rps": 10.0 + i} for i, r in enumerate(levels)]
    chosen = sc.steady_levels([*shorter, *levels, {**levels[0], "requests_sent": 900, "utc_time": "9"}])
    assert len(chosen) == sc.MAX_LEVELS and {float(r["offered_rps"]) for r in chosen} == {20.0, 26.0}
    assert [r["utc_time"] for r in chosen] == ["1", "2", "9"]  # the most requests chosen, then in measured order


def test_the_served_fit_takes_the_levels_shown_to_meet_the_slo_before_those_left_at_the_knee():
    """MiniLM b32 of 2026-12-03: two search levels passed (258 requests each, p95 1,530 and 1,912 ms) and three
    confirmations of 774 were left undecided at the knee (3,026, 3,241, 2,620 ms, minutes apart): the fit takes
    the passed ones although the others have more requests; rows without an SLO verdict, or with none passed,
    give every steady level as before."""
    from rerank_bench.willrun.served_calibration import steady_levels

    def level(rate, sent, verdict, when):
        return {"load_mode": "open", "offered_rps": rate, "requests_sent": sent, "p50_ms": 700.0,
                "slo_verdict": verdict, "utc_time": when, "level_state": "steady"}  # fmt: skip

    passed = [level(1.47, 258, "pass", "1"), level(1.61, 258, "pass", "2")]
    knee = [level(1.61, 774, "undecided", "3"), level(1.47, 774, "undecided", "4"), level(1.34, 774, "undecided", "5")]
    assert steady_levels(passed + knee) == passed
    assert steady_levels(knee) == knee
    unjudged = [{k: v for k, v in r.items() if k != "slo_verdict"} for r in passed + knee]
    assert [r["utc_time"] for r in steady_levels(unjudged)] == ["3", "4", "5"]  # most requests, as before


def test_the_served_spread_is_known_only_as_well_as_its_levels_agree_and_the_range_ends_say_so(monkeypatch):
    """The range's ends are simulated at the spreads that meet, each alone under the fit's share, the level the
    fit overshoots most and the one it misses most: levels made at one spread give ends close together, one
    level's p95 raised by half pulls the slow end up to where that level's simulated p95 is its measured one.
    One level has nothing to disagree with: its p95's interval sets the ends. A plan's range is searched at them:
    the slow end's capacity falls with a wider spread, the central figures do not move."""
    from rerank_bench.willrun import served_calibration as sc
    from rerank_bench.willrun.rate_plan import plan_rate

    idle, levels, fitted, (requests, cost, policy) = _served_levels(monkeypatch)

    agreeing = fitted([idle, *levels])
    fast, slow = agreeing.sigma_range
    assert fast <= agreeing.service_sigma <= slow and slow - fast < 0.15, agreeing.sigma_range
    raised = {**levels[0], "p95_ms": levels[0]["p95_ms"] * 1.5}
    split = fitted([idle, raised, *levels[1:]])
    fast, slow = split.sigma_range
    assert slow - split.service_sigma > 0.15 and fast <= split.service_sigma
    assert "20/s alone" in split.source and f"sigma {fast:.2f}-{slow:.2f}" in split.source
    at_slow_end = Conditions(
        service_sigma=slow, request_overhead_ms=split.per_request_ms, request_cpu_ms=split.request_cpu_ms
    )
    assert sc._p95(20.0, requests, cost, policy, at_slow_end) == pytest.approx(raised["p95_ms"], rel=0.08)
    # one level: its p95's interval
    one = {**levels[1], "p95_ci_low_ms": levels[1]["p95_ms"] * 0.8, "p95_ci_high_ms": levels[1]["p95_ms"] * 1.3}
    alone = fitted([idle, one])
    assert alone.sigma_range[0] <= alone.service_sigma < alone.sigma_range[1]  # never below the in-process one
    assert "its p95's interval" in alone.source
    assert fitted([idle, levels[1]]).sigma_range is None  # no interval, no second level: no range said
    # a plan searches its range's ends at them
    costs = (cost, cost, cost)
    plain = Conditions(service_sigma=0.4, request_overhead_ms=8.0, request_cpu_ms=2.0)
    ends = replace(plain, service_sigma_ends=(0.3, 0.8))
    same = plan_rate(20.0, 150.0, "p95", requests, policy, costs, conditions=plain, seeds=2)
    ranged = plan_rate(20.0, 150.0, "p95", requests, policy, costs, conditions=ends, seeds=2)
    assert ranged.capacity_rps == same.capacity_rps and ranged.p95_at_rate_ms == same.p95_at_rate_ms
    assert ranged.capacity_rps_low < same.capacity_rps_low and ranged.capacity_rps_high > same.capacity_rps_high
    assert ranged.p95_at_rate_range_ms[1] > same.p95_at_rate_range_ms[1]


def test_a_served_overhead_is_fitted_under_the_setting_its_rows_ran():
    """Rows measured against infinity at batch 8 (30 ms over the idle replica; an open level at 40/s with 10 of
    them on the model's CPU) fit the same overhead whether the plan is for batch 8 or batch 32: each row is
    simulated under its own server_batch_size. Without the column the batch-32 plan reads them as batch 32's
    rows and fits something else; rows of the plan's own setting are preferred where both are there."""
    from rerank_bench.willrun.served_calibration import _p50, fit_overhead, same_setting_first

    requests = [[60] * 20]
    b8, b32 = ServerPolicy("infinity", batch_size=8), ServerPolicy("infinity", batch_size=32)

    def cost(lengths):
        return 5.0 + len(lengths)  # a batch's fixed 5 ms: three batches of 8 cost more than one of 20

    plain = Conditions()
    idle = _p50(1.0, requests, cost, b8, plain) + 30.0
    loaded = _p50(40.0, requests, cost, b8, Conditions(request_overhead_ms=20.0, request_cpu_ms=10.0))
    rows = [
        {"load_mode": "closed", "concurrency": 1, "p50_ms": idle, "utc_time": "1", "_file": "b8.csv"},
        {"load_mode": "open", "offered_rps": 40.0, "p50_ms": loaded, "utc_time": "2", "_file": "b8.csv"},
    ]
    fits = [fit_overhead([{**r, "server_batch_size": 8} for r in rows], requests, cost, p, plain, lambda c: 100.0)
            for p in (b8, b32)]  # fmt: skip
    for fit in fits:
        assert fit.request_cpu_ms == pytest.approx(10.0, abs=0.05)
        assert fit.per_request_ms == pytest.approx(20.0, abs=0.05)
    assert "(batch 8)" in fits[1].source and "(batch" not in fits[0].source
    unlabelled = fit_overhead(rows, requests, cost, b32, plain, lambda c: 100.0)
    assert unlabelled.per_request_ms + unlabelled.request_cpu_ms == pytest.approx(30.0 + 10.0, abs=0.5)  # 10 ms more
    mixed = [{**rows[0], "server_batch_size": 8}, {**rows[0], "server_batch_size": 32, "utc_time": "3"}]
    assert same_setting_first(mixed, b32) == [mixed[1]] and same_setting_first(mixed[:1], b32) == mixed[:1]


def test_the_best_server_setting_is_named_with_its_runner_up_and_margin():
    """A batch costs 20 ms + 1 ms a pair: bigger infinity batches amortise the 20 ms, so batch 32 holds more
    than 8, which holds more than 4, and the note says by how much against the seeds' spread."""
    from rerank_bench.willrun.rate_plan import best_setting

    requests = [[60] * 32]

    def cost(lengths):
        return 20.0 + len(lengths)

    candidates = [(f"batch {b}", ServerPolicy("infinity", batch_size=b)) for b in (4, 8, 32)]
    choice = best_setting(requests, cost, candidates, budget_ms=1500.0, quantile=95.0)
    capacities = {label: rate for label, rate, _ in choice.tried}
    assert choice.label == "batch 32" and choice.policy.batch_size == 32
    assert capacities["batch 32"] > capacities["batch 8"] > capacities["batch 4"]
    assert choice.note.startswith(f"batch 32: {capacities['batch 32']:.3g}/s; runner-up batch 8")
    assert "the seeds' spread" in choice.note


def test_a_best_setting_the_calibrating_rows_cannot_tell_apart_from_the_runner_up_is_said_to_be_so():
    """0.5 ms a batch and 1 ms a pair, batch 8 priced 4% dearer: the seeds agree that 16 holds more, by a margin
    beyond their spread (a few percent); rows that know the two batch sizes' ratio to +-8.5% (+-6% each) do not
    tell that apart, and the note says to measure both. Rows that know it to +-0.7% (or no word on them) leave
    the choice as the seeds' alone, and where one sweep measured both the note says the choice rests on it; a
    margin far beyond both is not questioned."""
    from rerank_bench.willrun.rate_plan import ONE_SWEEP, PairKnown, best_setting

    requests = [[60] * 32]

    def cost(lengths):
        return (0.5 + len(lengths)) * (1.04 if len(lengths) <= 8 else 1.0)

    def rows_know(half, sweeps=1):
        return lambda best, runner: PairKnown(half, f"{best} and {runner} known to +-{half:.1%}", sweeps)

    candidates = [(f"batch {b}", ServerPolicy("infinity", batch_size=b)) for b in (8, 16)]
    loose = best_setting(requests, cost, candidates, 1500.0, 95.0, calibration=rows_know(math.hypot(0.06, 0.06)))
    capacity = {label: rate for label, rate, _ in loose.tried}
    margin = capacity["batch 16"] / capacity["batch 8"] - 1
    spread = max(relative for _, _, relative in loose.tried)
    assert loose.label == "batch 16" and spread < margin < math.hypot(spread, 0.06, 0.06), (margin, spread)
    assert "beyond the seeds' spread" in loose.note and "measure both to choose" in loose.note
    assert "(batch 16 and batch 8 known to +-8.5%)" in loose.note and ONE_SWEEP not in loose.note
    tight = best_setting(requests, cost, candidates, 1500.0, 95.0, calibration=rows_know(0.007))
    assert "measure both to choose" not in tight.note and tight.label == "batch 16" and ONE_SWEEP in tight.note
    repeated = best_setting(requests, cost, candidates, 1500.0, 95.0, calibration=rows_know(0.007, sweeps=3))
    assert "measure both" not in repeated.note and "one sweep" not in repeated.note
    plain = best_setting(requests, cost, candidates, 1500.0, 95.0).note
    assert "measure both" not in plain and "one sweep" not in plain
    costly = [(f"batch {b}", ServerPolicy("infinity", batch_size=b)) for b in (4, 16)]
    far = best_setting(requests, cost, costly, 1500.0, 95.0, calibration=rows_know(math.hypot(0.06, 0.06), 2))
    assert far.label == "batch 16" and "measure both" not in far.note


def test_a_simulated_level_is_judged_as_endpoint_judges_a_real_one():
    """M/D/1 at 10 ms a request, p95 budget 100 ms: idle enough at 20/s (none of the first window's 258 over),
    overloaded at 150/s (all over). At 0.5/s the first window (258 arrivals, 516 s) does not fit in the level's
    300 s: as the endpoint does, it is judged on the arrivals scheduled before the limit (none over: a pass)."""
    from rerank_bench.common.slo import Verdict
    from rerank_bench.willrun.search_sim import simulate_level

    policy = ServerPolicy("per-request", batch_size=1)
    idle = simulate_level(20.0, ONE_PAIR, constant(10.0), policy, 100.0)
    assert idle.verdict == Verdict.PASS and idle.why.startswith("0 of 258 requests")
    assert simulate_level(150.0, ONE_PAIR, constant(10.0), policy, 100.0).verdict == Verdict.FAIL
    slow = simulate_level(0.5, ONE_PAIR, constant(10.0), policy, 100.0)
    judged = int(slow.why.split(" of ")[1].split()[0])
    assert slow.verdict == Verdict.PASS and 86 <= judged < 258  # 86: the fewest a p95 can pass in


def test_the_endpoint_figure_is_the_steady_capacity_at_a_sharp_knee_and_below_it_where_the_tail_rises_slowly():
    """Deterministic service: latency stays low until close to the service rate, so the rate the search shows
    to pass is the steady capacity within the search's 10% tolerance. Service varying by sigma 1: the tail
    rises well before the knee, and levels of a few hundred requests pass only when clearly fewer than 5% are
    over, so the search reports less (about 55 against 63 per s)."""
    from rerank_bench.willrun.search_sim import search_figure

    policy = ServerPolicy("per-request", batch_size=1)
    sharp_steady = find_capacity(ONE_PAIR, constant(10.0), policy, 100.0).rate_rps
    sharp = search_figure(ONE_PAIR, constant(10.0), policy, 100.0)
    assert sharp_steady / 1.15 <= sharp.rate_rps <= sharp_steady * 1.05
    varying = Conditions(service_sigma=1.0)
    slow_steady = find_capacity(ONE_PAIR, constant(10.0), policy, 100.0, conditions=varying).rate_rps
    slow = search_figure(ONE_PAIR, constant(10.0), policy, 100.0, conditions=varying)
    assert slow.rate_rps < 0.95 * slow_steady and len(slow.seed_rates_rps) == 5 and slow.spread_rps is not None


def test_as_endpoint_adds_the_figure_a_measured_search_would_report():
    result, rows = _rate("--hardware", "l4", "--budget-ms", "200", "--rate", "40", "--as-endpoint")
    assert result.exit_code == 0, result.output
    (row,) = rows
    assert 0 < row["endpoint_capacity_rps"] <= 1.1 * row["capacity_rps"]
    low, high = row["endpoint_capacity_spread_rps"]
    assert low <= row["endpoint_capacity_rps"] <= high
    # the latency estimate's slow and fast ends widen the seeds' spread, as they widen the capacity's range
    wide_low, wide_high = row["endpoint_capacity_range_rps"]
    assert wide_low < low and wide_high > high
    capacity_width = row["capacity_rps_high"] / row["capacity_rps_low"]
    assert wide_high / wide_low >= 0.8 * capacity_width
    assert any(n.startswith("`endpoint --capacity` would report about") for n in row["notes"])
    result, _ = _rate("--hardware", "l4", "--budget-ms", "200", "--as-endpoint")
    assert result.exit_code == 2 and "--as-endpoint plan a rate: use them with --rate" in result.output


def test_a_request_that_finds_the_server_idle_waits_its_wake_time_by_how_long_it_was_idle():
    """One pair of 10 ms a request, wake time 6 ms over IDLE_WAKE_TAU_MS = 20 ms. Requests at 0, 5, 50 and 200
    ms: the first finds the server idle since the start (0 ms before it: no wake), is taken up at 0 and done at
    10; the second arrives while it runs (no wake) and is done at 20; the third finds it idle for 30 ms: waits
    6 x (1 - e^-1.5) = 4.6612 ms, done at 64.6612; the fourth idle for 135.3388 ms: 6 x (1 - e^-6.7669) =
    5.9931 ms, done at 215.9931. A closed loop of one client (`busy()`) never pays it."""
    from rerank_bench.willrun.serving_sim import IDLE_WAKE_TAU_MS, Replica, batcher_for

    assert IDLE_WAKE_TAU_MS == 20.0
    policy = ServerPolicy("per-request", batch_size=1)
    replica = Replica(ONE_PAIR, constant(10.0), batcher_for(policy), [0.0, 5.0, 50.0, 200.0], idle_wake_ms=6.0)
    replica.serve()
    assert replica.done_ms == pytest.approx([10.0, 20.0, 64.6612, 215.9931], abs=1e-4)
    awake = Conditions(idle_wake_ms=6.0)
    assert awake.busy() == Conditions() and "up to 6.0 ms more" in awake.describe()


def test_requests_arriving_while_one_is_being_taken_up_wait_for_it_in_order():
    """Two requests 1 ms apart reach a server idle for long: the first waits the whole 8 ms wake time (the
    exponential is 1 to four places after 1000 ms idle), the second is taken up with it (not before it, and
    with no wake of its own): both queue at 1008 ms, and the model runs them one after the other."""
    from rerank_bench.willrun.serving_sim import Replica, batcher_for

    policy = ServerPolicy("per-request", batch_size=1)
    replica = Replica(ONE_PAIR, constant(10.0), batcher_for(policy), [1000.0, 1001.0], idle_wake_ms=8.0)
    replica.serve()
    assert replica.done_ms == pytest.approx([1018.0, 1028.0], abs=1e-3)


def test_a_light_open_level_fits_the_wake_time_and_the_loaded_levels_the_rest():
    """Rows made from the model itself, with 12 ms a request outside the model and a wake time of 7 ms: the
    one-client level carries no wake (its next request follows the last reply), the light level at 5/s
    (a quarter of 20/s: light) nearly all of it, and a loaded level at 60/s with 4 of the 12 ms on the model's
    CPU. The fit finds the wake back from the light level, keeps that level out of the share's fit, and says
    which rows fed it. Without the light level there is no wake time, as before."""
    from rerank_bench.willrun.served_calibration import _p50, fit_overhead

    requests = [[60] * 8]
    policy = ServerPolicy("infinity", batch_size=8)
    cost = constant(10.0)
    plain = Conditions()
    truth = Conditions(request_overhead_ms=8.0, request_cpu_ms=4.0, idle_wake_ms=7.0)
    idle = _p50(1.0, requests, cost, policy, truth.busy())
    rows = [{"load_mode": "closed", "concurrency": 1, "p50_ms": idle, "achieved_rps": 20.0}] + [
        {"load_mode": "open", "offered_rps": rate, "p50_ms": _p50(rate, requests, cost, policy, truth)}
        for rate in (5.0, 60.0)
    ]
    rows = [{**r, "_file": "a.csv", "requests_sent": 300, "utc_time": str(i)} for i, r in enumerate(rows)]
    fit = fit_overhead(rows, requests, cost, policy, plain, lambda c: 100.0)
    assert fit.idle_wake_ms == pytest.approx(7.0, abs=0.1)
    assert fit.request_cpu_ms == pytest.approx(4.0, abs=0.1) and fit.per_request_ms == pytest.approx(8.0, abs=0.1)
    assert "open 5/s (light)" in fit.source and "open 60/s" in fit.source and "finds it idle" in fit.source
    without = fit_overhead([rows[0], rows[2]], requests, cost, policy, plain, lambda c: 100.0)
    assert without.idle_wake_ms == 0.0 and "idle" not in without.source


def test_levels_faster_than_the_sweeps_speed_allows_put_the_models_time_at_their_speed():
    """Rows made from a model of 10 ms a batch with 8 ms a request outside it, fitted with a sweep that said 14
    ms (the host was slower while it ran): at 14 ms even none of the server's work on the model's CPU gives
    loaded p50s above the measured ones, so the fit puts the model's time at 10/14 = 0.714 of the sweep's and
    finds the 8 ms back. Rows the sweep's own speed meets leave the model's time as the sweep measured it."""
    from rerank_bench.willrun.served_calibration import _p50, fit_overhead

    requests = [[60] * 8]
    policy = ServerPolicy("infinity", batch_size=8)
    truth = Conditions(request_overhead_ms=8.0)
    idle = _p50(1.0, requests, constant(10.0), policy, truth)
    rows = [{"load_mode": "closed", "concurrency": 1, "p50_ms": idle, "achieved_rps": 50.0}] + [
        {"load_mode": "open", "offered_rps": rate, "p50_ms": _p50(rate, requests, constant(10.0), policy, truth)}
        for rate in (50.0, 70.0)
    ]
    rows = [{**r, "_file": "a.csv", "requests_sent": 300, "utc_time": str(i)} for i, r in enumerate(rows)]
    fit = fit_overhead(rows, requests, constant(14.0), policy, Conditions(), lambda c: 100.0)
    assert fit.model_speed == pytest.approx(10.0 / 14.0, abs=0.005)
    assert fit.per_request_ms == pytest.approx(8.0, abs=0.1) and fit.request_cpu_ms == pytest.approx(0.0, abs=0.1)
    assert "the model's own time x0.71" in fit.source
    slower = Conditions(request_overhead_ms=4.0, request_cpu_ms=4.0)  # its levels need some of the CPU too
    # the one-client row (no rate) at 1/s, the idle rate the fit simulates it at (1% of the bound given)
    rows = [{**r, "p50_ms": _p50(r.get("offered_rps") or 1.0, requests, constant(14.0), policy, slower)} for r in rows]
    assert fit_overhead(rows, requests, constant(14.0), policy, Conditions(), lambda c: 100.0).model_speed == 1.0


def test_a_one_client_level_faster_than_the_sweep_puts_the_models_time_where_nothing_is_left_outside_it():
    """A server adds no negative time. Rows made from a model of 10 ms a batch and nothing outside it, fitted
    with a sweep that said 12 ms: the one-client p50 is 2 ms under the sweep's model alone, so the model's time
    goes to 10/12 = 0.833 of the sweep's and the time outside it to 0 (before: -2 ms a request, and no level
    fitted). With 3 ms a request outside a 10 ms model and a 14 ms sweep, the one-client level says only that
    the model is at most (10 + 3) / 14 of the sweep's time; the loaded levels then find 10/14 and the 3 ms."""
    from rerank_bench.willrun.served_calibration import _p50, fit_overhead

    requests = [[60] * 8]
    policy = ServerPolicy("infinity", batch_size=8)

    def rows_of(truth: Conditions) -> list[dict]:
        idle = _p50(1.0, requests, constant(10.0), policy, truth)
        made = [{"load_mode": "closed", "concurrency": 1, "p50_ms": idle, "achieved_rps": 50.0}] + [
            {"load_mode": "open", "offered_rps": rate, "p50_ms": _p50(rate, requests, constant(10.0), policy, truth)}
            for rate in (50.0, 70.0)
        ]
        return [{**r, "_file": "a.csv", "requests_sent": 300, "utc_time": str(i)} for i, r in enumerate(made)]

    fit = fit_overhead(rows_of(Conditions()), requests, constant(12.0), policy, Conditions(), lambda c: 100.0)
    assert fit.model_speed == pytest.approx(10.0 / 12.0, abs=0.005)
    assert 0.0 <= fit.per_request_ms < 0.1 and "x0.83 (closed x1 faster than the sweep)" in fit.source
    assert "open 50/s" in fit.source  # the loaded levels are fitted, not skipped
    truth = Conditions(request_overhead_ms=3.0)
    fit = fit_overhead(rows_of(truth), requests, constant(14.0), policy, Conditions(), lambda c: 100.0)
    assert fit.model_speed == pytest.approx(10.0 / 14.0, abs=0.01)
    assert fit.per_request_ms == pytest.approx(3.0, abs=0.15) and fit.request_cpu_ms == pytest.approx(0.0, abs=0.1)


def test_the_models_speed_is_fitted_on_every_steady_loaded_level_not_only_the_passed_ones():
    """A 10 ms model with 8 ms outside it, priced at 14 ms by its sweep: levels that passed at 50 and 60/s (made
    at 10 ms) alone put the model at 10/14 = 0.714 of the sweep's time; a long level left undecided at 70/s,
    made while the host ran the model at 12 ms, pulls the fitted speed up between 10/14 and 12/14."""
    from rerank_bench.willrun.served_calibration import _p50, fit_overhead

    requests = [[60] * 8]
    policy = ServerPolicy("infinity", batch_size=8)
    truth = Conditions(request_overhead_ms=8.0)
    idle = _p50(1.0, requests, constant(10.0), policy, truth)
    rows = [{"load_mode": "closed", "concurrency": 1, "p50_ms": idle, "achieved_rps": 50.0}] + [
        {"load_mode": "open", "offered_rps": rate, "slo_verdict": "pass"}
        | {"p50_ms": _p50(rate, requests, constant(10.0), policy, truth)}
        for rate in (50.0, 60.0)
    ]
    slow = {"load_mode": "open", "offered_rps": 70.0, "slo_verdict": "undecided"}
    rows.append(slow | {"p50_ms": _p50(70.0, requests, constant(12.0), policy, truth)})
    rows = [{**r, "_file": "a.csv", "requests_sent": 300, "utc_time": str(i)} for i, r in enumerate(rows)]
    passed_alone = fit_overhead(rows[:3], requests, constant(14.0), policy, Conditions(), lambda c: 100.0)
    assert passed_alone.model_speed == pytest.approx(10.0 / 14.0, abs=0.01)
    both = fit_overhead(rows, requests, constant(14.0), policy, Conditions(), lambda c: 100.0)
    assert 10.0 / 14.0 + 0.02 < both.model_speed < 12.0 / 14.0
