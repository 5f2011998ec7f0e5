"""`rerank-bench sweep`: the case grid, planning, the scheduler and its worker processes, the timed loop,
ranking agreement, relevance metrics and the matmul peak."""
