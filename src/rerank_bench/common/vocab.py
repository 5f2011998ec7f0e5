"""The words the tool writes into result rows and reports, each defined once.

They are `StrEnum`s, so a member is the very string a CSV cell holds (`Status.OK == "ok"`): rows read back
from older files compare equal without conversion, and a typo in code is an AttributeError instead of a
silently unmatched string.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A case's outcome (the `status` column)."""

    OK = "ok"
    OOM = "oom"  # out of memory: the case does not fit at this batch size
    CRASHED = "crashed"  # the worker process died (a signal, an abort) without reporting
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"  # cannot run here (a backend or dtype this machine lacks); the reason says why


# Statuses `sweep --resume` takes as measured: an out-of-memory case would run out of memory again.
DONE_STATUSES = (Status.OK, Status.OOM)


class Weights(StrEnum):
    """Whose weights a row measured (the `weights` column)."""

    REAL = "real"
    RANDOM = "random"  # the architecture twin: the same speed, meaningless scores
    SERVED = "served"  # whatever the endpoint serves


class FitVerdict(StrEnum):
    """will-it-run's answer for one model on one piece of hardware."""

    RUNS = "RUNS"
    TIGHT = "TIGHT"  # runs, with little to spare (memory, latency or capacity)
    TOO_SLOW = "TOO SLOW"
    WONT_FIT = "WON'T FIT"

    @property
    def runs(self) -> bool:
        return self in (FitVerdict.RUNS, FitVerdict.TIGHT)


class ServerKind(StrEnum):
    """How a served model batches: the servers `endpoint` speaks to and `will-it-run --rate` simulates."""

    TEI = "tei"
    INFINITY = "infinity"
    VLLM = "vllm"
    COHERE = "cohere"
    PER_REQUEST = "per-request"  # no batching across requests (a plain web app around CrossEncoder)


class ErrorKind(StrEnum):
    """What became of one served request (`errors_by_kind`); an HTTP error is `http_<status>`, see `http`."""

    OK = "ok"
    TIMEOUT = "timeout"  # no reply within --timeout
    CONNECTION = "connection"  # refused, reset or closed by the server
    MALFORMED = "malformed"  # a reply that is not the API's JSON
    CLIENT = "client"  # this machine could not send it (out of file descriptors, ports)
    ABANDONED = "abandoned"  # still out when the level stopped

    @staticmethod
    def http(status: int) -> str:
        return f"http_{status}"
