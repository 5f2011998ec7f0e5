"""`rerank-bench will-it-run` and `profiles`: memory and latency models, hardware profiles, calibration from
measured rows, and `--rate`'s serving simulation and capacity plan."""
