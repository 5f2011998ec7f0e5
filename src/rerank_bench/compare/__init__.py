"""`rerank-bench compare` and `ab`: regression verdicts between runs, bootstrap intervals, interleaved A/B."""
