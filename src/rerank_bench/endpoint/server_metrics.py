"""The server's own view of a level, from its Prometheus `/metrics` page scraped before and after it.

Parsed with prometheus_client's text parser (the exposition format has escaping, labels and histogram
conventions a hand-written split gets wrong). Counters and histogram sums only grow, so a level's figures are
the differences between the two scrapes:
- TEI (router/src/http/server.rs, `te_*`): request, queue and inference time (histograms, seconds) and
  `te_batch_next_size` (the batches it ran, in requests);
- infinity and other FastAPI servers (prometheus-fastapi-instrumentator): `http_request_duration_seconds`
  for the rerank route's handler;
- the CPU the serving process spent (`process_cpu_seconds_total`, which prometheus_client's default registry
  exports on Linux: infinity and vLLM's API process; TEI's Rust exporter does not): the cores it kept busy
  between the scrapes and its CPU a request. On a machine of few cores this says whether a level's server was
  CPU-bound, and what each request costs it (infinity, TinyBERT twin depth 20, 2 cores: about 115 ms a
  request at 7/s and under 16 clients alike, 2026-12-04).
A server that exposes none of them gives no figures, and says so by their absence.
"""

from __future__ import annotations

from dataclasses import dataclass

# At import, not at the first scrape: a level at the file-descriptor limit must not need one more to import.
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (name, sorted labels) -> value
    at_s: float = 0.0  # when it was read (time.perf_counter), for rates between two scrapes

    def total(self, name: str, **labels: str) -> float | None:
        """The sum of a sample over every label set that has `labels` (None where the sample is absent)."""
        values = [
            v for (n, ls), v in self.samples.items() if n == name and all((k, w) in ls for k, w in labels.items())
        ]
        return sum(values) if values else None


def parse(text: str | None, at_s: float = 0.0) -> Scrape | None:
    """A scrape from the exposition text read at `at_s`, or None where there is none or it does not parse."""
    if not text:
        return None

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return Scrape(samples, at_s) if samples else None


# Gauges of the requests a server holds, summed: TEI's queue (core/src/queue.rs, set as each batch is formed; the
# batch running is not in it), vLLM's scheduler (vllm/v1/metrics/loggers.py: waiting, and running in a batch).
QUEUE_GAUGES = ("te_queue_size", "vllm:num_requests_waiting", "vllm:num_requests_running")


def queued_requests(scrape: Scrape | None) -> int | None:
    """Requests the server holds by its own gauges (QUEUE_GAUGES), None where the page has none of them."""
    if scrape is None:
        return None
    values = [v for v in (scrape.total(name) for name in QUEUE_GAUGES) if v is not None]
    return round(sum(values)) if values else None


def _delta_mean(before: Scrape, after: Scrape, base: str, **labels: str) -> float | None:
    """(sum after - sum before) / (count after - count before) of a histogram, None without new observations."""
    values = []
    for scrape in (before, after):
        total, count = scrape.total(f"{base}_sum", **labels), scrape.total(f"{base}_count", **labels)
        if total is None or count is None:
            return None
        values.append((total, count))
    (sum0, count0), (sum1, count1) = values
    if count1 - count0 <= 0:
        return None
    return (sum1 - sum0) / (count1 - count0)


def _counted(before: Scrape, after: Scrape, name: str, **labels: str) -> float | None:
    """How much a counter grew between the scrapes, None where either lacks it."""
    first, last = before.total(name, **labels), after.total(name, **labels)
    return None if first is None or last is None else last - first


def cpu_figures(before: Scrape, after: Scrape, requests: float | None) -> dict[str, float]:
    """cpu_cores (the serving process's CPU seconds a second between the scrapes) and cpu_ms_per_request (over
    the requests the server counted in that time), where it exports process_cpu_seconds_total."""
    spent, elapsed = _counted(before, after, "process_cpu_seconds_total"), after.at_s - before.at_s
    if spent is None or spent < 0 or elapsed <= 0:
        return {}
    out = {"cpu_cores": spent / elapsed}
    if requests:
        out["cpu_ms_per_request"] = 1000.0 * spent / requests
    return out


def level_figures(before: Scrape | None, after: Scrape | None, route: str) -> dict[str, float]:
    """mean_ms (server-side time per request), queue_ms, inference_ms, batch_mean, cpu_cores and
    cpu_ms_per_request where the server gives them."""
    if before is None or after is None:
        return {}
    out: dict[str, float] = {}
    tei = _delta_mean(before, after, "te_request_duration")
    if tei is not None:
        out.update(cpu_figures(before, after, _counted(before, after, "te_request_duration_count")))
        out["mean_ms"] = 1000.0 * tei
        for name, key in (("te_request_queue_duration", "queue_ms"), ("te_request_inference_duration", "inference_ms")):
            value = _delta_mean(before, after, name)
            if value is not None:
                out[key] = 1000.0 * value
        batch = _delta_mean(before, after, "te_batch_next_size")
        if batch is not None:
            out["batch_mean"] = batch
        return out
    fastapi = _delta_mean(before, after, "http_request_duration_seconds", handler=route)
    if fastapi is not None:
        out["mean_ms"] = 1000.0 * fastapi
    handled = _counted(before, after, "http_request_duration_seconds_count", handler=route)
    out.update(cpu_figures(before, after, handled))
    return out
