"""The tool's typed errors. Each maps to one exit code, in one place (`exit_code`); the command line prints
`label: message (hint)` on one line and exits with it."""

from __future__ import annotations

EXIT_FAILED = 1  # a budget or a regression gate said no
EXIT_USAGE = 2  # bad input: flags, files, model names
EXIT_ENVIRONMENT = 3  # this machine cannot do what was asked (no CUDA, missing package)
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
EXIT_TERMINATED = 143  # SIGTERM (kill, a CI job's timeout), as a shell reports it


class RerankBenchError(Exception):
    """Base of every error the command line turns into a one-line message."""

    exit_code = EXIT_USAGE
    label = "error"

    def __init__(self, message: str, hint: str | None = None, label: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if label is not None:
            self.label = label

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(RerankBenchError):
    """The user asked for something malformed or contradictory."""

    exit_code = EXIT_USAGE


class ModelError(UsageError):
    """A model could not be resolved or is unsuitable (typo, gated, offline and not cached, not a reranker)."""


class WorkloadError(UsageError):
    """A workload file or length option is malformed."""


class ResultFileError(UsageError):
    """A result file is malformed or of an unknown schema version."""


class EnvironmentProblem(RerankBenchError):
    """The machine lacks what was asked for (a CUDA device, a package), or could not decide (inconclusive)."""

    exit_code = EXIT_ENVIRONMENT


class GateFailed(RerankBenchError):
    """A budget or regression gate was not met. Raised after the answer is rendered."""

    exit_code = EXIT_FAILED
    label = "failed"


class Interrupted(RerankBenchError):
    """Ctrl-C: what finished is kept; the message says where."""

    exit_code = EXIT_INTERRUPTED
    label = "interrupted"


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C (what finished is kept), with its own exit code."""

    signal_name = "SIGTERM"
