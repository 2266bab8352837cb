"""The current call's deadline, for work done on its behalf far from the call (a
database statement's timeout): set by the server's interceptor chain, read anywhere
without importing grpc."""

from __future__ import annotations

import contextvars
import time

call_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "call_deadline", default=None
)
"""`time.monotonic()` at which the current call's deadline passes; None: no deadline."""

copy_context = contextvars.copy_context


def set_remaining(seconds: float | None) -> contextvars.Token[float | None]:
    """Records that the current call has `seconds` left (None: no deadline)."""
    return call_deadline.set(None if seconds is None else time.monotonic() + seconds)


def remaining() -> float | None:
    """Seconds left to the current call's deadline (negative once past); None without one."""
    deadline = call_deadline.get()
    return None if deadline is None else deadline - time.monotonic()
