"""rerank-bench: how fast a reranker runs on this hardware, and whether it fits."""

__version__ = "0.1.0"
