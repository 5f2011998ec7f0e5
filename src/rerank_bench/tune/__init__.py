"""`rerank-bench tune`: the search over backend, precision, batch size and threads, and the code it prints."""
