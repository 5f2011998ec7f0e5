"""Before each endpoint level the server is probed one request at a time until it answers near its unloaded time
(endpoint/settle.py), and its queue is drained by its own gauges where it has them (TEI, vLLM)."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from rerank_bench.cli import app
from rerank_bench.endpoint import server_metrics
from rerank_bench.endpoint.apis import APIS
from rerank_bench.endpoint.fake_server import FakeServer, FakeSettings
from rerank_bench.endpoint.loadgen import RerankClient
from rerank_bench.endpoint.run import _queue_length
from rerank_bench.endpoint.settle import Settle, settle
from rerank_bench.results.store import read_rows

runner = CliRunner()


class Probes:
    """A server's one-at-a-time times, in order, and a clock that moves by each probe's time."""

    def __init__(self, times_ms):
        self.times_ms = list(times_ms)
        self.now = 0.0
        self.sent = 0

    async def probe(self):
        ms = self.times_ms[min(self.sent, len(self.times_ms) - 1)]
        self.sent += 1
        self.now += (ms or 100.0) / 1000.0
        return ms

    def clock(self):
        return self.now


def _settle(times_ms, reference_ms=25.0, wait_s=30.0):
    probes = Probes(times_ms)
    return asyncio.run(settle(probes.probe, reference_ms, wait_s, clock=probes.clock)), probes


def test_a_server_still_busy_is_probed_until_three_replies_in_a_row_are_near_its_unloaded_time():
    found, probes = _settle([300, 250, 200, 30, 25, 28, 999])
    # the median of the last three: 300/250/200 -> 250, 250/200/30 -> 200, 200/30/25 -> 30 (within 37.5), stop
    assert found.settled and probes.sent == 5 == found.probes
    assert found.idle_ms == 30 and found.ratio == pytest.approx(1.2)
    assert found.waited_s == pytest.approx(0.805)  # the clock moved by the five probes' times
    assert found.note("depth 20 open 50/s") == ""


def test_an_idle_server_costs_three_probes_and_no_wait():
    found, probes = _settle([24, 27, 26])
    assert found.settled and probes.sent == 3 and found.idle_ms == 26


def test_a_server_that_stays_slow_is_measured_anyway_after_the_wait_and_said_so():
    found, probes = _settle([125], wait_s=1.0)
    # 125 ms a probe: at least three, then until a second has passed since the first
    assert not found.settled and probes.sent == 8 and found.waited_s == pytest.approx(1.0)
    assert found.idle_ms == 125 and found.ratio == pytest.approx(5.0)
    note = found.note("depth 20 open 50/s")
    assert "5.0x its 25 ms" in note and "measuring anyway" in note and "depth 20 open 50/s" in note


def test_with_no_wait_the_three_probes_are_only_recorded():
    found, probes = _settle([200, 90, 25], wait_s=0.0)
    assert not found.settled and probes.sent == 3 and found.idle_ms == 90  # median of 200, 90, 25


def test_failed_probes_are_not_a_time():
    found, probes = _settle([None, 24, 26, 25])
    assert found.settled and probes.sent == 4 and found.idle_ms == 25
    assert Settle(None, 0.0, 3, False, 25.0).ratio is None


def _slow_after_warm_up(number, elapsed):
    # requests 1-3 are the depth's warm-up (5 ms: the unloaded time), 4 is the level's ready check, then six
    # slow ones (80 ms) as from work left behind by a last level, then 5 ms again
    return 80.0 if 4 <= number <= 9 else 5.0


def test_settle_probes_each_send_another_request_body_so_no_cache_answers_them(tmp_path):
    queries = []
    with FakeServer(FakeSettings(workers=1, base_ms=2, seen_queries=queries)) as url:
        result = runner.invoke(
            app,
            ["endpoint", url, "--depth", "5", "--concurrency", "1,1", "--duration", "0.2", "--warmup", "3"]
            + ["-o", str(tmp_path / "served.csv")],
        )
    assert result.exit_code == 0, result.output
    # 3 warm-up requests, then per level: the ready check, three probes, the level's warm-up and its requests
    first_probes = queries[4:7]
    assert len(set(first_probes)) == 3, queries[:8]


@pytest.mark.slow
@pytest.mark.parametrize("wait", ["30", "0"])
def test_a_level_waits_for_the_server_to_answer_near_its_unloaded_time_and_its_row_says_what_it_found(wait, tmp_path):
    out = tmp_path / "served.csv"
    with FakeServer(FakeSettings(workers=1, service_ms=_slow_after_warm_up)) as url:
        result = runner.invoke(
            app,
            ["endpoint", url, "--depth", "5", "--concurrency", "1", "--duration", "0.3", "--warmup", "3"]
            + ["--settle-wait-s", wait, "-o", str(out), "--json"],
        )
    assert result.exit_code == 0, result.output
    (row,) = read_rows(out)
    if wait == "30":
        # probes 5-7 slow, 8-9 slow, 10: median of 9, 10, 11 -> 5 ms: waited for five slow probes
        assert row["idle_before_ms"] < 40 and row["settle_s"] >= 0.35
        assert "measuring anyway" not in result.stderr
    else:
        assert row["idle_before_ms"] >= 75 and row["settle_s"] >= 0.2
        assert "measuring anyway" in result.stderr and "x its" in result.stderr
        assert "slower than at the start" in result.stdout  # the level's note in --json


def test_tei_and_vllm_queues_are_read_from_their_gauges():
    tei = server_metrics.parse("# TYPE te_queue_size gauge\nte_queue_size 7\n")
    vllm = server_metrics.parse(
        '# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name="m"} 2.0\n'
        '# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 3.0\n'
    )
    other = server_metrics.parse("# TYPE http_requests_total counter\nhttp_requests_total 4\n")
    assert server_metrics.queued_requests(tei) == 7
    assert server_metrics.queued_requests(vllm) == 5  # waiting and in a batch: both still the server's
    assert server_metrics.queued_requests(other) is None and server_metrics.queued_requests(None) is None


def test_the_fake_tei_servers_queue_is_seen_while_requests_wait_and_empty_after():
    async def scenario(url):
        async with RerankClient.session_only({}, 10.0, 4.0, None) as client:
            base = url
            routed = client.routed(base + "/rerank", APIS["tei"], None)
            from rerank_bench.workload.records import Request

            request = Request("q", ("a", "b"))
            tasks = [asyncio.create_task(routed.rerank(request)) for _ in range(4)]
            await asyncio.sleep(0.1)  # one in service (300 ms), three waiting for the one worker
            during = await _queue_length(client, base, APIS["tei"])
            without_metrics = await _queue_length(client, base, APIS["tei"], metrics=False)
            await asyncio.gather(*tasks)
            after = await _queue_length(client, base, APIS["tei"])
            return during, without_metrics, after

    with FakeServer(FakeSettings(workers=1, base_ms=300)) as url:
        during, without_metrics, after = asyncio.run(scenario(url))
    assert (during, without_metrics, after) == (3, None, 0)
