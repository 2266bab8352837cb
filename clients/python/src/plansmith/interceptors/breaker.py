"""Guards each attempt of a unary call with the target's circuit breaker.

Sits inside the retry interceptor, so every attempt is admitted (or refused at once with
`CircuitOpenError`, which is never retried) and its outcome recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from plansmith.breaker import CircuitBreaker
from plansmith.errors import CircuitOpenError, service_of
from plansmith.interceptors._common import REQUEST_ID_HEADER, metadata_value, method_name

__all__ = ["AsyncBreakerInterceptor", "BreakerInterceptor"]


def _admit(breaker: CircuitBreaker, details: Any) -> Any:
    try:
        return breaker.admit()
    except CircuitOpenError as exc:
        exc.method = method_name(details.method)
        exc.service_name = service_of(exc.method)
        exc.request_id = metadata_value(details.metadata, REQUEST_ID_HEADER)
        raise


def _record(
    breaker: CircuitBreaker,
    admission: Any,
    error: BaseException | None,
    others_serving: Callable[[], bool] | None,
) -> None:
    """Records an attempt's outcome; a transport failure while another server of a
    balanced channel is ready is one replica's and is not counted (`forget`)."""
    if (
        error is not None
        and others_serving is not None
        and breaker.is_failure(error)
        and others_serving()
    ):
        breaker.forget(admission)
    else:
        breaker.record(admission, error)


class AsyncBreakerInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Circuit breaker for unary calls (grpc.aio)."""

    def __init__(
        self, breaker: CircuitBreaker, others_serving: Callable[[], bool] | None = None
    ) -> None:
        self.breaker = breaker
        self.others_serving = others_serving

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        admission = _admit(self.breaker, client_call_details)
        try:
            call = await continuation(client_call_details, request)
            await call
        except BaseException as exc:
            _record(self.breaker, admission, exc, self.others_serving)
            raise
        self.breaker.record(admission, None)
        return call


class BreakerInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Circuit breaker for unary calls (sync grpc)."""

    def __init__(
        self, breaker: CircuitBreaker, others_serving: Callable[[], bool] | None = None
    ) -> None:
        self.breaker = breaker
        self.others_serving = others_serving

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        admission = _admit(self.breaker, client_call_details)
        try:
            outcome = continuation(client_call_details, request)
        except BaseException as exc:
            _record(self.breaker, admission, exc, self.others_serving)
            raise
        _record(self.breaker, admission, outcome.exception(), self.others_serving)
        return outcome
