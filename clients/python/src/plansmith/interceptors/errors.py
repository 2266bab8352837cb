"""Turns each failed attempt's `grpc.RpcError` into its `PlansmithError`.

The innermost of the client's interceptors: the ones above it (breaker, retry) and the
caller see mapped errors with details, method and request id filled in.
"""

from __future__ import annotations

from typing import Any

import grpc

from plansmith.errors import PlansmithError, from_rpc_error
from plansmith.interceptors._common import REQUEST_ID_HEADER, metadata_value, method_name

__all__ = ["AsyncErrorInterceptor", "ErrorInterceptor"]


def _mapped(exc: grpc.RpcError, details: Any) -> PlansmithError:
    return from_rpc_error(
        exc,
        method=method_name(details.method),
        request_id=metadata_value(details.metadata, REQUEST_ID_HEADER),
    )


class AsyncErrorInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Maps errors of unary calls (grpc.aio)."""

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        call = await continuation(client_call_details, request)
        try:
            await call
        except grpc.RpcError as exc:
            if isinstance(exc, PlansmithError):
                raise
            raise _mapped(exc, client_call_details) from None
        return call


class ErrorInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Maps errors of unary calls (sync grpc)."""

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        outcome = continuation(client_call_details, request)
        exc = outcome.exception()
        if exc is None or isinstance(exc, PlansmithError) or not isinstance(exc, grpc.RpcError):
            return outcome
        raise _mapped(exc, client_call_details)
