"""Served rerankers: `rerank-bench endpoint` measures a TEI, infinity, vLLM or Cohere-style /rerank endpoint
under closed- and open-loop load, into the sweep's result files."""
