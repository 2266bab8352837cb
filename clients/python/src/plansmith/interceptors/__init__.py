"""The client's gRPC interceptors, one per concern, and the chain that orders them.

Outermost first: the caller's own interceptors, metadata (request id, trace context,
default metadata), retry (per-operation policy, shared deadline, idempotency key),
circuit breaker (per attempt), error mapping (per attempt). Every concern comes as a
grpc.aio class (`Async...`) and a sync grpc class; grpc.aio needs one instance per call
kind, so server-streaming calls get their own metadata interceptor. Streams are retried
and guarded by the breaker in `plansmith.streams`, above the stub, not here.

`InterceptorChain` builds the lists and owns what they share: the retry policies and
counters and the target's breaker. Use it to put the client's behaviour on a channel you
create yourself::

    chain = InterceptorChain("localhost:50051")
    channel = grpc.aio.insecure_channel(
        "localhost:50051", options=chain.channel_options(), interceptors=chain.aio()
    )
    client = AsyncPlansmithClient(channel, chain=chain)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from plansmith._defaults import DEFAULT, DefaultType
from plansmith.breaker import BreakerPolicy, CircuitBreaker, breaker_for
from plansmith.interceptors._common import retry_policy
from plansmith.interceptors.breaker import AsyncBreakerInterceptor, BreakerInterceptor
from plansmith.interceptors.errors import AsyncErrorInterceptor, ErrorInterceptor
from plansmith.interceptors.metadata import (
    AsyncMetadataInterceptor,
    AsyncStreamMetadataInterceptor,
    MetadataInterceptor,
    bind_request_id,
    request_id_var,
)
from plansmith.interceptors.retry import AsyncRetryInterceptor, RetryInterceptor
from plansmith.retry import Clock, OnRetry, RetryPolicies, RetryPolicy, RetryStats

__all__ = [
    "AsyncBreakerInterceptor",
    "AsyncErrorInterceptor",
    "AsyncMetadataInterceptor",
    "AsyncRetryInterceptor",
    "AsyncStreamMetadataInterceptor",
    "BreakerArg",
    "BreakerInterceptor",
    "ErrorInterceptor",
    "InterceptorChain",
    "MetadataInterceptor",
    "RetryArg",
    "RetryInterceptor",
    "bind_request_id",
    "request_id_var",
    "retry_policy",
]

RetryArg = RetryPolicies | RetryPolicy | None | DefaultType
"""`retry=`: DEFAULT (the default policies), a `RetryPolicies`, one `RetryPolicy` for every
kind of call, or None (no retries)."""
BreakerArg = CircuitBreaker | BreakerPolicy | None | DefaultType
"""`breaker=`: DEFAULT (the process-wide breaker of the target, default policy), a
`BreakerPolicy` (a new breaker of this client), a `CircuitBreaker` to share, or None."""


def resolve_policies(retry: RetryArg) -> RetryPolicies | None:
    if retry is DEFAULT:
        return RetryPolicies()
    if isinstance(retry, RetryPolicy):
        return RetryPolicies.uniform(retry)
    return retry


class InterceptorChain:
    """The client's interceptors for one target and the state they share."""

    def __init__(
        self,
        target: str = "",
        *,
        retry: RetryArg = DEFAULT,
        breaker: BreakerArg = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
        interceptors: Sequence[Any] = (),
        on_retry: OnRetry | None = None,
        clock: Clock | None = None,
        jitter: Callable[[], float] | None = None,
        propagate_trace: bool = True,
    ) -> None:
        self.target = target
        self.clock = clock or Clock()
        self.jitter = random.random if jitter is None else jitter
        """The jitter source of retry delays (None given: `random.random`)."""
        self.policies = resolve_policies(retry)
        """The retry policies (None: retrying is off)."""
        self.retry_stats = RetryStats()
        """Counters of attempts, retries and successes after retry."""
        self.on_retry = on_retry
        self.metadata = tuple(metadata)
        self.user_interceptors = tuple(interceptors)
        self.propagate_trace = propagate_trace
        self._channel_ready: Callable[[], bool] | None = None
        """For a channel balanced over several servers: whether one of them is ready
        (see `watch_aio_channel`); None for a single server."""
        self.breaker: CircuitBreaker | None
        """The circuit breaker (None: no breaker)."""
        if breaker is DEFAULT:
            # One breaker per target, shared by the clients of the process.
            self.breaker = breaker_for(target) if target else CircuitBreaker(target)
        elif isinstance(breaker, BreakerPolicy):
            self.breaker = CircuitBreaker(target, breaker, clock=self.clock)
        else:
            self.breaker = breaker

    def _retry_kwargs(self) -> dict[str, Any]:
        return dict(
            clock=self.clock,
            jitter=self.jitter,
            stats=self.retry_stats,
            on_retry=self.on_retry,
        )

    def channel_options(self, options: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
        """`options` plus a reconnect backoff that fits the retry policies (unless
        `options` sets its own): after a failed connect gRPC waits 1 s, then 1.6 s ... up
        to 120 s before it tries again; here it starts at the policies' smallest first
        delay and grows (x1.6) to their largest delay, so the channel tries again at
        least as often as the retries would."""
        given = {key for key, _ in options}
        out = list(options)
        if self.policies is not None:
            kinds = [self.policies.create, self.policies.update, self.policies.delete]
            kinds.append(self.policies.read)
            initial = min(p.initial_delay for p in kinds)
            largest = max(p.max_delay for p in kinds)
            for key, seconds in (
                ("grpc.initial_reconnect_backoff_ms", initial),
                ("grpc.max_reconnect_backoff_ms", max(initial, largest)),
            ):
                if key not in given and seconds > 0:
                    out.append((key, max(1, round(seconds * 1000))))
        return out

    def others_serving(self) -> bool:
        """Whether a failed attempt leaves a server of the channel ready: then a failure
        is one replica's, and does not count against the target's breaker (a dead
        replica costs its in-flight calls their retries, not the live replicas their
        calls). Always False for a channel to a single server."""
        ready = self._channel_ready
        if ready is None:
            return False
        try:
            return ready()
        except Exception:
            return False

    def watch_aio_channel(self, channel: grpc.aio.Channel) -> None:
        """Lets `others_serving` ask a balanced grpc.aio channel for its state."""
        self._channel_ready = (
            lambda: channel.get_state(try_to_connect=False) == grpc.ChannelConnectivity.READY
        )

    def watch_sync_channel(self, channel: grpc.Channel) -> None:
        """Lets `others_serving` know a balanced sync channel's state (reported to a
        subscription: sync channels cannot be asked)."""
        state = [grpc.ChannelConnectivity.IDLE]
        channel.subscribe(lambda s: state.__setitem__(0, s), try_to_connect=False)
        self._channel_ready = lambda: state[0] == grpc.ChannelConnectivity.READY

    def aio(self) -> list[Any]:
        """Interceptors for `grpc.aio` channels, outermost first."""
        out: list[Any] = [
            *self.user_interceptors,
            AsyncMetadataInterceptor(self.metadata, propagate_trace=self.propagate_trace),
            AsyncStreamMetadataInterceptor(self.metadata, propagate_trace=self.propagate_trace),
            AsyncRetryInterceptor(self.policies, **self._retry_kwargs()),
        ]
        if self.breaker is not None:
            out.append(AsyncBreakerInterceptor(self.breaker, self.others_serving))
        out.append(AsyncErrorInterceptor())
        return out

    def sync(self) -> list[Any]:
        """Interceptors for sync `grpc` channels (`grpc.intercept_channel`), outermost first."""
        out: list[Any] = [
            *self.user_interceptors,
            MetadataInterceptor(self.metadata, propagate_trace=self.propagate_trace),
            RetryInterceptor(self.policies, **self._retry_kwargs()),
        ]
        if self.breaker is not None:
            out.append(BreakerInterceptor(self.breaker, self.others_serving))
        out.append(ErrorInterceptor())
        return out
