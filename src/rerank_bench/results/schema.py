"""The result schema: one CSV row per case. README.md's "Result files" section documents every column.

Bump SCHEMA_VERSION whenever a column is added, removed, renamed or changes meaning; readers refuse
versions they do not know (or upgrade them).
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 12
# Versions read by upgrading (their missing columns empty; every older column kept its meaning):
# 1 -> 2 added the backend, work and agreement columns (version 1 ran only the torch backend, given order);
# 2 -> 3 added tokens per second and the background CPU load, and the status `crashed`;
# 3 -> 4 added the served-endpoint columns (`rerank-bench endpoint` rows; empty in sweep rows);
# 4 -> 5 added the relevance columns (labelled workloads; empty otherwise);
# 5 -> 6 added every percentile's interval, and for endpoint rows latency over every request sent (failures
# slower than any reply), the SLO count test, the level's window and rates, connection set-up, the server's own
# times and the capacity summary row. An endpoint row of version 5 or older had its percentiles over completed
# requests only: on upgrading they move to completed_p*_ms, and p*_ms stay only where nothing failed
# (results/store.py).
# 6 -> 7 keeps the case key as planned, so that a row's own key columns reproduce its case_id: what loading
# settled moves to columns of its own, the length the model truncated at (`effective_max_length`; `max_length`
# is the setting, empty for the model's own) and a newly initialised head (`random_head`; `weights` was
# "real+random-head"). On upgrading, max_length is emptied where the row's case_id says the setting was
# (results/store.py).
# 7 -> 8 added two case-key columns for speed features: `attention` (sdpa or eager; empty: the runtime's own
# choice, as every older row ran) and `prefix` (shared: a decoder reranker's common prompt prefix run once per
# request; empty: every pair whole, as every older row ran). Empty, they leave the case id as it was.
# 8 -> 9 added the served endpoint's batching setting where the server says it (`server_batch_size`: infinity's
# --batch-size; `server_max_batch_tokens`: TEI's), so will-it-run fits a served overhead under the setting the
# rows ran. Empty in older rows (fitted as before, under the plan's setting).
# 9 -> 10 added `over_slo_design_effect`: the SLO count test now takes clustered overs at their effective size
# (common/slo.py), and this says by how much. Empty in older rows, whose bounds took every request as independent.
# 10 -> 11 added `idle_before_ms` and `settle_s`: before each endpoint level the server is probed one request at a
# time until it answers near its unloaded time (endpoint/settle.py). Empty in older rows, whose levels started
# once the server's queue was empty, whatever its speed.
# 11 -> 12 added `server_cpu_cores`, `server_cpu_ms_per_request` (the serving process's CPU over a level, from its
# process_cpu_seconds_total where its /metrics page has it) and `loadgen_cpu_cores` (the load generator's own).
# Empty in older rows.
UPGRADABLE_VERSIONS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")
ADDED_IN_2 = (
    "backend_options",
    "gflop_per_query",
    "gflop_per_s",
    "peak_gflop_per_s",
    "fraction_of_peak",
    "agreement_reference",
    "agreement_requests",
    "agreement_spearman_mean",
    "agreement_spearman_worst",
    "agreement_top10_overlap",
    "agreement_max_abs_diff",
    "export_s",
)
ADDED_IN_3 = ("tokens_per_s", "padded_tokens_per_s", "background_cpu_pct")
ADDED_IN_4 = (
    "endpoint",
    "api",
    "server",
    "load_mode",
    "concurrency",
    "offered_rps",
    "burstiness",
    "requests_sent",
    "requests_completed",
    "requests_failed",
    "errors",
    "slo_ms",
    "goodput_rps",
    "mean_in_flight",
    "send_lag_p99_ms",
    "behind_schedule",
)
ADDED_IN_5 = (
    "quality_requests",
    "ndcg_at_10",
    "mrr_at_10",
    "recall_at_10",
    "first_stage_ndcg_at_10",
    "first_stage_mrr_at_10",
    "first_stage_recall_at_10",
    "reference_ndcg_at_10",
    "ndcg_drop",
)
ADDED_IN_6 = (
    "p90_ci_low_ms",
    "p90_ci_high_ms",
    "p95_ci_low_ms",
    "p95_ci_high_ms",
    "p99_ci_low_ms",
    "p99_ci_high_ms",
    "completed_p50_ms",
    "completed_p95_ms",
    "completed_p99_ms",
    "window_s",
    "scheduled_rps",
    "achieved_rps",
    "level_state",
    "slo_percentile",
    "slo_verdict",
    "over_slo",
    "over_slo_fraction_low",
    "over_slo_fraction_high",
    "connections_opened",
    "connect_mean_ms",
    "server_total_p50_ms",
    "server_total_p95_ms",
    "server_queue_p50_ms",
    "server_queue_p95_ms",
    "server_inference_p50_ms",
    "server_inference_p95_ms",
    "server_tokenization_p50_ms",
    "server_tokenization_p95_ms",
    "server_mean_ms",
    "server_batch_mean",
    "server_cpu_cores",
    "server_cpu_ms_per_request",
    "loadgen_cpu_cores",
    "client_minus_server_ms",
    "capacity_rps",
    "capacity_fail_rps",
    "ceiling_rps",
    "capacity_levels",
)
ADDED_IN_7 = ("effective_max_length", "random_head")
ADDED_IN_8 = ("attention", "prefix")
ADDED_IN_9 = ("server_batch_size", "server_max_batch_tokens")
ADDED_IN_10 = ("over_slo_design_effect",)
ADDED_IN_11 = ("idle_before_ms", "settle_s")
ADDED_IN_12 = ("server_cpu_cores", "server_cpu_ms_per_request", "loadgen_cpu_cores")
_ADDED_IN = (
    ADDED_IN_2,
    ADDED_IN_3,
    ADDED_IN_4,
    ADDED_IN_5,
    ADDED_IN_6,
    ADDED_IN_7,
    ADDED_IN_8,
    ADDED_IN_9,
    ADDED_IN_10,
    ADDED_IN_11,
    ADDED_IN_12,
)
# a row of version v lacks what every later version added
ADDED_SINCE = {str(v): tuple(c for added in _ADDED_IN[v - 1 :] for c in added) for v in range(1, SCHEMA_VERSION)}

# (column, meaning). Units are in the names.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("schema_version", "version of this column layout"),
    ("run_id", "one id per `sweep` invocation; the raw-sample sidecar uses the same id"),
    ("case_id", "hash of the case key (model ... seed); equal keys give equal ids across runs"),
    ("utc_time", "when the case finished, ISO 8601 UTC"),
    ("tool_version", "rerank-bench version"),
    ("git_commit", "commit of the rerank-bench source when run from a git checkout, else empty"),
    ("git_dirty", "true when that checkout had uncommitted changes"),
    ("host", "host name"),
    ("hardware_fingerprint", "short hash of CPU model, usable cores, memory and GPUs (see `probe`)"),
    ("hardware_name", "first GPU's name, or the CPU model and usable cores"),
    ("cpu_model", "CPU model name"),
    ("cpu_isa", "vector ISA (torch's capability, with BF16/VNNI/AMX detail from the CPU flags)"),
    ("gpu_name", "name of the GPU the case ran on, empty on CPU"),
    ("os", "operating system"),
    ("python_version", "Python version"),
    ("torch_version", "torch version"),
    ("transformers_version", "transformers version"),
    ("sentence_transformers_version", "sentence-transformers version"),
    ("onnxruntime_version", "onnxruntime version"),
    ("model", "catalog alias, Hub id or folder name"),
    ("model_id", "Hub id or folder path that was loaded (for a twin: the Hub id it copies)"),
    ("revision", "Hub commit of the weights where known"),
    ("weights", "real, random (architecture twin: same speed, meaningless scores) or served (an endpoint's)"),
    ("random_head", "true when loading initialised the classifier head anew (--allow-random-head): speed only"),
    ("tokenizer", "own (the model's tokenizer) or offline (built by rerank-bench, same vocabulary size)"),
    ("backend", "inference runtime: torch (sentence-transformers CrossEncoder), onnx (ONNX Runtime), openvino"),
    (
        "backend_options",
        "how the runtime was set up: opset, fused attention count, quantization, precision hint, version",
    ),
    ("dtype", "weight and compute precision"),
    ("device", "cpu, cuda:N or mps"),
    ("batch_size", "pairs per forward pass"),
    ("depth", "candidate documents per query"),
    ("max_length", "the --max-length setting, part of the case key; empty: the model's own limit"),
    ("effective_max_length", "tokens per pair after truncation: the setting, or the model's own limit once loaded"),
    (
        "order",
        "given: candidates handed over as in the request; length: batched by ascending token length; tokens:N: "
        "by length, each batch within N padded tokens (at most batch_size pairs)",
    ),
    (
        "attention",
        "sdpa or eager: the attention implementation asked of transformers (torch); empty: the runtime's own "
        "(SDPA where transformers has it; onnx and openvino exports fix their own)",
    ),
    (
        "prefix",
        "shared: a decoder reranker's tokens common to every pair (prompt, instruction, query) run once per "
        "request, each pair's rest against them; empty: every pair whole",
    ),
    ("threads", "CPU threads the runtime may use"),
    ("workload", "length mix: rag, fixed:N, uniform:A:B, or file:NAME@SHA"),
    ("seed", "seed of the synthetic workload"),
    ("status", "ok, oom, crashed, error, timeout or skipped"),
    (
        "status_reason",
        "why the status is not ok (the error message, or what was skipped and why); a served level of a capacity "
        "search starts with what it was for (one client, the ceiling, the light level, a search level, a "
        "confirmation)",
    ),
    (
        "n_queries",
        "timed queries (a query: one request of `depth` pairs, end to end), whole passes over the depth's request set",
    ),
    ("warmup_queries", "untimed queries before timing"),
    ("measure_s", "wall time of the timed queries"),
    (
        "stop_reason",
        "why timing stopped, after how many whole passes of how many requests: precision, time_cap or max_queries",
    ),
    ("pairs_per_s", "query-document pairs scored per second: n_queries * depth / measure_s"),
    ("queries_per_s", "queries per second"),
    ("mean_ms", "mean per-query latency (tokenize + forward + device sync)"),
    ("stdev_ms", "sample standard deviation of per-query latency"),
    ("min_ms", "fastest query"),
    ("max_ms", "slowest query"),
    ("p50_ms", "median per-query latency"),
    ("p90_ms", "90th percentile; empty when too few queries (see percentile_note)"),
    ("p95_ms", "95th percentile; empty when too few queries"),
    ("p99_ms", "99th percentile; empty when too few queries"),
    (
        "p50_ci_low_ms",
        "lower end of the distribution-free 95% confidence interval of the median (endpoint rows: widened to hold "
        "the batch-means interval too, as a served level's latencies are correlated)",
    ),
    ("p50_ci_high_ms", "upper end of that interval"),
    (
        "p90_ci_low_ms",
        "lower end of the 95% confidence interval of p90 (binomial order statistics); empty if unbounded",
    ),
    ("p90_ci_high_ms", "upper end of that interval; empty where too few samples bound it"),
    ("p95_ci_low_ms", "lower end of the 95% confidence interval of p95 (endpoint rows: as the median's)"),
    ("p95_ci_high_ms", "upper end of that interval; empty where too few samples bound it (fewer than 72)"),
    ("p99_ci_low_ms", "lower end of the 95% confidence interval of p99"),
    ("p99_ci_high_ms", "upper end of that interval; empty where too few samples bound it (fewer than 368)"),
    ("percentile_note", "which percentiles were left empty and how many queries they need"),
    ("query_tokens_mean", "mean query length in tokens"),
    ("pair_tokens_mean", "mean tokens per pair, special tokens included, after truncation"),
    ("pair_tokens_p50", "median tokens per pair"),
    ("pair_tokens_p95", "95th percentile of tokens per pair"),
    ("padding_efficiency", "real tokens / tokens computed (padding included), over the timed queries"),
    ("tokens_per_s", "real tokens (special tokens included, no padding) of the timed queries / measure_s"),
    ("padded_tokens_per_s", "tokens computed, padding included, / measure_s: what the device actually did"),
    ("gflop_per_query", "useful work per query: model FLOPs at the pairs' real token lengths (no padding), in GFLOP"),
    ("gflop_per_s", "achieved rate of useful work: FLOPs of the timed queries / measure_s"),
    ("peak_gflop_per_s", "this machine's measured matmul peak for the dtype at these threads (GOP/s for int8)"),
    ("fraction_of_peak", "gflop_per_s / peak_gflop_per_s"),
    ("agreement_reference", "configuration the scores are compared with (torch/fp32/given, same model and device)"),
    ("agreement_requests", "requests scored once by both for the comparison"),
    (
        "agreement_spearman_mean",
        "mean over those requests of Spearman's rho between this case's and the reference's scores",
    ),
    ("agreement_spearman_worst", "lowest per-request Spearman's rho"),
    ("agreement_top10_overlap", "mean share of the reference's top 10 that this case also ranks in its top 10"),
    ("agreement_max_abs_diff", "largest absolute score difference from the reference"),
    (
        "background_cpu_pct",
        "share of the machine's CPU that other processes used during the case; above 10 the figures are likely low",
    ),
    ("load_s", "time to load the model (for a twin: to load it, not to build it)"),
    ("export_s", "onnx/openvino: time spent exporting and quantizing in this run; 0 when found in the cache"),
    ("peak_rss_mib", "CPU: peak resident memory of the worker process during the case"),
    ("rss_growth_mib", "CPU: peak resident memory minus resident memory before the case"),
    ("peak_vram_allocated_mib", "CUDA: torch.cuda.max_memory_allocated during the case"),
    ("peak_vram_reserved_mib", "CUDA: torch.cuda.max_memory_reserved during the case"),
    ("nvml_process_mib", "CUDA: GPU memory NVML attributes to the worker process (context included)"),
    ("samples_file", "sidecar file holding this case's raw per-query latencies"),
    # Served endpoints (`rerank-bench endpoint`): one row per load level. Empty in sweep rows.
    ("endpoint", "endpoint: the rerank URL, without user name, password or query string"),
    ("api", "endpoint: the API spoken, tei, infinity, vllm or cohere"),
    ("server", "endpoint: what the server says of itself on its info route (name, version, model)"),
    ("load_mode", "endpoint: closed (N clients, each sends when its last reply is in) or open (scheduled arrivals)"),
    ("concurrency", "endpoint, closed loop: clients"),
    ("offered_rps", "endpoint, open loop: requests per second offered (scheduled), whatever the server did"),
    ("burstiness", "endpoint, open loop: gamma shape of the arrival gaps, 1 = Poisson, below 1 burstier"),
    ("requests_sent", "endpoint: timed requests sent"),
    ("requests_completed", "endpoint: valid replies (one score per document); n_queries is the same count"),
    ("requests_failed", "endpoint: requests that failed, of any kind (see errors)"),
    ("errors", "endpoint: failures by kind, e.g. http_503:3;timeout:1;malformed:2;connection:1"),
    ("slo_ms", "endpoint: the latency objective asked for (--slo-ms)"),
    ("goodput_rps", "endpoint: valid replies within slo_ms, per second"),
    ("mean_in_flight", "endpoint: requests outstanding, averaged over the level (sum of latencies / measure_s)"),
    (
        "send_lag_p99_ms",
        "endpoint, open loop: 99th percentile of how late the generator sent requests (latency counts from "
        "the scheduled time)",
    ),
    (
        "behind_schedule",
        "endpoint, open loop: true when send_lag_p99_ms passed 10 ms or 2% of the median latency (rate not met)",
    ),
    # Served endpoints, schema 6: the window, the SLO's count test, the server's own view, the capacity row.
    (
        "completed_p50_ms",
        "endpoint: median over completed requests only (p50_ms counts failures as slower than any reply)",
    ),
    ("completed_p95_ms", "endpoint: p95 over completed requests only"),
    ("completed_p99_ms", "endpoint: p99 over completed requests only"),
    ("window_s", "endpoint: scheduled time the level's measured requests span (open loop), or its elapsed time"),
    ("scheduled_rps", "endpoint, open loop: requests scheduled in the window / window_s (offered_rps is the label)"),
    ("achieved_rps", "endpoint: completed requests / window_s"),
    ("level_state", "endpoint: steady, not steady (latency still rising), saturated, stopped early or time limit"),
    ("slo_percentile", "endpoint: the percentile held to slo_ms (95: p95)"),
    (
        "slo_verdict",
        "endpoint: pass, fail, undecided or invalid: the count test at 95% (capacity row: the confirmation's)",
    ),
    ("over_slo", "endpoint: requests in the window over slo_ms, failed ones included"),
    ("over_slo_fraction_low", "endpoint: one-sided lower confidence bound of the fraction over (Clopper-Pearson)"),
    ("over_slo_fraction_high", "endpoint: one-sided upper confidence bound; the level passes when it is <= 1 - q"),
    (
        "over_slo_design_effect",
        "endpoint: how clustered the overs were (the blocks' counts' variance against independent overs', at "
        "least 1): the bounds take the count and the window divided by it",
    ),
    ("connections_opened", "endpoint: connections opened during the window (they are pre-opened before it)"),
    (
        "idle_before_ms",
        "endpoint: the server's time for one request at a time just before the level (median of 3): near the "
        "closed x1 level's p50 on a server that had recovered from the last level",
    ),
    (
        "settle_s",
        "endpoint: how long the level waited for idle_before_ms to come within 1.5x of the depth's unloaded time "
        "(--settle-wait-s at most; past it, the level ran anyway)",
    ),
    ("connect_mean_ms", "endpoint: mean time to open those connections"),
    ("server_total_p50_ms", "endpoint: median of the server's own x-total-time header (TEI)"),
    ("server_total_p95_ms", "endpoint: p95 of x-total-time"),
    ("server_queue_p50_ms", "endpoint: median of x-queue-time (TEI): time waiting for a batch"),
    ("server_queue_p95_ms", "endpoint: p95 of x-queue-time"),
    ("server_inference_p50_ms", "endpoint: median of x-inference-time (TEI): the model's time"),
    ("server_inference_p95_ms", "endpoint: p95 of x-inference-time"),
    ("server_tokenization_p50_ms", "endpoint: median of x-tokenization-time (TEI)"),
    ("server_tokenization_p95_ms", "endpoint: p95 of x-tokenization-time"),
    (
        "server_mean_ms",
        "endpoint: server-side mean request time over the level (Prometheus /metrics delta, or headers)",
    ),
    ("server_batch_mean", "endpoint: mean batch size the server ran over the level (TEI's te_batch_next_size)"),
    (
        "server_cpu_cores",
        "endpoint: cores the serving process kept busy over the level (its /metrics process_cpu_seconds_total: "
        "infinity, vLLM's API process; not TEI)",
    ),
    ("server_cpu_ms_per_request", "endpoint: the serving process's CPU time a request it counted over the level"),
    (
        "loadgen_cpu_cores",
        "endpoint: cores the load generator's own process kept busy over the level (taken from a server on the "
        "same machine)",
    ),
    ("server_batch_size", "endpoint: the server's --batch-size, where it says it (infinity's /models)"),
    ("server_max_batch_tokens", "endpoint: the server's --max-batch-tokens, where it says it (TEI's /info)"),
    ("client_minus_server_ms", "endpoint: completed requests' mean latency minus server_mean_ms: network and client"),
    ("capacity_rps", "endpoint, capacity row: the highest open-loop rate whose SLO count test passed"),
    ("capacity_fail_rps", "endpoint, capacity row: the lowest rate above it that did not pass (the bracket's top)"),
    ("ceiling_rps", "endpoint, capacity row: the closed-loop throughput ceiling the search was laid under"),
    ("capacity_levels", "endpoint, capacity row: open-loop levels the search ran (its confirmation not counted)"),
    # Relevance (labelled workloads: JSONL "labels"/"relevant", or a BEIR folder). Empty otherwise.
    ("quality_requests", "labelled requests scored (untimed, after timing) for the relevance columns"),
    ("ndcg_at_10", "mean nDCG@10 of this case's ranking (trec_eval's, through ir-measures; gain = the grade)"),
    ("mrr_at_10", "mean reciprocal rank of the first relevant document within the top 10"),
    ("recall_at_10", "mean share of the relevant documents (missed candidates included) in the top 10"),
    ("first_stage_ndcg_at_10", "nDCG@10 of the candidates' given order (the first stage): the lift's baseline"),
    ("first_stage_mrr_at_10", "MRR@10 of the given order"),
    ("first_stage_recall_at_10", "Recall@10 of the given order"),
    ("reference_ndcg_at_10", "nDCG@10 of the reference configuration (torch fp32, given order) on the same requests"),
    ("ndcg_drop", "reference_ndcg_at_10 - ndcg_at_10: what this configuration costs in quality (tune --max-ndcg-drop)"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)

# How each column is read back: numbers are parsed once, here, so every reader (sweep --resume, compare,
# report, tune, will-it-run) gets ints and floats, and None for an empty cell. Other columns are text.
INT_COLUMNS = frozenset(
    {
        "schema_version",
        "batch_size",
        "depth",
        "max_length",
        "effective_max_length",
        "threads",
        "seed",
        "n_queries",
        "warmup_queries",
    }
    | {"agreement_requests", "concurrency", "requests_sent", "requests_completed", "requests_failed"}
    | {"quality_requests", "over_slo", "connections_opened", "capacity_levels"}
)
BOOL_COLUMNS = frozenset({"git_dirty", "behind_schedule", "random_head"})
TEXT_COLUMNS = frozenset(
    {
        "run_id",
        "case_id",
        "utc_time",
        "tool_version",
        "git_commit",
        "host",
        "hardware_fingerprint",
        "hardware_name",
        "cpu_model",
        "cpu_isa",
        "gpu_name",
        "os",
        "python_version",
        "torch_version",
        "transformers_version",
        "sentence_transformers_version",
        "onnxruntime_version",
        "model",
        "model_id",
        "revision",
        "weights",
        "tokenizer",
        "backend",
        "backend_options",
        "dtype",
        "device",
        "order",
        "attention",
        "prefix",
        "workload",
        "status",
        "status_reason",
        "stop_reason",
        "percentile_note",
        "agreement_reference",
        "samples_file",
        "endpoint",
        "api",
        "server",
        "load_mode",
        "errors",
        "level_state",
        "slo_verdict",
    }
)
FLOAT_COLUMNS = frozenset(COLUMN_NAMES) - INT_COLUMNS - BOOL_COLUMNS - TEXT_COLUMNS

# A result row: column name -> value (str, int, float, bool, or None for an empty cell). Rows the sweep has
# just measured and rows read back from a file have the same shape.
ResultRow = dict[str, Any]
