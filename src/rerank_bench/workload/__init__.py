"""Requests to score: the synthetic length mix, JSONL files with or without labels, BEIR folders."""
