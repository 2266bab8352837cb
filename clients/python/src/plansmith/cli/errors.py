"""Exit codes and the one-line error message of a failed command."""

from __future__ import annotations

from plansmith.errors import (
    DeadlineExceededError,
    MaxRetriesExceededError,
    PlansmithError,
    PreconditionFailedError,
    ResourceNotFoundError,
    ServiceUnavailableError,
    ValidationError,
)

OK = 0
FAILURE = 1
"""Any other failure (a conflict, a refused precondition, a server error)."""
USAGE = 2
"""The command or its arguments are wrong (Click's own code for usage errors, also used
when the server refuses the arguments with INVALID_ARGUMENT)."""
NOT_FOUND = 3
"""The plan or task named does not exist."""
UNAVAILABLE = 4
"""The server could not be reached, or did not answer within `--timeout`."""


class CliError(Exception):
    """A failure the command itself detects (a brief file that cannot be read ...)."""

    def __init__(self, message: str, code: int = FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _cause(err: PlansmithError) -> PlansmithError:
    """The error behind retries that ran out (their last attempt's error)."""
    seen = 0
    while isinstance(err, MaxRetriesExceededError | DeadlineExceededError) and seen < 10:
        last = getattr(err, "last_error", None)
        if last is None:
            break
        err, seen = last, seen + 1
    return err


def exit_code(err: PlansmithError) -> int:
    """The exit code for a failed call."""
    cause = _cause(err)
    if isinstance(cause, ValidationError):
        return USAGE
    if isinstance(cause, ResourceNotFoundError):
        return NOT_FOUND
    if isinstance(cause, ServiceUnavailableError | DeadlineExceededError):
        return UNAVAILABLE
    return FAILURE


def error_line(err: PlansmithError, target: str) -> str:
    """One line: the status code, the server's message, and its hints (the fields a
    BadRequest names, the preconditions a PreconditionFailure names)."""
    cause = _cause(err)
    code = cause.status_code.name if cause.status_code is not None else "ERROR"
    message = cause.message or str(cause)
    hints: list[str] = []
    if isinstance(cause, ValidationError):
        hints += [f"{v.field}: {v.description}" for v in cause.validation_errors]
    if isinstance(cause, PreconditionFailedError):
        hints += [f"{v.subject}: {v.description}" for v in cause.violations]
    if isinstance(cause, ServiceUnavailableError | DeadlineExceededError):
        hints.append(f"is a server running at {target}? (--target / PLANSMITH_TARGET)")
    hint = "; ".join(h for h in hints if h and h not in message)
    line = f"{code}: {message}" + (f" — {hint}" if hint else "")
    return " ".join(line.split())
