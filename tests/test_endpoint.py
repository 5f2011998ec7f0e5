"""`rerank-bench endpoint`: API shapes, the load generator's schedule and latency accounting, error kinds, the
capacity search, and the command end to end, against the fake server (a real HTTP server on localhost)."""

import asyncio
import json
import re
import socket
import statistics

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.common.case_key import KEY_FIELDS, LATER_KEY_FIELDS, case_id_for
from rerank_bench.endpoint.apis import APIS, MalformedReply, identify, parse_reply, public_url, request_body
from rerank_bench.endpoint.capacity import Trial, search_capacity
from rerank_bench.endpoint.fake_server import FakeServer, FakeSettings
from rerank_bench.endpoint.loadgen import Outcome, RerankClient, arrival_times, closed_loop, open_loop
from rerank_bench.endpoint.summary import Level, summarize_level
from rerank_bench.results.store import read_rows, read_samples, samples_path_for
from rerank_bench.workload.records import Request

runner = CliRunner()
TEI, COHERE = APIS["tei"], APIS["infinity"]
REQUESTS = [Request(f"query {i}", tuple(f"document {i} {j}" for j in range(5))) for i in range(8)]


# --- API shapes -------------------------------------------------------------------------------------------


def test_replies_are_put_back_in_document_order():
    tei = [{"index": 2, "score": 0.9}, {"index": 0, "score": 0.5}, {"index": 1, "score": 0.1}]
    assert parse_reply(TEI, tei, 3) == [0.5, 0.1, 0.9]
    cohere = {"results": [{"index": 1, "relevance_score": 3.0}, {"index": 0, "relevance_score": -1.0}]}
    assert parse_reply(COHERE, cohere, 2) == [-1.0, 3.0]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([{"index": 0, "score": 0.5}], "1 result(s) for 2"),
        ([{"index": 0, "score": 0.5}, {"index": 0, "score": 0.4}], "appears twice"),
        ([{"index": 0, "score": 0.5}, {"index": 2, "score": 0.4}], "index 2"),
        ([{"index": 0, "score": 0.5}, {"index": 1, "score": "high"}], "not a finite number"),
        ([{"index": 0, "score": 0.5}, {"index": True, "score": 0.1}], "index True"),
        ({"error": "x"}, "no list of results"),
    ],
)
def test_a_reply_that_is_not_one_score_per_document_is_malformed(payload, message):
    with pytest.raises(MalformedReply, match=re.escape(message)):
        parse_reply(TEI, payload, 2)


def test_request_bodies_follow_each_api():
    tei = request_body(TEI, "q", ("a", "b"), None)
    assert tei["texts"] == ["a", "b"] and tei["truncate"] is True and "documents" not in tei
    cohere = request_body(APIS["cohere"], "q", ("a", "b"), "rerank-v3.5")
    assert cohere["documents"] == ["a", "b"] and cohere["top_n"] == 2 and cohere["model"] == "rerank-v3.5"


def test_credentials_and_query_strings_never_reach_results():
    assert public_url("https://user:secret@api.example.com:8443/v2/rerank?key=abc#x") == (
        "https://api.example.com:8443/v2/rerank"
    )


def test_servers_are_told_apart_by_their_info_routes():
    tei = identify({"/info": {"model_id": "BAAI/bge-reranker-base", "max_client_batch_size": 32, "version": "1.5"}})
    assert tei.api == "tei" and tei.max_client_batch_size == 32 and "BAAI/bge-reranker-base" in tei.identity
    infinity = identify({"/models": {"data": [{"id": "m", "owned_by": "infinity", "backend": "torch"}]}})
    assert infinity.api == "infinity" and infinity.model_id == "m"
    vllm = identify({"/v1/models": {"data": [{"id": "m", "owned_by": "vllm"}]}, "/version": {"version": "0.9"}})
    assert vllm.api == "vllm" and "0.9" in vllm.identity
    assert identify({"/models": {"data": []}}).api is None


# --- arrivals and level figures ----------------------------------------------------------------------------


def test_arrivals_are_seeded_and_hold_the_rate():
    a = arrival_times(100.0, 100.0, seed=7)
    assert a == arrival_times(100.0, 100.0, seed=7) and a != arrival_times(100.0, 100.0, seed=8)
    assert 9_500 <= len(a) <= 10_500 and all(0 <= t < 100 for t in a) and a == sorted(a)


def test_burstiness_sets_the_spread_of_the_gaps():
    def cv(burstiness):
        times = arrival_times(50.0, 400.0, seed=1, burstiness=burstiness)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        return statistics.stdev(gaps) / statistics.fmean(gaps)

    # gamma with shape k: coefficient of variation 1/sqrt(k)
    assert cv(1.0) == pytest.approx(1.0, abs=0.05)
    assert cv(0.25) == pytest.approx(2.0, abs=0.2)
    assert cv(4.0) == pytest.approx(0.5, abs=0.05)


def test_level_summary_by_hand():
    outcomes = [
        Outcome(0, 0.0, 0.000, 0.100, "ok"),  # 100 ms
        Outcome(1, 0.5, 0.502, 0.800, "ok"),  # 300 ms from the scheduled time
        Outcome(2, 1.0, 1.030, 1.200, "http_503", "overloaded"),
        Outcome(3, 1.5, 1.500, 2.500, "timeout"),
    ]
    s = summarize_level(outcomes, Level("open", rate_rps=2.0), depth=10, duration_s=2.0, slo_ms=200)
    assert (s.sent, s.completed, s.failed) == (4, 2, 2)
    assert s.errors == {"http_503": 1, "timeout": 1} and s.errors_text() == "http_503:1;timeout:1"
    assert s.elapsed_s == 2.5  # the last reply came after the schedule ended
    assert s.achieved_rps == pytest.approx(2 / 2.5) and s.pairs_per_s == pytest.approx(20 / 2.5)
    assert s.goodput_rps == pytest.approx(1 / 2.5)  # only the 100 ms reply is within 200 ms
    # in flight: (0.1 + 0.298 + 0.17 + 1.0) / 2.5
    assert s.mean_in_flight == pytest.approx(1.568 / 2.5)
    # send lags 0, 2, 30, 0 ms: p99 by linear interpolation = 2 + 0.97 * 28
    assert s.send_lag_p99_ms == pytest.approx(29.16) and s.behind_schedule
    assert s.meets(1000.0) == (False, "2 of 4 requests failed")


def test_a_level_meets_its_slo_only_with_enough_samples():
    ok = [Outcome(i, i * 0.01, i * 0.01, i * 0.01 + 0.05, "ok") for i in range(39)]
    s = summarize_level(ok, Level("closed", concurrency=1), 10, 1.0)
    assert s.meets(100.0) == (False, "p95 needs 40 completed requests, got 39")
    s = summarize_level([*ok, Outcome(39, 0.39, 0.39, 0.44, "ok")], Level("closed", concurrency=1), 10, 1.0)
    assert s.meets(100.0) == (True, "") and s.meets(40.0)[0] is False


# --- capacity search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("true_capacity", [0.37, 3.0, 37.0, 900.0])
def test_capacity_search_brackets_a_known_threshold(true_capacity):
    result = search_capacity(lambda r: Trial(r, r <= true_capacity, ""), start_rps=5.0)
    assert result.converged and result.low_rps <= true_capacity < result.high_rps
    assert result.high_rps / result.low_rps <= 1.1 + 1e-9 and result.note() == ""


def test_capacity_search_says_when_nothing_passes_or_everything_does():
    none = search_capacity(lambda r: Trial(r, False, "errors"), start_rps=5.0)
    assert none.capacity_rps is None and "no rate met the SLO" in none.note()
    every = search_capacity(lambda r: Trial(r, True, ""), start_rps=5.0, max_levels=4)
    assert every.high_rps is None and every.low_rps == 40.0 and "capacity is higher" in every.note()


# --- the load generator against the fake server --------------------------------------------------------------


async def _with_client(url, coro):
    async with RerankClient(url + "/rerank", TEI, timeout_s=5) as client:
        return await coro(client)


def test_open_loop_keeps_its_schedule_and_times_from_it():
    times = arrival_times(50.0, 2.0, seed=3)
    with FakeServer(FakeSettings(workers=8)) as url:
        outcomes = asyncio.run(_with_client(url, lambda c: open_loop(c.rerank, REQUESTS, times)))
    assert len(outcomes) == len(times) and all(o.kind == "ok" for o in outcomes)
    assert [o.scheduled_s for o in outcomes] == times
    s = summarize_level(outcomes, Level("open", rate_rps=50.0), 5, 2.0)
    assert s.send_lag_p99_ms < 10 and not s.behind_schedule


def test_a_stalled_server_shows_in_open_loop_latency_not_only_in_one_request():
    """No coordinated omission: requests due while the server stalls count the stall from when they were due."""
    settings = FakeSettings(workers=1, base_ms=2, stall_at=10, stall_s=1.0)
    times = [i * 0.05 for i in range(60)]  # 20/s for 3 s, far below capacity outside the stall
    with FakeServer(settings) as url:
        outcomes = asyncio.run(_with_client(url, lambda c: open_loop(c.rerank, REQUESTS, times)))
    slow = [o for o in outcomes if o.latency_ms > 300]
    # the stall starts at the 10th request (t = 0.45 s) and lasts 1 s: the ~20 requests due in it all wait
    assert len(slow) >= 12, [round(o.latency_ms) for o in outcomes]
    assert max(o.latency_ms for o in outcomes) >= 900
    with FakeServer(settings) as url:
        closed = asyncio.run(_with_client(url, lambda c: closed_loop(c.rerank, REQUESTS, 1, 2.0)))
    # the closed loop waits with the server: one request sees the stall, the rest look fast
    assert sum(1 for o in closed if o.latency_ms > 300) == 1


def test_closed_loop_holds_its_concurrency():
    with FakeServer(FakeSettings(workers=4, base_ms=20)) as url:
        outcomes = asyncio.run(_with_client(url, lambda c: closed_loop(c.rerank, REQUESTS, 4, 1.0)))
    s = summarize_level(outcomes, Level("closed", concurrency=4), 5, 1.0)
    assert s.mean_in_flight == pytest.approx(4.0, rel=0.1)
    assert 4 / 0.020 * 0.6 <= s.achieved_rps <= 4 / 0.020  # 4 slots of 20 ms: at most 200/s
    assert [o.index for o in outcomes] == list(range(len(outcomes)))  # the same request order every time


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_error_kinds_are_counted_apart():
    with FakeServer(FakeSettings(workers=4, fail_every=5, malformed_every=7)) as url:
        outcomes = asyncio.run(_with_client(url, lambda c: closed_loop(c.rerank, REQUESTS, 1, 0.5)))
    kinds = {o.kind for o in outcomes}
    assert {"ok", "http_503", "malformed"} <= kinds
    n = len(outcomes)
    assert sum(o.kind == "http_503" for o in outcomes) == n // 5
    with FakeServer(FakeSettings(base_ms=500)) as url:

        async def go():
            async with RerankClient(url + "/rerank", TEI, timeout_s=0.1) as client:
                return await client.rerank(REQUESTS[0])

        assert asyncio.run(go()).kind == "timeout"
    closed_port = f"http://127.0.0.1:{_free_port()}"
    reply = asyncio.run(_with_client(closed_port, lambda c: c.rerank(REQUESTS[0])))
    assert reply.kind == "connection"


# --- the command ----------------------------------------------------------------------------------------------


def test_endpoint_command_writes_one_row_per_level(tmp_path):
    out = tmp_path / "served.csv"
    with FakeServer(FakeSettings(workers=2, base_ms=5)) as url:
        result = runner.invoke(
            app,
            [
                "endpoint",
                url,
                "--depth",
                "5,10",
                "--concurrency",
                "1,2",
                "--rate",
                "20",
                "--duration",
                "1",
                "--slo-ms",
                "500",
                "-o",
                str(out),
                "--json",
            ],
        )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["api"] == "tei" and "fake/reranker" in report["server"]
    rows = read_rows(out)
    assert [(r["depth"], r["load_mode"], r["concurrency"], r["offered_rps"]) for r in rows] == [
        (5, "closed", 1, None),
        (5, "closed", 2, None),
        (5, "open", None, 20.0),
        (10, "closed", 1, None),
        (10, "closed", 2, None),
        (10, "open", None, 20.0),
    ]
    samples = read_samples(samples_path_for(out))
    for row in rows:
        assert row["status"] == "ok" and row["backend"] == "endpoint" and row["api"] == "tei"
        assert row["requests_completed"] == row["n_queries"] == len(samples[(row["run_id"], row["case_id"])])
        assert row["endpoint"] == url and row["tokenizer"] == "estimated" and row["goodput_rps"] > 0
    assert len({r["case_id"] for r in rows}) == 6


def test_no_level_within_the_slo_fails_the_command_and_keeps_the_rows(tmp_path):
    out = tmp_path / "served.csv"
    with FakeServer(FakeSettings(workers=1, base_ms=30)) as url:
        result = runner.invoke(
            app, ["endpoint", url, "--depth", "5", "--duration", "0.5", "--slo-ms", "5", "-o", str(out)]
        )
    assert result.exit_code == 1
    assert "no level met p95 <= 5 ms" in result.output
    assert len(read_rows(out)) == 1


def test_too_many_documents_for_tei_is_one_clear_line(tmp_path):
    with FakeServer(FakeSettings(max_client_batch_size=32)) as url:
        result = runner.invoke(app, ["endpoint", url, "--depth", "50", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert "accepts at most 32 documents per request" in result.output and "Traceback" not in result.output
    # the route refusing it (no /info to warn first) is a clear line too
    with FakeServer(FakeSettings(api="cohere", max_client_batch_size=32)) as url:
        result = runner.invoke(app, ["endpoint", url, "--api", "vllm", "--depth", "50", "-o", str(tmp_path / "y.csv")])
    assert result.exit_code == 2 and "refused a request of 50 documents (422)" in result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--capacity"], 2, "--capacity needs --slo-ms"),
        (["--api", "triton"], 2, "--api 'triton' is not known"),
        (["--rate", "0"], 2, "--rate values must be positive"),
        (["--api-key-env", "RB_NO_SUCH_VARIABLE"], 2, "RB_NO_SUCH_VARIABLE: that environment variable is not set"),
    ],
)
def test_bad_options_are_one_line(args, code, message, tmp_path):
    result = runner.invoke(app, ["endpoint", "http://127.0.0.1:9", *args, "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == code and message in result.output and "Traceback" not in result.output


def test_an_unreachable_server_is_an_environment_error(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"
    result = runner.invoke(app, ["endpoint", url, "--api", "tei", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 3 and "cannot reach" in result.output


def test_capacity_is_found_against_a_server_of_known_speed(tmp_path):
    # one worker, 20 ms a request: it saturates at 50/s; p95 within 100 ms holds somewhat below that
    with FakeServer(FakeSettings(workers=1, base_ms=20)) as url:
        result = runner.invoke(
            app,
            ["endpoint", url, "--depth", "5", "--slo-ms", "100", "--capacity", "--duration", "1.5"]
            + ["-o", str(tmp_path / "c.csv"), "--json"],
        )
    assert result.exit_code == 0, result.output
    depth = json.loads(result.stdout)["depths"][0]
    low, high = depth["capacity_interval_rps"]
    assert 20 <= low <= 50 and high / low <= 1.1 + 1e-9, depth
    assert depth["capacity_rps"] == low and len(depth["capacity_levels"]) >= 3


def test_reference_check_flags_a_server_that_scores_differently(tmp_path, tiny_bert):
    with FakeServer(FakeSettings(workers=2)) as url:
        result = runner.invoke(
            app,
            ["endpoint", url, "--depth", "10", "--duration", "0.5", "--reference", str(tiny_bert)]
            + ["-o", str(tmp_path / "r.csv")],
        )
    assert result.exit_code == 0, result.output
    (row,) = read_rows(tmp_path / "r.csv")
    # the fake scores by hash, not by the model: the rankings do not agree
    assert row["agreement_requests"] == 5 and abs(row["agreement_spearman_mean"]) < 0.9
    assert row["tokenizer"] in ("own", "offline") and row["pair_tokens_mean"] > 0


def test_sweep_case_ids_did_not_change_with_the_endpoint_fields():
    key = {"model": "m", "model_id": "x/m", "backend": "torch", "dtype": "fp32", "batch_size": 8, "depth": 10}
    old = {k: str(key.get(k, "")) for k in KEY_FIELDS if k not in LATER_KEY_FIELDS}
    import hashlib

    expected = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:12]
    assert case_id_for(key) == expected
    assert case_id_for({**key, "endpoint": "http://h", "load_mode": "closed", "concurrency": 2}) != expected


def test_compare_and_report_take_endpoint_rows(tmp_path):
    out = tmp_path / "served.csv"
    with FakeServer(FakeSettings(workers=2, base_ms=5)) as url:
        result = runner.invoke(
            app,
            ["endpoint", url, "--depth", "5", "--concurrency", "1", "--rate", "20", "--duration", "1", "-o", str(out)],
        )
    assert result.exit_code == 0, result.output
    compared = runner.invoke(app, ["compare", str(out), str(out), "--json"])
    assert compared.exit_code == 0, compared.output
    labels = [c["label"] for c in json.loads(compared.stdout)["cases"]]
    assert any("closed x1" in label for label in labels) and any("open 20.0/s" in label for label in labels)
    report = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "report"), "--json"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.stdout)
    assert data["leaderboard"] == [] and [s["load"] for s in data["served"]] == ["closed x1", "open 20/s"]
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Served endpoints" in page and "alt='latency_vs_load' src='data:image/png;base64," in page
