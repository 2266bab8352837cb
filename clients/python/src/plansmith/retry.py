"""Retry policies: which failures are retried, how long to wait, how many times.

A `RetryPolicy` is immutable; `RetryPolicies` holds one per kind of operation (create,
update, delete, read). Delays use full jitter: retry *n* waits a uniformly random time in
`[0, min(max_delay, initial_delay * multiplier ** (n - 1))]`, or the server's `RetryInfo`
delay when the error carries one. One overall deadline covers every attempt and wait.

Writes are retried only when they carry an idempotency key (`request_id`, AIP-155): the
client fills it once per logical call and sends the same key on every attempt, so a retry
after a lost response returns the first result instead of doing the work twice.

Everything here is free of I/O; the interceptors and stream helpers do the waiting.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, cast

import grpc

from plansmith.errors import (
    CircuitOpenError,
    DeadlineExceededError,
    MaxRetriesExceededError,
    PlansmithError,
)

__all__ = [
    "NO_RETRY",
    "Clock",
    "OperationKind",
    "RetryEvent",
    "RetryPolicies",
    "RetryPolicy",
    "RetryStats",
    "classify",
]

log = logging.getLogger("plansmith.client")

_WRITE_VERBS = ("Create", "BatchCreate", "Update", "Delete", "Apply", "Set", "Add", "Remove")


class OperationKind(enum.Enum):
    """What a call does, which picks its retry policy."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    READ = "read"


@dataclass(frozen=True)
class RetryPolicy:
    """How one kind of call is retried. Immutable: derive variants with `replace()`."""

    max_retries: int = 2
    """Retries after the first attempt; 0 turns retrying off."""
    initial_delay: float = 0.5
    """Upper bound of the first wait, in seconds."""
    max_delay: float = 2.0
    """Upper bound of any wait, in seconds (a server's RetryInfo delay may exceed it)."""
    multiplier: float = 2.0
    """Growth of the upper bound from one retry to the next."""
    retry_codes: frozenset[grpc.StatusCode] = frozenset(
        {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
    )
    """Status codes that are retried. RESOURCE_EXHAUSTED is retried only when the error
    carries a RetryInfo delay (without one the limit may not lift soon)."""
    attempt_timeout: float | None = None
    """Deadline of each attempt in seconds, within the overall one; None: no own limit."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and multiplier >= 1")
        object.__setattr__(self, "retry_codes", frozenset(self.retry_codes))

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with `changes` applied."""
        return replace(self, **changes)

    def delay_cap(self, retry_number: int) -> float:
        """The upper bound of the wait before retry `retry_number` (1-based)."""
        return min(self.max_delay, self.initial_delay * self.multiplier ** (retry_number - 1))

    def backoff(self, retry_number: int, rand: float) -> float:
        """Full jitter: `rand` (uniform in [0, 1)) scaled to the cap of this retry."""
        return rand * self.delay_cap(retry_number)

    def is_retryable(self, error: PlansmithError) -> bool:
        """Whether `error` is worth another attempt under this policy."""
        if isinstance(error, CircuitOpenError) or error.status_code not in self.retry_codes:
            return False
        if error.status_code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return error.retry_delay is not None
        return True

    def delay_for(self, error: PlansmithError, retry_number: int, rand: float) -> float:
        """The wait before retry `retry_number`: the server's RetryInfo delay if it sent
        one, else the jittered backoff."""
        if error.retry_delay is not None:
            return max(0.0, error.retry_delay)
        return self.backoff(retry_number, rand)


NO_RETRY = RetryPolicy(max_retries=0)
"""A policy that never retries."""

_WRITE_POLICY = RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=4.0)


@dataclass(frozen=True)
class RetryPolicies:
    """One `RetryPolicy` per kind of operation; the defaults are the client's."""

    create: RetryPolicy = _WRITE_POLICY
    update: RetryPolicy = _WRITE_POLICY
    delete: RetryPolicy = RetryPolicy(max_retries=2, initial_delay=1.0, max_delay=4.0)
    read: RetryPolicy = RetryPolicy(
        max_retries=2,
        initial_delay=0.5,
        max_delay=2.0,
        retry_codes=frozenset(
            {
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            }
        ),
    )

    @classmethod
    def uniform(cls, policy: RetryPolicy) -> RetryPolicies:
        """The same policy for every kind of operation."""
        return cls(create=policy, update=policy, delete=policy, read=policy)

    def replace(self, **changes: RetryPolicy) -> RetryPolicies:
        """A copy with some kinds' policies replaced (`read=..., delete=...`)."""
        return replace(self, **changes)

    def for_kind(self, kind: OperationKind) -> RetryPolicy:
        policy: RetryPolicy = getattr(self, kind.value)
        return policy


@cache
def _has_request_id(request_type: type) -> bool:
    descriptor = getattr(request_type, "DESCRIPTOR", None)
    return descriptor is not None and "request_id" in descriptor.fields_by_name


@cache
def _classify(method: str, request_type: type) -> tuple[OperationKind, bool]:
    name = method.rsplit("/", 1)[-1]
    keyed = _has_request_id(request_type)
    if name.startswith("Delete"):
        kind = OperationKind.DELETE
    elif name.startswith("Update"):
        kind = OperationKind.UPDATE
    elif keyed or name.startswith(_WRITE_VERBS):
        kind = OperationKind.CREATE
    else:
        return OperationKind.READ, True
    return kind, keyed


def classify(method: str, request: object) -> tuple[OperationKind, bool]:
    """The operation kind of a call and whether it may be retried at all.

    A request with a `request_id` field is a write (delete / update / create by the RPC's
    verb) and may be retried, since the key makes it idempotent. A write without one
    (by its verb) is never retried; anything else is a read.
    """
    # mypy does not take a class for Hashable (the cache's argument type); it is one.
    return _classify(method, cast(Hashable, type(request)))


class Clock:
    """The time source and sleeper of retries and breakers; tests pass a fake one."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def async_sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryEvent:
    """Passed to the `on_retry` hook before each wait."""

    method: str
    """Full method name, e.g. `/plansmith.v1.PlanService/GetTask`."""
    attempt: int
    """The attempt that failed (1-based)."""
    delay: float
    """Seconds the client waits before the next attempt."""
    error: PlansmithError
    """Why the attempt failed."""


@dataclass
class RetryStats:
    """Counters of a client's retrying (all methods together)."""

    attempts: int = 0
    """Attempts sent, first ones and retries."""
    retries: int = 0
    """Attempts that were retries."""
    successes_after_retry: int = 0
    """Calls that succeeded after at least one retry."""
    exhausted: int = 0
    """Calls that gave up: retries used up or the deadline reached."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        """The counters as a dict."""
        with self._lock:
            return {
                "attempts": self.attempts,
                "retries": self.retries,
                "successes_after_retry": self.successes_after_retry,
                "exhausted": self.exhausted,
            }


OnRetry = Callable[[RetryEvent], None]


class RetryState:
    """The bookkeeping of one logical call's attempts (I/O-free; the caller waits)."""

    __slots__ = (
        "_clock",
        "_jitter",
        "_on_retry",
        "_stats",
        "attempts",
        "deadline",
        "method",
        "policy",
        "retries",
        "timeout",
    )

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        method: str,
        timeout: float | None,
        clock: Clock,
        jitter: Callable[[], float] = random.random,
        stats: RetryStats | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.policy = policy
        self.method = method
        self.timeout = timeout
        self.deadline = None if timeout is None else clock.monotonic() + timeout
        self.attempts = 0
        self.retries = 0
        self._clock = clock
        self._jitter = jitter
        self._stats = stats
        self._on_retry = on_retry

    def start_attempt(self, last_error: PlansmithError | None = None) -> float | None:
        """Counts an attempt and returns its timeout; raises if the deadline has passed."""
        timeout = self.policy.attempt_timeout
        if self.deadline is not None:
            remaining = self.deadline - self._clock.monotonic()
            if remaining <= 0:
                raise self._deadline_error(last_error)
            timeout = remaining if timeout is None else min(timeout, remaining)
        self.attempts += 1
        if self._stats is not None:
            self._stats._add("attempts")
        return timeout

    def succeeded(self) -> None:
        # Attempts, not `retries`: a stream's progress gives it its retry budget back
        # (retries = 0), but a stream reopened once and then finished still succeeded
        # after a retry.
        if self.attempts > 1 and self._stats is not None:
            self._stats._add("successes_after_retry")

    def failed(self, error: PlansmithError) -> float:
        """After a failed attempt: the wait before the next one, or raises the error to
        give the caller (`MaxRetriesExceededError` when retries are used up,
        `DeadlineExceededError` when the wait would pass the deadline)."""
        if isinstance(error, DeadlineExceededError):
            error.attempts = self.attempts
        if not self.policy.is_retryable(error):
            raise error
        if self.retries >= self.policy.max_retries:
            if self.policy.max_retries == 0:
                raise error
            self._exhausted()
            raise MaxRetriesExceededError(self.attempts, error) from error
        delay = self.policy.delay_for(error, self.retries + 1, self._jitter())
        if self.deadline is not None and delay >= self.deadline - self._clock.monotonic():
            final = self._deadline_error(error)
            if final is error:
                raise error
            raise final from error
        self.retries += 1
        if self._stats is not None:
            self._stats._add("retries")
        if self._on_retry is not None:
            try:
                self._on_retry(RetryEvent(self.method, self.attempts, delay, error))
            except Exception:  # a broken hook must not break the call
                log.exception("on_retry hook failed")
        return delay

    def _exhausted(self) -> None:
        if self._stats is not None:
            self._stats._add("exhausted")

    def _deadline_error(self, last: PlansmithError | None) -> DeadlineExceededError:
        self._exhausted()
        if isinstance(last, DeadlineExceededError) and last.status_code == (
            grpc.StatusCode.DEADLINE_EXCEEDED
        ):
            last.attempts = self.attempts
            return last
        what = f"; last error: {last}" if last is not None else ""
        return DeadlineExceededError(
            f"deadline of {self.timeout}s exceeded after {self.attempts} attempt(s){what}",
            attempts=self.attempts,
            last_error=last,
            request_id=last.request_id if last is not None else "",
            method=self.method,
        )
