"""Retries unary calls by their operation's policy, within one overall deadline.

The `timeout` of the call is the deadline of the whole logical call: each attempt gets
what is left of it (or the policy's `attempt_timeout` if smaller). A write carrying a
`request_id` field gets one generated when it has none, before the first attempt, so all
attempts send the same idempotency key; a write without such a field is never retried.
The retry policy is the kind's (`RetryPolicies`), or the one set with
`plansmith.retry_policy(...)` around the call.

After an UNAVAILABLE attempt the retries are sent with `wait_for_ready`: while a server
restarts, the channel is reconnecting (with its own backoff, see
`InterceptorChain.channel_options`), and an attempt made meanwhile would fail at once
without being sent, using up the retries in a second. Waiting for the channel instead, a
restart costs the caller latency, not an error; a server that stays away costs the call
its deadline (`DeadlineExceededError`, with the UNAVAILABLE as `last_error`).

This interceptor also raises mapped `PlansmithError`s for the calls it gives up on
(`MaxRetriesExceededError`, `DeadlineExceededError` ...).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import grpc

from plansmith._defaults import DEFAULT
from plansmith.errors import DeadlineExceededError, PlansmithError, from_rpc_error
from plansmith.interceptors._common import (
    REQUEST_ID_HEADER,
    aio_details,
    metadata_value,
    method_name,
    new_request_id,
    retry_override,
    sync_details,
)
from plansmith.retry import (
    NO_RETRY,
    Clock,
    OnRetry,
    OperationKind,
    RetryPolicies,
    RetryPolicy,
    RetryState,
    RetryStats,
    classify,
)

__all__ = ["AsyncRetryInterceptor", "RetryInterceptor"]


def _unavailable(error: PlansmithError | None) -> bool:
    return error is not None and error.status_code == grpc.StatusCode.UNAVAILABLE


def _after_waiting(error: PlansmithError, last: PlansmithError | None) -> PlansmithError:
    """The error of an attempt that waited for the channel: when the deadline ran out
    while it waited, the UNAVAILABLE before it says why."""
    if error.status_code == grpc.StatusCode.DEADLINE_EXCEEDED and _unavailable(last):
        assert last is not None
        return DeadlineExceededError(
            f"deadline exceeded while waiting for the server to be reachable again; "
            f"last error: {last}",
            last_error=last,
            request_id=last.request_id,
            method=last.method,
        )
    return error


class _RetryBase:
    def __init__(
        self,
        policies: RetryPolicies | None,
        *,
        clock: Clock | None = None,
        jitter: Callable[[], float] = random.random,
        stats: RetryStats | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.policies = policies
        self.clock = clock or Clock()
        self.jitter = jitter
        self.stats = stats if stats is not None else RetryStats()
        self.on_retry = on_retry

    def _prepare(self, details: Any, request: Any) -> tuple[str, Any, RetryState]:
        method = method_name(details.method)
        kind, retryable = classify(method, request)
        if kind is not OperationKind.READ and retryable and not request.request_id:
            filled = type(request)()
            filled.CopyFrom(request)
            filled.request_id = new_request_id()
            request = filled
        override = retry_override.get()
        policy: RetryPolicy
        if not retryable:
            policy = NO_RETRY
        elif override is not DEFAULT:
            policy = override or NO_RETRY
        elif self.policies is None:
            policy = NO_RETRY
        else:
            policy = self.policies.for_kind(kind)
        state = RetryState(
            policy,
            method=method,
            timeout=details.timeout,
            clock=self.clock,
            jitter=self.jitter,
            stats=self.stats,
            on_retry=self.on_retry,
        )
        return method, request, state


class AsyncRetryInterceptor(_RetryBase, grpc.aio.UnaryUnaryClientInterceptor):
    """Retries unary calls (grpc.aio)."""

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        method, request, state = self._prepare(client_call_details, request)
        last: PlansmithError | None = None
        while True:
            timeout = state.start_attempt(last)
            wait = _unavailable(last) and client_call_details.wait_for_ready is None
            details = (
                client_call_details
                if timeout == client_call_details.timeout and not wait
                else aio_details(
                    client_call_details,
                    timeout=timeout,
                    wait_for_ready=True if wait else client_call_details.wait_for_ready,
                )
            )
            try:
                call = await continuation(details, request)
                await call
            except grpc.RpcError as exc:
                error = from_rpc_error(
                    exc,
                    method=method,
                    request_id=metadata_value(client_call_details.metadata, REQUEST_ID_HEADER),
                )
                last = _after_waiting(error, last) if wait else error
            else:
                state.succeeded()
                return call
            delay = state.failed(last)
            await self.clock.async_sleep(delay)


class RetryInterceptor(_RetryBase, grpc.UnaryUnaryClientInterceptor):
    """Retries unary calls (sync grpc)."""

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        method, request, state = self._prepare(client_call_details, request)
        last: PlansmithError | None = None
        while True:
            timeout = state.start_attempt(last)
            given = getattr(client_call_details, "wait_for_ready", None)
            wait = _unavailable(last) and given is None
            details = (
                client_call_details
                if timeout == client_call_details.timeout and not wait
                else sync_details(
                    client_call_details,
                    timeout=timeout,
                    wait_for_ready=True if wait else given,
                )
            )
            outcome = continuation(details, request)
            exc = outcome.exception()
            if exc is None:
                state.succeeded()
                return outcome
            if not isinstance(exc, grpc.RpcError):
                return outcome  # a local failure: let grpc raise it as it is
            error = from_rpc_error(
                exc,
                method=method,
                request_id=metadata_value(client_call_details.metadata, REQUEST_ID_HEADER),
            )
            last = _after_waiting(error, last) if wait else error
            delay = state.failed(last)
            self.clock.sleep(delay)
