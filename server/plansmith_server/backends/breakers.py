"""A circuit breaker per backend (pybreaker), and what the status report shows of it.

pybreaker is synchronous; with asyncio the pattern that counts failures is
`with breaker.calling(): await ...` (its `call()` on a coroutine function would count the
un-awaited coroutine as a success). Only `BackendHealthError`s count: every other
exception is excluded, and a cancelled call (`CancelledError`) counts as nothing: the
failure count and a half-open state from before it are put back (pybreaker itself would
count it as a success). A 429's Retry-After sets the open period (at most an hour);
401/403/404 open the breaker at once. While it is half open, one trial call goes through
and the others skip the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pybreaker

from plansmith_server.backends.errors import (
    BackendHealthError,
    MisconfiguredError,
    RateLimitedError,
)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

MAX_OPEN_SECONDS = 3600.0
"""The longest a Retry-After keeps a breaker open (the header is capped to this too)."""


class BreakerOpenError(Exception):
    """The backend's breaker is open (or a half-open trial is already running)."""

    def __init__(self, seconds_left: float) -> None:
        super().__init__(f"circuit breaker open ({seconds_left:.1f} s left)")
        self.seconds_left = seconds_left


@dataclass
class BackendStats:
    """Counters of one backend since start, and its recent durations."""

    calls: int = 0
    failures: int = 0
    fallbacks: int = 0
    last_error: str = ""

    def __post_init__(self) -> None:
        self.durations: deque[float] = deque(maxlen=1000)

    def percentile(self, q: float) -> float:
        if not self.durations:
            return 0.0
        ordered = sorted(self.durations)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class BackendBreaker:
    """pybreaker's breaker for one backend, with Retry-After and a single half-open trial."""

    def __init__(
        self,
        name: str,
        *,
        fail_max: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.clock = clock
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            exclude=[lambda e: not isinstance(e, BackendHealthError)],
            name=name,
            # The failure that trips it is re-raised as itself, not as pybreaker's error.
            throw_new_error_on_trip=False,
        )
        self.stats = BackendStats()
        self._open_until = 0.0
        self._trial = False

    @property
    def state(self) -> str:
        if self._open_until:  # a Retry-After period: open until it ends, then a trial
            return OPEN if self._open_until > self.clock() else HALF_OPEN
        state = self.breaker.current_state
        if state == pybreaker.STATE_OPEN:
            return OPEN if self.seconds_left() > 0 else HALF_OPEN
        return HALF_OPEN if state == pybreaker.STATE_HALF_OPEN else CLOSED

    def seconds_left(self) -> float:
        now = self.clock()
        if self._open_until:
            return max(0.0, self._open_until - now)
        if self.breaker.current_state != pybreaker.STATE_OPEN:
            return 0.0
        opened = self.breaker._state_storage.opened_at  # pybreaker keeps it in UTC
        if opened is None:
            return 0.0
        from datetime import UTC, datetime

        elapsed = (datetime.now(UTC) - opened).total_seconds()
        return max(0.0, self.breaker.reset_timeout - elapsed)

    def check(self) -> None:
        """Raises `BreakerOpenError` when a call would not be let through (no waiting)."""
        now = self.clock()
        if self._open_until > now:
            raise BreakerOpenError(self._open_until - now)
        if self._open_until:
            # The Retry-After period is over: let one trial through.
            self._open_until = 0.0
            if self.breaker.current_state == pybreaker.STATE_OPEN:
                self.breaker.half_open()
        state = self.state
        if state == OPEN:
            raise BreakerOpenError(self.seconds_left())
        if state == HALF_OPEN and self._trial:
            raise BreakerOpenError(0.0)

    @contextlib.contextmanager
    def calling(self) -> Iterator[None]:
        """Admits one call (or raises `BreakerOpenError`) and counts its outcome."""
        self.check()
        trial = self.state == HALF_OPEN
        self._trial = self._trial or trial
        start = self.clock()
        try:
            try:
                admitted = self.breaker.calling()
                admitted.__enter__()
            except pybreaker.CircuitBreakerError:
                raise BreakerOpenError(self.seconds_left()) from None
            self.stats.calls += 1
            storage = self.breaker._state_storage
            failures = storage.counter
            half_open = self.breaker.current_state == pybreaker.STATE_HALF_OPEN
            try:
                yield
            except asyncio.CancelledError as exc:
                # pybreaker counts every excluded exception as a success; a cancelled call
                # says nothing about the backend, so the state before it is put back.
                admitted.__exit__(type(exc), exc, exc.__traceback__)
                self._restore(failures, half_open)
                raise
            except BaseException as exc:
                if not admitted.__exit__(type(exc), exc, exc.__traceback__):
                    if isinstance(exc, BackendHealthError):
                        self._failed(exc)
                    raise
            else:
                admitted.__exit__(None, None, None)
            finally:
                self.stats.durations.append((self.clock() - start) * 1000)
        finally:
            if trial:
                self._trial = False

    def _restore(self, failures: int, half_open: bool) -> None:
        if half_open and self.breaker.current_state == pybreaker.STATE_CLOSED:
            self.breaker.half_open()
        storage = self.breaker._state_storage
        while storage.counter < failures:
            storage.increment_counter()

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        if isinstance(exc, MisconfiguredError):
            self._force_open(None)
        elif isinstance(exc, RateLimitedError) and exc.retry_after:
            self._force_open(exc.retry_after)

    def _force_open(self, seconds: float | None) -> None:
        if self.breaker.current_state != pybreaker.STATE_OPEN:
            self.breaker.open()
        if seconds is not None and math.isfinite(seconds) and seconds > 0:
            self._open_until = self.clock() + min(seconds, MAX_OPEN_SECONDS)
