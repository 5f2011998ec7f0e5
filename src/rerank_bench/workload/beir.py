"""A BEIR-format folder as a labelled workload (the layout of the BEIR benchmark's datasets):

    FOLDER/corpus.jsonl       {"_id": "d1", "title": "...", "text": "..."} per line
    FOLDER/queries.jsonl      {"_id": "q1", "text": "..."} per line
    FOLDER/qrels/<split>.tsv  query-id <tab> corpus-id <tab> score, after a header line
    FOLDER/run.trec           optional first-stage run: "qid Q0 docid rank score tag" per line (TREC format)

Each judged query of the split (test, else the only split there is) becomes one request. Its candidates are
the run's documents in the run's order (best first) where a run is given: the first stage, whose own order
is then the baseline the reranker's lift is measured against. Without a run they are drawn by a stated,
seeded rule: the query's judged documents (up to 1 in 4 of the candidates), then documents drawn from the
corpus at random to fill the list (seeded by the query id), shuffled together; their given order is random,
so the first stage's figures then describe a random ordering, not a retriever. Relevant documents that are
not among the candidates count as missed (recall and nDCG's ideal ranking include them).

A document's text is its title and its text joined by a space, as BEIR's rerankers read them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from rerank_bench.errors import WorkloadError
from rerank_bench.workload.records import FileRequest

DRAWN_CANDIDATES = 100  # candidates per query when no run is given (deep enough for any --depth up to this)
JUDGED_SHARE = 0.25  # at most this share of drawn candidates are judged documents


def _jsonl(path: Path, fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise WorkloadError(f"BEIR folder {path.parent}: no {path.name}", "see README, Workloads, for the layout")
    out: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WorkloadError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or not all(isinstance(obj.get(f, ""), str) for f in fields):
                raise WorkloadError(f"{path}:{number}: {', '.join(fields)} must be strings")
            if not isinstance(obj.get("_id"), str) or not obj["_id"]:
                raise WorkloadError(f'{path}:{number}: needs a string "_id"')
            out[obj["_id"]] = obj
    return out


def _qrels(folder: Path) -> tuple[Path, dict[str, dict[str, int]]]:
    splits = sorted((folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
    if not splits:
        raise WorkloadError(f"BEIR folder {folder}: no qrels/<split>.tsv", "see README, Workloads, for the layout")
    chosen = next((p for p in splits if p.stem == "test"), splits[0] if len(splits) == 1 else None)
    if chosen is None:
        names = ", ".join(p.stem for p in splits)
        raise WorkloadError(f"BEIR folder {folder}: qrels has {names} and no test split", "keep one split there")
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(chosen.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if number == 1 and parts[0] in ("query-id", "query_id", "qid"):
            continue
        if not line.strip():
            continue
        if len(parts) != 3:
            raise WorkloadError(f"{chosen}:{number}: needs query-id, corpus-id and score separated by tabs")
        try:
            grade = int(parts[2])
        except ValueError:
            raise WorkloadError(f"{chosen}:{number}: score {parts[2]!r} is not a whole number") from None
        if grade < 0:
            raise WorkloadError(f"{chosen}:{number}: score {grade} is negative (graded relevance is 0 or more)")
        qrels.setdefault(parts[0], {})[parts[1]] = grade
    if not qrels:
        raise WorkloadError(f"{chosen}: holds no judgements")
    return chosen, qrels


def _run(path: Path) -> dict[str, list[str]]:
    """A TREC run: each query's documents by rank (then by score, highest first)."""
    ranked: dict[str, list[tuple[int, float, str]]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise WorkloadError(f"{path}:{number}: a TREC run line is 'qid Q0 docid rank score tag'")
        try:
            rank, score = int(parts[3]), float(parts[4])
        except ValueError:
            raise WorkloadError(f"{path}:{number}: rank and score must be numbers") from None
        ranked.setdefault(parts[0], []).append((rank, -score, parts[2]))
    return {q: [doc for _, _, doc in sorted(items)] for q, items in ranked.items()}


def _drawn(qid: str, judged: dict[str, int], corpus_ids: list[str]) -> list[str]:
    rng = random.Random(f"beir:{qid}")
    size = min(DRAWN_CANDIDATES, len(corpus_ids))
    ordered = sorted(judged, key=lambda d: (-judged[d], d))  # relevant ones first, if there are too many
    chosen = ordered[: max(1, int(size * JUDGED_SHARE))]
    taken = set(chosen)
    pool = [d for d in corpus_ids if d not in taken]
    chosen += rng.sample(pool, min(len(pool), size - len(chosen)))
    rng.shuffle(chosen)
    return chosen


def load_beir(folder: Path) -> list[FileRequest]:
    corpus = _jsonl(folder / "corpus.jsonl", ("title", "text"))
    queries = _jsonl(folder / "queries.jsonl", ("text",))
    qrels_path, qrels = _qrels(folder)
    run_path = next((folder / n for n in ("run.trec", "run.txt", "run.tsv") if (folder / n).is_file()), None)
    run = _run(run_path) if run_path is not None else None
    corpus_ids = sorted(corpus)
    out = []
    for position, (qid, judged) in enumerate(sorted(qrels.items()), start=1):
        if qid not in queries:
            raise WorkloadError(f"{qrels_path}: query {qid!r} is not in queries.jsonl")
        if run is not None:
            candidates = [d for d in run.get(qid, []) if d in corpus]
            if not candidates:
                raise WorkloadError(f"{run_path}: no candidates for query {qid!r} (or none in corpus.jsonl)")
        else:
            candidates = _drawn(qid, {d: g for d, g in judged.items() if d in corpus}, corpus_ids)
        documents = tuple(f"{corpus[d].get('title', '')} {corpus[d].get('text', '')}".strip() for d in candidates)
        labels = tuple(judged.get(d, 0) for d in candidates)
        retrieved = set(candidates)
        outside = tuple(g for d, g in judged.items() if g > 0 and d not in retrieved)
        out.append(FileRequest(position, queries[qid]["text"], documents, labels, outside))
    return out
