"""Circuit breaker: one per target, so a dead server fails calls at once.

Built on pybreaker's state machine (closed → open → half-open → closed), with what the
client needs on top:

- Only transport-level failures count (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, `INTERNAL`,
  `UNKNOWN`). Business errors (`NOT_FOUND`, `INVALID_ARGUMENT`, `ABORTED` ...) prove the
  server answers and count as successes; a cancelled call counts as nothing.
- While open, `admit()` raises `CircuitOpenError` before any network call.
- After `reset_timeout` the breaker half-opens and admits exactly one probe at a time
  (pybreaker alone would let every concurrent caller through); the probe's outcome closes
  or reopens it.
- Time comes from an injectable `Clock`, so tests need not sleep.
- `state` is observable and `add_listener(fn)` reports every change as
  `fn(breaker, old_state, new_state)`, in order, once the change is complete and outside
  the breaker's locks: a listener sees `state` already at `new_state` (unless a later
  change followed) and may use the breaker. An exception a listener raises is logged and
  ignored; the other listeners are still called.

The outcome of an attempt is replayed into pybreaker after the attempt ends (its own
decorators cannot see the result of a coroutine); outcomes of attempts admitted before
the last state change are ignored, so a late answer cannot flip a newer state.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pybreaker

from plansmith.errors import CircuitOpenError
from plansmith.retry import Clock

__all__ = [
    "TRANSPORT_FAILURE_CODES",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "breaker_for",
]

log = logging.getLogger("plansmith.client")

TRANSPORT_FAILURE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
"""Status codes that count as failures of the target."""

# pybreaker must never leave `open` on its own clock: we decide with ours.
_PYBREAKER_NEVER = 10 * 365 * 24 * 3600.0


class BreakerState(enum.Enum):
    """State of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and how it recovers."""

    failure_threshold: int = 5
    """Consecutive transport failures that open the circuit."""
    reset_timeout: float = 30.0
    """Seconds the circuit stays open before it admits a probe call."""
    success_threshold: int = 1
    """Successful probes needed in half-open to close the circuit."""
    failure_codes: frozenset[grpc.StatusCode] = TRANSPORT_FAILURE_CODES
    """Status codes that count as failures."""


StateListener = Callable[["CircuitBreaker", BreakerState, BreakerState], None]


class _Failure(Exception):
    """Stands for a failed attempt inside pybreaker (which only learns by exceptions)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _ok() -> None:
    return None


def _fail(marker: _Failure) -> None:
    raise marker


class _Adapter(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: CircuitBreaker) -> None:
        self.owner = owner

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        self.owner._changed(
            BreakerState(old_state.name) if old_state is not None else BreakerState.CLOSED,
            BreakerState(new_state.name),
        )


@dataclass(frozen=True)
class Admission:
    """A ticket for one attempt; hand it back to `record()`."""

    generation: int
    probe: bool


class CircuitBreaker:
    """The circuit breaker of one target (see the module docstring)."""

    def __init__(
        self, target: str, policy: BreakerPolicy | None = None, *, clock: Clock | None = None
    ) -> None:
        self.target = target
        self.policy = policy or BreakerPolicy()
        self._clock = clock or Clock()
        self._opened_at: float | None = None
        self._generation = 0
        self._probe = threading.Lock()
        self._transition = threading.Lock()
        self._listeners: list[StateListener] = []
        # Changes not yet told to the listeners. pybreaker reports a change from inside
        # its lock and before its storage holds the new state: a listener called there
        # would read the old state, and one reading `state` during a half-open would
        # deadlock on `_transition`. So changes are queued and told afterwards.
        self._pending: collections.deque[tuple[BreakerState, BreakerState]] = collections.deque()
        self._pending_lock = threading.Lock()
        self._notifying = False
        self._cb = pybreaker.CircuitBreaker(
            fail_max=self.policy.failure_threshold,
            reset_timeout=_PYBREAKER_NEVER,
            success_threshold=self.policy.success_threshold,
            name=target,
            throw_new_error_on_trip=False,
            listeners=[_Adapter(self)],
        )

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.target!r}, state={self.state.value})"

    @property
    def pybreaker(self) -> pybreaker.CircuitBreaker:
        """The underlying pybreaker breaker (its reset timeout is not used). A change made
        through it directly is told to the listeners at the breaker's next use (`state`,
        an admitted call)."""
        return self._cb

    @property
    def state(self) -> BreakerState:
        """The current state; an open circuit whose timeout has passed reads half-open."""
        self._maybe_half_open()
        return BreakerState(self._cb.current_state)

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted so far."""
        return int(self._cb.fail_counter)

    def add_listener(self, listener: StateListener) -> None:
        """Calls `listener(breaker, old_state, new_state)` on every state change."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StateListener) -> None:
        self._listeners.remove(listener)

    def reset(self) -> None:
        """Closes the circuit and forgets the failures."""
        self._cb.close()
        self._notify()

    def open(self) -> None:
        """Opens the circuit by hand (for example on a maintenance signal)."""
        self._cb.open()
        self._notify()

    def _changed(self, old: BreakerState, new: BreakerState) -> None:
        # Called by pybreaker inside its lock, before the change is complete.
        self._generation += 1
        if new is BreakerState.OPEN:
            self._opened_at = self._clock.monotonic()
        with self._pending_lock:
            self._pending.append((old, new))

    def _notify(self) -> None:
        """Tells the listeners about the queued changes, in order. One thread at a time
        does it (a listener's own use of the breaker only queues); another thread's
        change queued meanwhile is told by the thread already telling."""
        if not self._pending:  # the usual case, without the lock (a deque's length is atomic)
            return
        with self._pending_lock:
            if self._notifying or not self._pending:
                return
            self._notifying = True
        try:
            while True:
                with self._pending_lock:
                    if not self._pending:
                        self._notifying = False
                        return
                    old, new = self._pending.popleft()
                for listener in list(self._listeners):
                    try:
                        listener(self, old, new)
                    except Exception:  # a broken listener must not break calls
                        log.exception("circuit breaker listener failed")
        except BaseException:
            with self._pending_lock:
                self._notifying = False
            raise

    def _retry_after(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.policy.reset_timeout - (self._clock.monotonic() - self._opened_at))

    def _maybe_half_open(self) -> None:
        if self._cb.current_state == pybreaker.STATE_OPEN and self._retry_after() <= 0:
            with self._transition:
                if self._cb.current_state == pybreaker.STATE_OPEN:
                    self._cb.half_open()
        self._notify()  # also changes made through `pybreaker` directly

    def admit(self) -> Admission:
        """Admits one attempt, or raises `CircuitOpenError` without touching the network."""
        state = self._cb.current_state
        if state == pybreaker.STATE_CLOSED:
            self._notify()  # a change made through `pybreaker` directly
            return Admission(self._generation, False)
        self._maybe_half_open()
        if self._cb.current_state == pybreaker.STATE_OPEN:
            raise CircuitOpenError(target=self.target, retry_after=self._retry_after())
        if not self._probe.acquire(blocking=False):
            raise CircuitOpenError(
                f"circuit breaker for {self.target} is half-open and a probe call is in flight",
                target=self.target,
            )
        generation = self._generation
        if self._cb.current_state != pybreaker.STATE_HALF_OPEN:
            # It moved on while we took the probe slot: no probe needed any more.
            self._probe.release()
            return self.admit()
        return Admission(generation, True)

    def is_failure(self, error: BaseException) -> bool:
        """Whether `error` counts against the target."""
        code = getattr(error, "code", None)
        if not callable(code) or not isinstance(error, grpc.RpcError):
            return False
        try:
            return code() in self.policy.failure_codes
        except Exception:
            return False

    @staticmethod
    def is_cancellation(error: BaseException) -> bool:
        if isinstance(error, asyncio.CancelledError):
            return True
        code = getattr(error, "code", None)
        if callable(code) and isinstance(error, grpc.RpcError):
            try:
                return bool(code() == grpc.StatusCode.CANCELLED)
            except Exception:
                return False
        return False

    def forget(self, admission: Admission) -> None:
        """Ends an admitted attempt without counting it either way (a failure of one
        server of several, while another answers)."""
        if admission.probe:
            self._probe.release()
        self._notify()

    def record(self, admission: Admission, error: BaseException | None) -> None:
        """Records the outcome of an admitted attempt: None for success, else its error."""
        try:
            if admission.generation != self._generation:
                return  # admitted under an older state: its outcome says nothing now
            if error is not None and self.is_cancellation(error):
                return
            if error is not None and self.is_failure(error):
                try:
                    self._cb.call(_fail, _Failure(error))
                except (_Failure, pybreaker.CircuitBreakerError):
                    pass
            else:
                try:
                    self._cb.call(_ok)
                except pybreaker.CircuitBreakerError:
                    pass
        finally:
            if admission.probe:
                self._probe.release()
            self._notify()


_registry: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def breaker_for(target: str, policy: BreakerPolicy | None = None) -> CircuitBreaker:
    """The process-wide breaker of `target`, made with `policy` on first use."""
    with _registry_lock:
        breaker = _registry.get(target)
        if breaker is None:
            breaker = _registry[target] = CircuitBreaker(target, policy)
        return breaker
