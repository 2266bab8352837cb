"""The server's interceptor chain: one interceptor per cross-cutting concern.

Order (outermost first), built in `chain()`: access log with request id, then error
mapping. Each wraps the handler behaviors through `handlers.wrap_handler`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from plansmith_server.api.errors import internal_status, to_status
from plansmith_server.api.handlers import StreamBehavior, UnaryBehavior, wrap_handler
from plansmith_server.errors import PlansmithError

log = logging.getLogger("plansmith.access")
errlog = logging.getLogger("plansmith.errors")

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID = 128

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
"""The current call's request id, for logs and error messages."""


def _incoming_request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str):
            value = value.strip()
            if 0 < len(value) <= MAX_REQUEST_ID and value.isprintable():
                return value
    return uuid.uuid4().hex


def _code_after(exc: BaseException | None, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    if exc is None:
        return context.code() or grpc.StatusCode.OK
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    if isinstance(exc, grpc.aio.AbortError):
        return context.code() or grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.UNKNOWN


class _Interceptor(grpc.aio.ServerInterceptor):
    """Base: wraps every handler with `unary` / `stream` around its behavior."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        return wrap_handler(
            handler, lambda b: self.unary(method, b), lambda b: self.stream(method, b)
        )

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        raise NotImplementedError  # pragma: no cover


class AccessLogInterceptor(_Interceptor):
    """Assigns the request id (the caller's `x-request-id` or a new one), returns it in the
    response's initial metadata, and logs one line per call: method, code, duration, peer."""

    def _start(self, context: grpc.aio.ServicerContext) -> tuple[str, contextvars.Token[str]]:
        rid = _incoming_request_id(context)
        return rid, request_id_var.set(rid)

    def _log(
        self,
        method: str,
        context: grpc.aio.ServicerContext,
        rid: str,
        start: float,
        exc: BaseException | None,
    ) -> None:
        code = _code_after(exc, context)
        level = logging.INFO if code != grpc.StatusCode.UNKNOWN else logging.ERROR
        log.log(
            level,
            "%s %s %.1fms",
            method,
            code.name,
            (time.perf_counter() - start) * 1000,
            extra={
                "rpc_method": method,
                "status_code": code.name,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                "request_id": rid,
                "peer": context.peer(),
            },
        )

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            rid, token = self._start(context)
            start = time.perf_counter()
            exc: BaseException | None = None
            try:
                await context.send_initial_metadata(((REQUEST_ID_HEADER, rid),))
                return await behavior(request, context)
            except BaseException as e:
                exc = e
                raise
            finally:
                self._log(method, context, rid, start, exc)
                request_id_var.reset(token)

        return wrapped

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            rid, token = self._start(context)
            start = time.perf_counter()
            exc: BaseException | None = None
            try:
                await context.send_initial_metadata(((REQUEST_ID_HEADER, rid),))
                async for item in behavior(request, context):
                    yield item
            except BaseException as e:
                exc = e
                raise
            finally:
                self._log(method, context, rid, start, exc)
                request_id_var.reset(token)

        return wrapped


async def _abort_for(exc: Exception, context: grpc.aio.ServicerContext) -> None:
    if isinstance(exc, PlansmithError):
        status = to_status(exc)
    else:
        rid = request_id_var.get()
        errlog.exception("unexpected error (request id %s)", rid)
        status = internal_status(rid)
    s = rpc_status.to_status(status)
    await context.abort(s.code, s.details, trailing_metadata=s.trailing_metadata)


class ErrorInterceptor(_Interceptor):
    """Maps domain errors to statuses with details; anything else to INTERNAL, logged,
    without leaking exception text."""

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort_for(exc, context)

        return wrapped

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in behavior(request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort_for(exc, context)

        return wrapped


def chain() -> list[grpc.aio.ServerInterceptor]:
    """The interceptors of the server, outermost first."""
    return [AccessLogInterceptor(), ErrorInterceptor()]
