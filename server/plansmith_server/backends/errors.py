"""What can go wrong with a planner backend, sorted by whose fault it is.

Only `BackendHealthError`s count against a backend's circuit breaker: the backend is down,
slow, overloaded or misconfigured. A bad answer (`BackendOutputError`) or a request the
backend refused (`BackendRejectedError`) says nothing about its health. No message here
ever carries a credential: they are built from status codes and our own words only.
"""

from __future__ import annotations


class BackendError(Exception):
    """A backend could not produce a result; the router tries the next one."""

    outcome = "FAILED"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BackendHealthError(BackendError):
    """5xx, timeout, connection error, 429: counts against the breaker."""


class BackendTimeoutError(BackendHealthError):
    """No complete answer within the attempt's time (the caller's deadline or the
    backend's own timeout, whichever is sooner)."""


class RateLimitedError(BackendHealthError):
    """429: the backend asks us to come back after `retry_after` seconds (None: unsaid)."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class MisconfiguredError(BackendHealthError):
    """401/403/404: wrong key, no access or wrong model/URL. Opens the breaker at once."""


class BackendRejectedError(BackendError):
    """The backend refused the request itself (another 4xx)."""

    outcome = "REJECTED"


class BackendOutputError(BackendError):
    """The answer is not a valid result: bad JSON or a plan failing validation.
    `problems` lists what a repair re-ask should fix."""

    outcome = "INVALID_OUTPUT"

    def __init__(self, reason: str, problems: list[str] | None = None) -> None:
        super().__init__(reason)
        self.problems = problems or [reason]


class TruncatedOutputError(BackendError):
    """`finish_reason == "length"`: the output hit its token limit and is cut off."""

    outcome = "TRUNCATED"


def clean_text(text: str) -> str:
    """`text` with anything that is not valid Unicode (lone surrogates) replaced: a reason
    may quote a model server, and it must serialise into a proto."""
    return text.encode("utf-8", "replace").decode("utf-8")
