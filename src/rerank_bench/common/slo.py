"""Whether a load level meets a latency objective, decided by a count that noise cannot flip.

A level passes `p95 <= SLO` when, with the stated confidence, fewer than 5% of its requests are over the SLO:
each request is a pass/fail trial (a failed or timed-out request is over), and the Clopper-Pearson bound on the
fraction over decides (MLPerf LoadGen's early-stopping idea: count the slow queries and ask whether enough fast
ones make the percentile hold). The level fails when the lower bound is above 1 - q, passes when the upper bound
is at most 1 - q, and is otherwise undecided: it runs longer, or says so, instead of calling a coin flip.

Requests over the SLO are not independent trials on a served level: a slow batch delays every request queued
behind it, and a server's slow second puts twenty requests in a row over (infinity here: 21 of a level's 774
requests over, all within 50 consecutive ones). Counted as independent, that one episode reads as a precise
2.7%. So the count is taken at its effective size (Korn & Graubard 1998): the window is cut into DESIGN_BLOCKS
consecutive blocks, and the design effect is how much more the blocks' counts over vary than they would if the
same overs had fallen independently (multinomially) among them: sum((c_b - k/B)^2) / (k (1 - 1/B)), at least 1.
Count and window are divided by it before the bounds are taken. Overs one at a time, spread over the window, give
about 1 (no change); one block holding all k gives k (one episode: about one observation). Overs in an episode
longer than a block are split between blocks and count for less than they should; a window with no over has
nothing to cluster and is tested as before. A level that stopped `saturated` (requests piling up) is tested as
independent: its overs are one run that grows to the end because the queue does, not an episode that passed.

A level may look at its window more than once (at n, 2n, 4n requests, up to its time limit). Each look is a
test, so each is made at confidence 1 - alpha / looks (Bonferroni): the chance that any look passes a level
whose true percentile is over the SLO stays at most alpha.

An open-loop level's shape (its first window, looks, warm-up and time limit) lives here too, beside the test:
`endpoint` runs levels of that shape against a server, and `will-it-run --rate` simulates the same levels to say
what `endpoint --capacity` would show.

Pure: counts in, verdicts out. The load generator calls `Sequential` as replies arrive.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rerank_bench.common.stats import CONFIDENCE, clopper_pearson

LEVEL_REQUESTS = 240  # an open-loop level's first window, at least (endpoint --requests)
LOOK_GROWTH = 8  # an undecided window grows (doubling) up to this multiple of the first
LEVEL_CONFIDENCE = 0.95  # shared among a level's looks
WARMUP_REQUESTS = 3  # untimed requests before a level, at least
LEVEL_WARMUP_S = 10.0  # open-loop levels: untimed arrivals at the level's rate over this long first
MAX_LEVEL_S = 300.0  # an open-loop level's time limit, warm-up included
# A level is `not steady` when its latency still rises through the window. A queue's latencies are correlated
# (a slow batch delays every request behind it), so a rank test over single requests reads a stationary queue's
# wanderings as a trend: simulated infinity levels at half their service bound were flagged one time in five,
# at 70% one in three (issue 22). The test runs on the medians of TREND_BLOCKS consecutive blocks instead
# (batch means: blocks longer than a queue's memory are nearly independent): Spearman's rho of block median
# against block order at least TREND_RHO, which 10 independent blocks reach with probability 0.0008 (exact,
# by enumerating the 10! orders: rho >= 0.8788 is sum d^2 <= 20)...
TREND_BLOCKS = 10
TREND_RHO = 0.878
# ...and the last quarter's median at least this much above the first quarter's (a trend too small to matter
# to a user is not flagged, however significant).
TREND_RATIO = 1.2
TREND_MIN_REQUESTS = 40
DESIGN_BLOCKS = 10  # consecutive blocks whose counts over give the design effect (the trend test's ten)


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNDECIDED = "undecided"
    INVALID = "invalid"  # the client itself failed (out of file descriptors, ports): nothing to say of the server


@dataclass(frozen=True)
class SloTest:
    verdict: Verdict
    over: int  # requests over the SLO in the window (failed ones included)
    n: int  # requests in the window
    allowed_fraction: float  # 1 - q
    fraction_low: float  # one-sided lower confidence bound of the fraction over
    fraction_high: float  # one-sided upper confidence bound
    confidence: float  # of each bound (per look)
    design_effect: float = 1.0  # the count and window were divided by this before the bounds (clustered overs)

    def why(self, q: float, slo_ms: float) -> str:
        share = f"{self.over} of {self.n} requests over {slo_ms:g} ms (or failed)"
        if self.design_effect > 1.0:
            share += (
                f", clustered (design effect {self.design_effect:.2g}: as many as "
                f"{self.n / self.design_effect:.0f} independent requests)"
            )
        bound = f"{100 * self.allowed_fraction:.3g}%"
        if self.verdict == Verdict.PASS:
            return f"{share}: at most {100 * self.fraction_high:.2f}% over, within {bound}"
        if self.verdict == Verdict.FAIL:
            return f"{share}: at least {100 * self.fraction_low:.2f}% over, more than p{q:g} allows ({bound})"
        return (
            f"{share}: between {100 * self.fraction_low:.2f}% and {100 * self.fraction_high:.2f}% over, "
            f"undecided against {bound}"
        )


def design_effect(over: Sequence[bool], blocks: int = DESIGN_BLOCKS) -> float:
    """How much more clustered than independent the window's overs are (in the order requests were sent): the
    variance of the counts over in `blocks` consecutive blocks against the multinomial's for the same total,
    at least 1. 1 where there is no over, or too few requests for a block each."""
    n, k = len(over), sum(over)
    if k == 0 or n < blocks:
        return 1.0
    edges = [round(b * n / blocks) for b in range(blocks + 1)]
    counts = [sum(over[edges[b] : edges[b + 1]]) for b in range(blocks)]
    expected = [k * (edges[b + 1] - edges[b]) / n for b in range(blocks)]
    spread = sum((c - e) ** 2 for c, e in zip(counts, expected, strict=True))
    chance = sum(e * (1.0 - e / k) for e in expected)  # the multinomial's: k (1 - 1/B) for equal blocks
    return max(1.0, spread / chance) if chance > 0 else 1.0


def slo_test(over: int, n: int, q: float, confidence: float = CONFIDENCE, effect: float = 1.0) -> SloTest:
    """The verdict on `over` of `n` requests over the SLO, for the q-th percentile (0 < q < 100), with the count
    and the window taken at their effective size (divided by the design effect `effect`, at least 1)."""
    allowed = 1.0 - q / 100.0
    effect = max(1.0, effect)
    low, high = clopper_pearson(over / effect, n / effect, confidence)
    if high <= allowed:
        verdict = Verdict.PASS
    elif low > allowed:
        verdict = Verdict.FAIL
    else:
        verdict = Verdict.UNDECIDED
    return SloTest(verdict, over, n, allowed, low, high, confidence, effect)


def slo_test_in_order(
    over: Sequence[bool], q: float, confidence: float = CONFIDENCE, clustered: bool = True
) -> SloTest:
    """The verdict on a window's requests in the order they were sent (True: over the SLO or failed), its
    clustering allowed for (`design_effect`; `clustered` False: as independent trials, for a level whose queue
    grew to the end, whose overs are one run growing with it rather than an episode)."""
    return slo_test(sum(over), len(over), q, confidence, design_effect(over) if clustered else 1.0)


def min_window(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest requests in which a level can pass at all (none over): (q/100)^n <= 1 - confidence."""
    return math.ceil(round(math.log(1.0 - confidence) / math.log(q / 100.0), 9))


def looks_for(first: int, most: int) -> tuple[int, ...]:
    """Window sizes at which a level is judged: first, doubling, and `most` last (first <= most)."""
    sizes = [first]
    while sizes[-1] * 2 < most:
        sizes.append(sizes[-1] * 2)
    if most > sizes[-1]:
        sizes.append(most)
    return tuple(sizes)


def per_look_confidence(confidence: float, looks: int) -> float:
    return 1.0 - (1.0 - confidence) / max(1, looks)


def fail_is_certain(over_known: Sequence[bool], q: float, confidence: float, clustered: bool = True) -> bool:
    """The window's requests known to be over the SLO (replied late, failed, or still out and older than it;
    the rest False): the level fails at this look however the rest turn out, as far as the overs' clustering so
    far says (`clustered`; False: as independent trials, for a level whose queue is growing)."""
    if slo_test_in_order(over_known, q, confidence, clustered=False).verdict != Verdict.FAIL:
        return False  # a design effect only widens the bounds: no fail as independent trials, none clustered
    return not clustered or slo_test_in_order(over_known, q, confidence).verdict == Verdict.FAIL


@dataclass(frozen=True)
class SequentialPlan:
    q: float
    looks: tuple[int, ...]
    confidence: float = CONFIDENCE

    @property
    def look_confidence(self) -> float:
        return per_look_confidence(self.confidence, len(self.looks))


def decide(over: list[bool], plan: SequentialPlan) -> tuple[SloTest, int]:
    """The sequential procedure on a known list of trials (True: over the SLO), as the load generator runs it:
    judge the first looks[0] requests, and only if undecided go on to the next look. Returns the test and the
    window size it was decided at (tests simulate levels with it; the generator reaches the same answer)."""
    test = None
    for size in plan.looks:
        window = over[:size]
        test = slo_test_in_order(window, plan.q, plan.look_confidence)
        if test.verdict != Verdict.UNDECIDED or size >= len(over):
            return test, len(window)
    assert test is not None
    return test, plan.looks[-1]


def level_confidence() -> float:
    """Each look's confidence: LEVEL_CONFIDENCE shared among the looks a default window may take (Bonferroni)."""
    return per_look_confidence(LEVEL_CONFIDENCE, len(looks_for(LEVEL_REQUESTS, LEVEL_REQUESTS * LOOK_GROWTH)))


def first_window(q: float, requests: int | None = None) -> int:
    """A level's first window: `requests` where given, else LEVEL_REQUESTS or three times the fewest in which
    p`q` can pass at all, whichever is more (so a pass does not need every request under the SLO)."""
    return requests if requests is not None else max(LEVEL_REQUESTS, 3 * min_window(q, level_confidence()))


def level_looks(first: int) -> tuple[int, ...]:
    return looks_for(first, first * LOOK_GROWTH)


def level_warmup(rate_rps: float, warmup_requests: int = WARMUP_REQUESTS, warmup_s: float = LEVEL_WARMUP_S) -> int:
    """Untimed arrivals before an open-loop level's window: the queue fills as it will before it is judged."""
    return max(warmup_requests, math.ceil(rate_rps * warmup_s))


def spearman_rho(values: list[float]) -> float:
    """Spearman's rho of `values` against their order (ties given their average rank); 0 when all are equal."""
    n = len(values)
    order = sorted(range(n), key=lambda i: values[i])
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    mean = (n + 1) / 2.0
    spread = math.sqrt(sum((r - mean) ** 2 for r in ranks) * sum((k + 1 - mean) ** 2 for k in range(n)))
    return 0.0 if spread == 0 else sum((ranks[k] - mean) * (k + 1 - mean) for k in range(n)) / spread


def trend_rises(latencies: list[float]) -> bool:
    """Whether latency (in scheduled order, inf for failures) still rises through the window: the medians of
    TREND_BLOCKS consecutive blocks rise with rho >= TREND_RHO, and the last quarter's median is at least
    TREND_RATIO x the first quarter's. Fewer than TREND_MIN_REQUESTS: too few to say."""
    n = len(latencies)
    if n < TREND_MIN_REQUESTS:
        return False
    edges = [round(b * n / TREND_BLOCKS) for b in range(TREND_BLOCKS + 1)]
    medians = [statistics.median(latencies[edges[b] : edges[b + 1]]) for b in range(TREND_BLOCKS)]
    quarter = n // 4
    first, last = statistics.median(latencies[:quarter]), statistics.median(latencies[-quarter:])
    return spearman_rho(medians) >= TREND_RHO and last >= TREND_RATIO * first
