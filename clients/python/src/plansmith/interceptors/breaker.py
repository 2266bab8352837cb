"""Guards each attempt of a unary call with the target's circuit breaker.

Sits inside the retry interceptor, so every attempt is admitted (or refused at once with
`CircuitOpenError`, which is never retried) and its outcome recorded.
"""

from __future__ import annotations

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


class AsyncBreakerInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Circuit breaker for unary calls (grpc.aio)."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        admission = _admit(self.breaker, client_call_details)
        try:
            call = await continuation(client_call_details, request)
            await call
        except BaseException as exc:
            self.breaker.record(admission, exc)
            raise
        self.breaker.record(admission, None)
        return call


class BreakerInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Circuit breaker for unary calls (sync grpc)."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        admission = _admit(self.breaker, client_call_details)
        try:
            outcome = continuation(client_call_details, request)
        except BaseException as exc:
            self.breaker.record(admission, exc)
            raise
        self.breaker.record(admission, outcome.exception())
        return outcome
