"""Relevance metrics of a ranking on labelled requests: nDCG@10, MRR@10 and Recall@10, for a configuration's
scores and for the candidates' given order (the first stage), so the reranker's lift shows.

Computed by ir-measures (https://ir-measur.es), not by hand, with the provider it picks for each measure:
trec_eval's own code (pytrec_eval) for nDCG@10 and R@10, the MS MARCO evaluation for RR@10. (Its pytrec_eval
provider reads RR@10 as trec_eval's recip_rank, which has no cutoff: a relevant document at rank 12 scored
1/12; a test here caught it.) ranx would do the same, but pulls numba, seaborn, fastparquet and ir_datasets,
where ir-measures needs only pytrec-eval-terrier (a 300 kB wheel). Each request is one query; its documents
are judged by their labels, and relevant documents the candidates miss are judged too, so recall and nDCG's
ideal ranking count them. Scores tie-break as trec_eval does (by document id); the ids here keep the given order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerank_bench.workload.records import Request

MEASURES = {"nDCG@10": "ndcg_at_10", "RR@10": "mrr_at_10", "R@10": "recall_at_10"}


def labelled(requests: Sequence[Request]) -> bool:
    return bool(requests) and all(r.labels is not None for r in requests)


def _doc_id(i: int, width: int) -> str:
    # zero-padded, so trec_eval's tie-break by id (descending) is a fixed, documented order
    return f"d{i:0{width}d}"


def relevance_metrics(requests: Sequence[Request], scores: Sequence[Sequence[float]]) -> dict[str, float]:
    """{"ndcg_at_10": ..., "mrr_at_10": ..., "recall_at_10": ...}, means over the requests."""
    import ir_measures

    if len(requests) != len(scores):
        raise ValueError("one score list per request")
    qrels, run = [], []
    for q, (request, values) in enumerate(zip(requests, scores, strict=True)):
        if request.labels is None or len(values) != len(request.labels):
            raise ValueError("every request needs one label and one score per document")
        qid = f"q{q}"
        width = len(str(len(values)))
        qrels += [ir_measures.Qrel(qid, _doc_id(i, width), int(g)) for i, g in enumerate(request.labels)]
        qrels += [ir_measures.Qrel(qid, f"missed{k}", int(g)) for k, g in enumerate(request.outside)]
        run += [ir_measures.ScoredDoc(qid, _doc_id(i, width), float(v)) for i, v in enumerate(values)]
    measures = [ir_measures.parse_measure(name) for name in MEASURES]
    found = ir_measures.calc_aggregate(measures, qrels, run)
    return {MEASURES[str(m)]: float(v) for m, v in found.items()}


def given_order_scores(requests: Sequence[Request]) -> list[list[float]]:
    """The first stage's ranking as scores: the first candidate highest."""
    return [[float(len(r.documents) - i) for i in range(len(r.documents))] for r in requests]


def quality_fields(requests: Sequence[Request], scores: Sequence[Sequence[float]]) -> dict[str, Any]:
    """A row's relevance columns: this configuration's, the first stage's, and how many requests they cover."""
    ours = relevance_metrics(requests, scores)
    first = relevance_metrics(requests, given_order_scores(requests))
    return {
        **ours,
        **{f"first_stage_{k}": v for k, v in first.items()},
        "quality_requests": len(requests),
    }
