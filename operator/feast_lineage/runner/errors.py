"""How a runner fails: each kind maps to an exit code and carries a one-line message."""

from __future__ import annotations

from feast_lineage.audit.errors import one_line

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
ERROR_LIMIT = 1000
"""Characters kept of an error message; the termination message holds 4096 bytes in all."""


class RunnerError(Exception):
    """A failure the runner reports in its result; ``str()`` is one line."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message, ERROR_LIMIT))


class BadInput(RunnerError):
    """The runner was started with missing or invalid settings (a bad window, a missing variable)."""

    exit_code = EXIT_BAD_INPUT


class OperationFailed(RunnerError):
    """Fetching the repo or running Feast failed."""


def exception_line(error: BaseException) -> str:
    """The last line Python prints for ``error``: ``NameError: name 'Fielld' is not defined``."""
    text = str(error)
    name = type(error).__name__
    return one_line(f"{name}: {text}" if text else name, ERROR_LIMIT)
