"""Rich output for `tune`: the search, then the answer with its settings."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rerank_bench.common.case_key import features_label
from rerank_bench.common.vocab import Status
from rerank_bench.render.format import number


def _config(config: dict[str, Any]) -> str:
    threads = f" {config['threads']}t" if config.get("device") == "cpu" else ""
    features = features_label(config.get("attention"), config.get("prefix"))
    return f"{config['backend']} {config['dtype']} {config['order']}{features} batch {config['batch_size']}{threads}"


def _agreement(agreement: dict[str, Any]) -> str:
    ndcg = agreement.get("ndcg_at_10")
    quality = ""
    if ndcg is not None:
        drop = agreement.get("ndcg_drop")
        quality = f"; nDCG@10 {ndcg:.4f}" + (f" (drop {drop:+.4f})" if drop is not None else "")
    if agreement.get("spearman_mean") is None:
        return "reference" + quality
    worst, top10 = number(agreement.get("spearman_worst"), 3), number(agreement.get("top10_overlap"), 2)
    return f"{agreement['spearman_mean']:.4f} (worst {worst}, top10 {top10})" + quality


def _ndcg_floor(result: Any) -> str:
    drop = getattr(result, "max_ndcg_drop", None)
    return f", nDCG drop <= {drop:g}" if drop is not None else ""


def render_tune(result: Any, console: Console, limit: int = 20) -> None:
    search = Table(title=f"tune {result.model} at depth {result.depth}: search (fastest first)")
    for name, right in (
        ("configuration", False),
        ("pairs/s", True),
        ("p50 ms", True),
        ("slowest ms", True),
        ("rho mean", True),
        ("top10", True),
        ("GFLOP/s", True),
        ("of peak", True),
        ("status", False),
    ):
        search.add_column(name, justify="right" if right else "left")
    shown = [c for c in result.candidates if c["status"] == Status.OK][:limit]
    for c in shown:
        peak = f"{c['fraction_of_peak']:.0%}" if c.get("fraction_of_peak") is not None else "-"
        search.add_row(
            _config(c),
            number(c["pairs_per_s"]),
            number(c["p50_ms"]),
            number(c["max_ms"]),
            number(c["agreement_spearman_mean"], 4),
            number(c["agreement_top10_overlap"], 2),
            number(c["gflop_per_s"], 0),
            peak,
            "ok",
        )
    skipped = [c for c in result.candidates if c["status"] != Status.OK]
    console.print(search)
    if skipped:
        reasons: dict[str, int] = {}
        for c in skipped:
            key = (
                f"{c['backend']} {c['dtype']}: {c['status_reason']}"
                if not c["status_reason"].startswith("pruned")
                else "pruned (slower than a smaller batch)"
            )
            reasons[key] = reasons.get(key, 0) + 1
        for reason, count in sorted(reasons.items()):
            console.print(escape(f"  not run ({count}): {reason}"), highlight=False)

    answer = Table(
        title=f"answer (confirmed: {len(result.naive.rounds) if result.naive else 0} fresh-process rounds each)"
    )
    for name, right in (
        ("", False),
        ("configuration", False),
        ("pairs/s", True),
        ("p50 ms", True),
        ("p95 ms", True),
        ("agreement (Spearman vs torch fp32)", False),
        ("GFLOP/s", True),
        ("of peak", True),
        ("speed-up", True),
    ):
        answer.add_column(name, justify="right" if right else "left")
    naive_rate = result.naive.pairs_per_s if result.naive else None
    for label, choice in (
        ("naive default", result.naive),
        (f"best (rho >= {result.min_agreement:g}{_ndcg_floor(result)})", result.best),
        ("best at any agreement", result.best_any_agreement),
    ):
        if choice is None:
            answer.add_row(label, "none", "-", "-", "-", "-", "-", "-", "-")
            continue
        peak = f"{choice.fraction_of_peak:.0%}" if choice.fraction_of_peak is not None else "-"
        speedup = f"{choice.pairs_per_s / naive_rate:.2f}x" if naive_rate else "-"
        answer.add_row(
            label,
            _config(choice.config),
            number(choice.pairs_per_s),
            number(choice.p50_ms),
            number(choice.p95_ms),
            _agreement(choice.agreement),
            number(choice.gflop_per_s, 0),
            peak,
            speedup,
        )
    console.print(answer)
    if result.best is not None:
        from rerank_bench.tune.snippets import settings_for

        settings = settings_for(result, result.best)
        where = f" (loads {result.export_folder})" if result.export_folder else ""
        console.print(f"\nrun it ({settings['kind']}){escape(where)}:", highlight=False)
        console.print(escape(settings["code"]), highlight=False)
        if settings["text_embeddings_inference"]:
            tei = escape(settings["text_embeddings_inference"])
            console.print(f"\ntext-embeddings-inference: {tei}", highlight=False)
    console.print(f"\nresults: {escape(str(result.output))}", highlight=False)
