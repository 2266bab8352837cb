"""Outgoing metadata: request id, W3C trace context, the client's default metadata.

- `x-request-id`: the value bound with `bind_request_id()` (or set in `request_id_var`)
  if any, else a new one per logical call; retries of the call send the same id. The
  server logs the call under it and echoes it back; errors carry it as `request_id`.
- `traceparent` / `tracestate` (and baggage): injected by the OpenTelemetry API's global
  propagator from the current context, so a call made inside a span continues its trace.
  Without an SDK or an active span nothing is added.
- Default metadata of the client, overridden key by key by the call's own metadata.

When the application has configured an OpenTelemetry SDK (a real tracer provider), each
logical call also gets a CLIENT span (`plansmith.v1.PlanService/GetTask`, with the
`rpc.*` attributes and the final status code); retries happen inside it, so every
attempt's server span is its child. Without an SDK no span is made at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

from plansmith.interceptors._common import (
    REQUEST_ID_HEADER,
    aio_details,
    method_name,
    new_correlation_id,
    sync_details,
)

__all__ = [
    "AsyncMetadataInterceptor",
    "AsyncStreamMetadataInterceptor",
    "MetadataInterceptor",
    "bind_request_id",
    "request_id_var",
]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "plansmith_request_id", default=None
)
"""The `x-request-id` to send on calls made in this context (None: a new one per call)."""


@contextlib.contextmanager
def bind_request_id(request_id: str) -> Iterator[str]:
    """Sends `request_id` as the `x-request-id` of every call made inside the block
    (for example the id of the incoming request a service is handling)."""
    token = request_id_var.set(request_id)
    try:
        yield request_id
    finally:
        request_id_var.reset(token)


_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


# The tracer of the current provider: getting one per call cost a warnings filter, two
# scope objects and a lock with the SDK.
_tracer: tuple[trace.TracerProvider, trace.Tracer] | None = None


def _client_span(method: str) -> trace.Span | None:
    """A started CLIENT span for a call, or None when no SDK is configured."""
    global _tracer
    provider = trace.get_tracer_provider()
    if isinstance(provider, _NO_SDK):
        return None
    if _tracer is None or _tracer[0] is not provider:
        _tracer = (provider, provider.get_tracer("plansmith.client"))
    service, _, name = method.lstrip("/").partition("/")
    return _tracer[1].start_span(
        f"{service}/{name}",
        kind=trace.SpanKind.CLIENT,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )


def _end_span(span: trace.Span, code: grpc.StatusCode | None, details: str | None) -> None:
    code = code or grpc.StatusCode.UNKNOWN
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code != grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details or ''}".rstrip(": ")))
    span.end()


async def _end_when_done(span: trace.Span, call: Any) -> None:
    try:
        code = await call.code()
        details = await call.details()
    except BaseException:  # a cancelled call: the span still ends
        code, details = grpc.StatusCode.CANCELLED, None
    _end_span(span, code, details)


class _MetadataBase:
    def __init__(
        self,
        default_metadata: Sequence[tuple[str, str]] = (),
        *,
        propagate_trace: bool = True,
    ) -> None:
        self._defaults = tuple((k.lower(), v) for k, v in default_metadata)
        self._pending: set[asyncio.Future[None]] = set()  # keeps span-ending tasks alive
        self._propagate = propagate_trace

    def _track(self, fut: asyncio.Future[None]) -> None:
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)

    def _merge(self, metadata: Any, span: trace.Span | None = None) -> list[tuple[str, Any]]:
        own = list(metadata) if metadata else []
        keys = {k for k, _ in own}
        if self._defaults:
            out = [(k, v) for k, v in self._defaults if k not in keys]
            keys.update(k for k, _ in out)
            out.extend(own)
        else:
            out = own
        if REQUEST_ID_HEADER not in keys:
            out.append((REQUEST_ID_HEADER, request_id_var.get() or new_correlation_id()))
        if self._propagate:
            ctx = otel_context.get_current()
            if span is not None:
                ctx = trace.set_span_in_context(span, ctx)
            if ctx:  # an empty context (no span, no baggage) has nothing to propagate
                carrier: dict[str, str] = {}
                propagate.inject(carrier, context=ctx)
                out.extend((k, v) for k, v in carrier.items() if k not in keys)
        return out


class AsyncMetadataInterceptor(_MetadataBase, grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the client's metadata to unary calls (grpc.aio)."""

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        span = _client_span(method_name(client_call_details.method)) if self._propagate else None
        md = grpc.aio.Metadata(*self._merge(client_call_details.metadata, span))
        if span is None:
            return await continuation(aio_details(client_call_details, metadata=md), request)
        try:
            call = await continuation(aio_details(client_call_details, metadata=md), request)
        except BaseException:
            _end_span(span, grpc.StatusCode.UNKNOWN, "the call could not start")
            raise
        # Ends the span when the call (with its retries) is over, whatever the caller does.
        self._track(asyncio.ensure_future(_end_when_done(span, call)))
        return call


class AsyncStreamMetadataInterceptor(_MetadataBase, grpc.aio.UnaryStreamClientInterceptor):
    """Adds the client's metadata to server-streaming calls (grpc.aio)."""

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        span = _client_span(method_name(client_call_details.method)) if self._propagate else None
        md = grpc.aio.Metadata(*self._merge(client_call_details.metadata, span))
        call = await continuation(aio_details(client_call_details, metadata=md), request)
        if span is not None:
            self._track(asyncio.ensure_future(_end_when_done(span, call)))
        return call


class MetadataInterceptor(
    _MetadataBase, grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor
):
    """Adds the client's metadata to unary and server-streaming calls (sync grpc)."""

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        span = _client_span(method_name(client_call_details.method)) if self._propagate else None
        md = self._merge(client_call_details.metadata, span)
        if span is None:
            return continuation(sync_details(client_call_details, metadata=md), request)
        try:
            outcome = continuation(sync_details(client_call_details, metadata=md), request)
        except grpc.RpcError as exc:
            _end_span(span, exc.code(), exc.details())
            raise
        except BaseException:
            _end_span(span, grpc.StatusCode.UNKNOWN, "the call could not start")
            raise
        _end_span(span, outcome.code(), outcome.details())  # a sync unary call is over
        return outcome

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        span = _client_span(method_name(client_call_details.method)) if self._propagate else None
        md = self._merge(client_call_details.metadata, span)
        call = continuation(sync_details(client_call_details, metadata=md), request)
        if span is not None:
            call.add_done_callback(lambda c: _end_span(span, c.code(), c.details()))
        return call
