"""will-it-run --rate's predictions against a real infinity server, on four settings (issue 22's check).

    python benchmarks/willrun_vs_infinity.py [--measure] [--predict] [--settings tinybert-l2:20:8:400,...]

Settings are MODEL:DEPTH:INFINITY_BATCH:SLO_MS, documents of 16-64 tokens (the sweep's --doc-tokens 16:64).
--measure, for each setting: writes the model's twin as a folder infinity loads (`rerank-bench serve-folder`),
sweeps it in process at the depth for batches 4, 8, 16 and 32 (will-it-run's calibration rows, swept minutes before
the server runs, so both see one speed of this host), then serves it with `scripts/serve_infinity.sh` at
INFINITY_BATCH_SIZE (nice 5: the load generator is not starved on 2 cores), runs `rerank-bench endpoint --capacity`
(one search) and an open-loop level at half the capacity found (a minute of requests, at least 300), and once the
server is gone sweeps the setting's batch again (`-inprocess-after.csv`: whether the host's speed moved while the
server ran; --predict prints both); the measured figures go to benchmarks/results/willrun_vs_infinity.json.
--predict: `rerank-bench will-it-run FOLDER --hardware local --server infinity --batch-size B --rate HALF
--as-endpoint` calibrated on that model's in-process rows (its steady capacity, and what `endpoint --capacity` would
report on the model: the figure measured here is that one), for every measured setting, and `--batch-size auto` for
each model: the table of predicted against measured (targets: capacity within 20%, p95 at half within 25%, each
measured figure inside the predicted range; the predicted best batch is the measured best or within the
measurement's own margin of it). Each setting is predicted four ways: from the in-process rows alone; with the
served overhead fitted on that setting's server, from one short level (`+level1`: its capacity search's closed
x1, its light level where it ran one, and its first search level) and from its whole capacity search (`+search`:
in sample for the capacity, which those levels found, not for the p95 at half); and `+bN`, fitted on the other
batch's server's search instead (rows the compared figures never came from).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rerank_bench.results.store import read_rows, samples_path_for

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from endpoint_infinity import free_port, percent, start_infinity, stop_server, uptime, wait_ready  # noqa: E402 - the sibling script's helpers

DEFAULT_SETTINGS = "tinybert-l2:20:8:400,tinybert-l2:20:32:400,minilm-l6:50:8:3000,minilm-l6:50:32:3000"
DOC_TOKENS = "16:64"
HALF_MIN_REQUESTS = 300
MEASURED = ROOT / "benchmarks" / "results" / "willrun_vs_infinity.json"
# --tag NAME: another host's check beside this one's, in files of their own (willrun-check-NAME-..., and
# willrun_vs_infinity-NAME.json), so a measurement on a different CPU never replaces the settings' record.
TAG = ""
RB = [sys.executable, "-m", "rerank_bench"]


def settings(text: str) -> list[dict]:
    out = []
    for item in text.split(","):
        model, depth, batch, slo = item.split(":")
        out.append({"model": model, "depth": int(depth), "batch": int(batch), "slo_ms": float(slo)})
    return out


def folder_for(model: str) -> Path:
    folder = Path(f"/tmp/rerank-bench-serve-{model}")
    if not (folder / "config.json").exists():
        subprocess.run([*RB, "serve-folder", model, str(folder)], check=True)
    return folder


def inprocess_file(s: dict) -> Path:
    """The setting's own calibration rows (swept just before its server ran), or, for settings measured before
    that, the model's rows swept once for all its settings."""
    own = setting_file(s, "inprocess.csv")
    return own if own.exists() else ROOT / "results" / f"willrun-check-{s['model']}-d{s['depth']}-inprocess.csv"


def setting_file(s: dict, kind: str) -> Path:
    """results/willrun-check-<model>-b<batch>-<kind>: the server's log, its endpoint rows, the rows fitted on."""
    prefix = f"willrun-check-{TAG}-" if TAG else "willrun-check-"
    return ROOT / "results" / f"{prefix}{s['model']}-b{s['batch']}-{kind}"


def measured_path() -> Path:
    return MEASURED.with_name(f"willrun_vs_infinity-{TAG}.json") if TAG else MEASURED


def sh(command: list[str]) -> subprocess.CompletedProcess:
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command, text=True, stdout=subprocess.PIPE)
    if result.returncode not in (0, 1):
        raise SystemExit(f"exit {result.returncode}: {result.stdout[-2000:]}")
    return result


def measure(chosen: list[dict]) -> None:
    measured = json.loads(measured_path().read_text()) if measured_path().exists() else {}
    for s in chosen:
        folder = folder_for(s["model"])
        # the calibration rows of this setting, swept minutes before its server runs: this host's speed drifts
        # by up to 1.5x over hours (the brief), and rows swept hours apart from the server mixed two speeds
        rows = setting_file(s, "inprocess.csv")
        for stale in (rows, setting_file(s, "endpoint.csv"), setting_file(s, "fit.csv")):  # a fresh measurement
            stale.unlink(missing_ok=True)
            samples_path_for(stale).unlink(missing_ok=True)
        sh(
            [*RB, "sweep", "-m", str(folder), "--depth", str(s["depth"]), "--batch-size", "4,8,16,32"]
            + ["--doc-tokens", DOC_TOKENS, "--max-seconds-per-case", "15", "-o", str(rows)]
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        key = f"{s['model']}:{s['depth']}:{s['batch']}:{s['slo_ms']:g}"
        log = setting_file(s, "server.log").open("w")
        server = start_infinity(folder, port, s["batch"], log)
        try:
            wait_ready(url, server)
            print(f"infinity ready at {url} (batch {s['batch']}); {uptime()}", flush=True)
            out = setting_file(s, "endpoint.csv")
            endpoint = [*RB, "endpoint", url, "--api", "infinity", "--depth", str(s["depth"])]
            endpoint += ["--doc-tokens", DOC_TOKENS, "--slo-ms", f"{s['slo_ms']:g}", "-o", str(out), "--json"]
            started = time.monotonic()
            found = json.loads(sh([*endpoint, "--capacity"]).stdout)["depths"][0]
            wall = time.monotonic() - started
            capacity = found["capacity_rps"]
            entry = {
                "capacity_rps": capacity,
                "capacity_interval_rps": found["capacity_interval_rps"],
                "search_s": round(wall),
                "uptime_after_search": uptime(),
            }
            print(json.dumps(entry), flush=True)
            if capacity:
                half = capacity / 2
                count = half_level_requests(half)
                level = json.loads(sh([*endpoint, "--rate", f"{half:.4f}", "--requests", str(count)]).stdout)
                at_half = level["depths"][0]["levels"][0]
                entry.update(half_rps=half, p95_at_half_ms=at_half["p95_ms"], p50_at_half_ms=at_half["p50_ms"])
                entry.update(p95_at_half_ci_ms=at_half.get("p95_ci_ms"), half_requests=count)
            entry["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            measured[key] = entry
            measured_path().write_text(json.dumps(measured, indent=1) + "\n")
            print(f"{key}: {json.dumps(entry)}; {uptime()}", flush=True)
        finally:
            stop_server(server, log)
        # the same sweep again at the setting's batch once the server is gone: whether the host's speed moved
        # while it ran (it moved 1.5x between 19:15 and 22:33 on 2026-12-04: 278 and 422 pairs/s at batch 8),
        # which no prediction calibrated on the first sweep can follow
        after = setting_file(s, "inprocess-after.csv")
        after.unlink(missing_ok=True)
        sh(
            [*RB, "sweep", "-m", str(folder), "--depth", str(s["depth"]), "--batch-size", str(s["batch"])]
            + ["--doc-tokens", DOC_TOKENS, "--max-seconds-per-case", "15", "-o", str(after)]
        )
        time.sleep(5)


def half_level_requests(rate: float) -> int:
    """The half-capacity level's length: a minute of requests, and never under HALF_MIN_REQUESTS. A served
    level's latencies come in runs (a slow second slows ten requests in a row), so its p95 needs ten blocks of
    at least 20 for an interval that allows for that (common/stats.py's batch means); until 2026-12-03 this
    level was 90 requests, whose p95 was one or two such runs."""
    return max(HALF_MIN_REQUESTS, round(rate * 60))


def fit_rows(s: dict, whole_search: bool) -> Path | None:
    """The endpoint rows the served overhead is fitted on, in a file of their own so the fit sees only them: the
    capacity search's closed x1 and its first open level (one short level, `-fit.csv`), or with `whole_search`
    every level the search ran before its capacity row (`-fit-search.csv`; never the level at half the capacity
    that the predictions are compared with). Rows measured before the endpoint recorded the server's batch size
    (schema 9) get it from the setting this script started the server with, so a fit from one batch's server
    simulates its rows at that batch whatever batch is planned."""
    from rerank_bench.results.schema import COLUMN_NAMES, SCHEMA_VERSION
    from rerank_bench.results.store import write_csv
    from rerank_bench.willrun.served_calibration import light_levels

    source = setting_file(s, "endpoint.csv")
    if not source.exists():
        return None
    rows = read_rows(source)
    ends = [i for i, r in enumerate(rows) if r.get("load_mode") == "capacity"]
    search = rows[: ends[0]] if ends else rows[:-1]  # the half level follows the search
    idle = [r for r in search if r.get("load_mode") == "closed" and r.get("concurrency") == 1][:1]
    opened = [r for r in search if r.get("load_mode") == "open"]
    # the light level before the search (since 2026-12-04 10:00) comes with the one short level: it is short too
    light = light_levels(opened, idle[0]) if idle else []
    first = [r for r in opened if r not in light][:1]
    chosen = [{**r, "schema_version": SCHEMA_VERSION, "server_batch_size": r.get("server_batch_size") or s["batch"]}
              for r in idle + (opened if whole_search else light + first)]  # fmt: skip
    out = setting_file(s, "fit-search.csv" if whole_search else "fit.csv")
    write_csv(out, list(COLUMN_NAMES), chosen)
    return out


def will_it_run(
    s: dict,
    batch: str,
    rate: float,
    served_from: dict | None = None,
    whole_search: bool = True,
    sweeps: list[Path] | None = None,
) -> dict:
    """will-it-run's plan for setting s; served_from: the setting whose server's rows fit the served overhead (s
    itself, another batch's, or None for the in-process rows alone): its whole capacity search, or its closed x1
    and first open level alone. sweeps: in-process rows to calibrate on instead of s's own sweep."""
    folder = folder_for(s["model"])
    results = [str(p) for p in sweeps] if sweeps else [str(inprocess_file(s))]
    fit = fit_rows(served_from, whole_search) if served_from else None
    if fit:
        results.append(str(fit))
    result = sh(
        [*RB, "will-it-run", str(folder), "--hardware", "local", "--server", "infinity", "--batch-size", batch]
        + ["--depth", str(s["depth"]), "--budget-ms", f"{s['slo_ms']:g}", "--doc-tokens", DOC_TOKENS]
        + ["--rate", f"{rate:.4f}", "--as-endpoint", "--json"]
        + [arg for path in results for arg in ("--results", path)]
    )
    (row,) = json.loads(result.stdout)
    # rows of another machine calibrate nothing here: the plan would be self-calibrated and its comparison
    # with that machine's server meaningless (a session on a different VM of the same type, 2026-12-04)
    if "measured on another machine" in str(row.get("latency_note")):
        raise SystemExit(f"{s['model']} batch {s['batch']}: {row['latency_note']}")
    return row


def inside(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or low is None or high is None:
        return "-"
    return "yes" if low <= value <= high else "NO"


def predict(chosen: list[dict]) -> None:
    measured = json.loads(measured_path().read_text())
    print(f"\n{uptime()}")
    header = (
        f"{'setting':28} {'capacity measured (to)':>22} {'predicted (range; seeds)':>34} {'err':>5} {'in':>3}  "
        f"{'p95 @half meas.':>15} {'predicted (range)':>22} {'err':>5} {'in':>3}"
    )
    print(header)
    by_model: dict[tuple[str, int], list[tuple[int, dict]]] = {}
    for s in chosen:
        key = f"{s['model']}:{s['depth']}:{s['batch']}:{s['slo_ms']:g}"
        m = measured.get(key)
        if not m or not m.get("capacity_rps"):
            print(f"{key:28} not measured")
            continue
        by_model.setdefault((s["model"], s["depth"]), []).append((s["batch"], {**m, "setting": s}))
        # the other measured batch of this model: its server's rows fit the overhead for this batch's plan, a
        # check on rows the compared figures never came from
        others = [o for o in chosen if (o["model"], o["depth"]) == (s["model"], s["depth"]) and o is not s]
        others = [o for o in others if setting_file(o, "endpoint.csv").exists()]
        # +level1: one short level of this setting's server; +search: its whole capacity search (the capacity
        # compared was found by those levels: in sample for it, not for the p95 at half); +bN: the other batch's
        # server's whole search (rows the compared figures never came from)
        fits = [("", None, True), (" +level1", s, False), (" +search", s, True)]
        fits += [(f" +b{o['batch']}", o, True) for o in others[:1]]
        for label, served_from, whole in fits:
            _compare(key + label, m, will_it_run(s, str(s["batch"]), m["half_rps"], served_from, whole))
        print(f"    {observed_levels(s)}")
        print(f"    {host_speed(s)}")
    for (model, depth), measured_batches in by_model.items():
        if len(measured_batches) < 2:
            continue
        s = measured_batches[0][1]["setting"]
        best_measured = max(measured_batches, key=lambda b: b[1]["capacity_rps"])
        each = ", ".join(f"batch {b}: {m['capacity_rps']:.3g}/s" for b, m in measured_batches)
        # every sweep: the in-process rows of all the model's settings, swept minutes apart, averaged per batch
        # size (one sweep's batch-to-batch timings drift 10-18% from the next one's here: TinyBERT 2026-12-04)
        sweeps = sorted({inprocess_file(m["setting"]) for _, m in measured_batches})
        for served_from, label, rows in ((None, "", None), (s, " +search", None), (None, " (every sweep)", sweeps)):
            # +search: the overhead fitted on the first setting's server (its whole capacity search)
            row = will_it_run(s, "auto", best_measured[1]["half_rps"], served_from, sweeps=rows)
            print(
                f"{model} depth {depth}{label}: --batch-size auto predicts infinity batch "
                f"{row.get('server_batch_size')} ({row.get('server_setting_note')}); measured best batch "
                f"{best_measured[0]} ({each}); {best_batch_verdict(row.get('server_batch_size'), measured_batches)}"
            )


def best_batch_verdict(predicted: int | None, measured_batches: list[tuple[int, dict]]) -> str:
    """Whether the predicted batch is the measured best, or within the measurement's own margin of it: each
    capacity is known only to lie between the rate shown to pass and the lowest rate above it not shown to
    (capacity_interval_rps), so a batch whose interval reaches the best one's capacity cannot be told from it."""
    best_batch, best = max(measured_batches, key=lambda b: b[1]["capacity_rps"])
    if predicted == best_batch:
        return "the measured best"
    found = [m for b, m in measured_batches if b == predicted]
    if not found:
        return f"batch {predicted} was not measured"
    top = (found[0].get("capacity_interval_rps") or [found[0]["capacity_rps"]] * 2)[1]
    if top is None or top != top:  # no rate above it failed: its capacity has no upper bound here
        return f"within the measurement's margin (batch {predicted}'s interval has no upper end)"
    if top >= best["capacity_rps"]:
        return f"within the measurement's margin (batch {predicted}'s interval reaches {top:.3g}/s)"
    return f"NOT within the measurement's margin (batch {predicted}'s interval ends at {top:.3g}/s)"


def host_speed(s: dict) -> str:
    """The in-process speed at the setting's batch before its server ran and after (where swept): a host whose
    speed moved between them measured the server at neither sweep's speed."""

    batch = min(s["batch"], s["depth"])  # a batch over the depth runs each query as one batch of depth pairs

    def speed(path: Path) -> float | None:
        if not path.exists():
            return None
        found = [r["pairs_per_s"] for r in read_rows(path) if r.get("pairs_per_s") and r.get("batch_size") == batch]
        return found[-1] if found else None

    before, after = speed(inprocess_file(s)), speed(setting_file(s, "inprocess-after.csv"))
    if before is None:
        return "host speed: no in-process rows"
    moved = f", after its server {after:.0f} ({percent(after, before)})" if after else ", not swept after its server"
    return f"host speed at batch {batch}: {before:.0f} pairs/s before its server{moved}"


def observed_levels(s: dict) -> str:
    """Every open level the capacity search ran against this setting's server, with its observed p95 and share of
    requests over the SLO. `endpoint --capacity` reports the highest rate *shown* to meet the SLO (the share over
    it below 5% at confidence); a level whose observed share is under 5% but not shown so within the level's
    time is undecided and not counted. These rows let a reader see where the server's p95 actually crossed the
    SLO, beside the capacity the statistics could prove."""
    source = setting_file(s, "endpoint.csv")
    if not source.exists():
        return "no endpoint rows"
    parts, verdict = [], ""
    for row in read_rows(source):
        if row.get("load_mode") == "capacity":
            verdict = f" (capacity row: {row.get('status_reason') or 'confirmed'})"
        if row.get("load_mode") != "open" or not row.get("offered_rps"):
            continue
        sent = row.get("requests_sent") or 0
        over = row.get("over_slo")
        share = f", {over} of {sent} over ({row.get('slo_verdict')})" if over is not None and sent else ""
        p95 = f"p95 {row['p95_ms']:.0f} ms" if row.get("p95_ms") else "no p95 (stopped early)"
        failed = f", {row['requests_failed']} failed" if row.get("requests_failed") else ""
        # a level that passed while its latency still rose counts as undecided in the search
        rising = ", latency still rising: not counted" if row.get("level_state") == "not steady" else ""
        parts.append(f"{row['offered_rps']:.3g}/s: {p95}{share}{failed}{rising}")
    return "capacity search levels, in order (the last two: confirmation, half): " + "; ".join(parts) + verdict


def _compare(label: str, m: dict, row: dict) -> None:
    spread = row.get("capacity_spread_rps") or [None, None]
    ci = row.get("p95_at_rate_range_ms") or row.get("p95_at_rate_ci_ms") or [None, None]
    # the p95 at half is one replica's only when the plan keeps one replica at that rate
    one = row["replicas"] == 1
    # the measured capacity is the highest rate *shown* to meet the SLO; the lowest rate above it that was not
    # shown to (failed or undecided) bounds it from above: the prediction of where p95 meets the SLO lies there
    bracket = m.get("capacity_interval_rps") or [m["capacity_rps"], float("nan")]
    print(
        f"{label:28} {m['capacity_rps']:>7.3f} ({bracket[0]:.3g}-{bracket[1]:.3g}) "
        f"{row['capacity_rps']:>8.3f} ({row['capacity_rps_low']:.3f}-{row['capacity_rps_high']:.3f}; "
        f"{spread[0]:.3f}-{spread[1]:.3f}) {percent(row['capacity_rps'], m['capacity_rps']):>5} "
        f"{inside(m['capacity_rps'], row['capacity_rps_low'], row['capacity_rps_high']):>3}  "
        f"{m['p95_at_half_ms'] or float('nan'):>15.0f} "
        f"{row['p95_at_rate_ms']:>8.0f} ({ci[0]:.0f}-{ci[1]:.0f}){'' if one else ' x' + str(row['replicas']):>4} "
        f"{percent(row['p95_at_rate_ms'], m['p95_at_half_ms']):>5} {inside(m['p95_at_half_ms'], *ci):>3}"
    )
    shown, among = row.get("endpoint_capacity_rps"), row.get("endpoint_capacity_spread_rps") or [None, None]
    wide = row.get("endpoint_capacity_range_rps") or [None, None]
    if shown:
        # like with like: what `endpoint --capacity` would report on the model (--as-endpoint), against what it did
        print(
            f"    as endpoint --capacity would report: {shown:.3f}/s (searches {among[0] or shown:.3f}-"
            f"{among[1] or shown:.3f}) {percent(shown, m['capacity_rps'])} against the measured "
            f"{m['capacity_rps']:.3f}, inside the searches' range: {inside(m['capacity_rps'], among[0], among[1])}; "
            f"with the latency estimate's range {wide[0] or 0:.3f}-{wide[1] or 0:.3f}: "
            f"{inside(m['capacity_rps'], wide[0], wide[1])}"
        )
    measured_ci = m.get("p95_at_half_ci_ms") or [None, None]
    if None not in measured_ci:
        print(
            f"    measured p95 at half {m['p95_at_half_ms']:.0f} ms ({measured_ci[0]:.0f}-{measured_ci[1]:.0f}, "
            f"{m.get('half_requests', 90)} requests); predicted inside that interval: "
            f"{inside(row['p95_at_rate_ms'], *measured_ci)}"
        )
    if m.get("p50_at_half_ms") and row.get("p50_at_rate_ms") and one:
        # the centre the wake time is fitted for: at half the capacity most requests still find the server idle
        print(
            f"    p50 at half: measured {m['p50_at_half_ms']:.0f} ms, predicted {row['p50_at_rate_ms']:.0f} ms "
            f"{percent(row['p50_at_rate_ms'], m['p50_at_half_ms'])}"
        )
    print(f"    server: {row['server']}; latency: {row['latency_note']}; simulation {row['simulation_s']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", default=DEFAULT_SETTINGS)
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--predict", action="store_true")
    parser.add_argument("--tag", default="", help="another host's check, in files of its own (see TAG)")
    args = parser.parse_args()
    global TAG
    TAG = args.tag
    chosen = settings(args.settings)
    print("uptime:", uptime(), flush=True)
    if args.measure:
        measure(chosen)
    if args.predict:
        predict(chosen)


if __name__ == "__main__":
    main()
