"""Outgoing metadata: request id, W3C trace context, the client's default metadata.

- `x-request-id`: the value bound with `bind_request_id()` (or set in `request_id_var`)
  if any, else a new one per logical call; retries of the call send the same id. The
  server logs the call under it and echoes it back; errors carry it as `request_id`.
- `traceparent` / `tracestate` (and baggage): injected by the OpenTelemetry API's global
  propagator from the current context, so a call made inside a span continues its trace.
  Without an SDK or an active span nothing is added.
- Default metadata of the client, overridden key by key by the call's own metadata.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate

from plansmith.interceptors._common import REQUEST_ID_HEADER, aio_details, sync_details

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


def _new_request_id() -> str:
    # A log correlation id, not a secret: 128 random bits without a system call per call.
    return f"{random.getrandbits(128):032x}"


class _MetadataBase:
    def __init__(
        self,
        default_metadata: Sequence[tuple[str, str]] = (),
        *,
        propagate_trace: bool = True,
        new_request_id: Callable[[], str] | None = None,
    ) -> None:
        self._defaults = tuple((k.lower(), v) for k, v in default_metadata)
        self._propagate = propagate_trace
        self._new_id = new_request_id or _new_request_id

    def _merge(self, metadata: Any) -> list[tuple[str, Any]]:
        own = list(metadata) if metadata else []
        if self._defaults:
            keys = {k for k, _ in own}
            out = [(k, v) for k, v in self._defaults if k not in keys]
            out.extend(own)
        else:
            out = own
        keys = {k for k, _ in out}
        if REQUEST_ID_HEADER not in keys:
            out.append((REQUEST_ID_HEADER, request_id_var.get() or self._new_id()))
        if self._propagate:
            ctx = otel_context.get_current()
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
        md = grpc.aio.Metadata(*self._merge(client_call_details.metadata))
        return await continuation(aio_details(client_call_details, metadata=md), request)


class AsyncStreamMetadataInterceptor(_MetadataBase, grpc.aio.UnaryStreamClientInterceptor):
    """Adds the client's metadata to server-streaming calls (grpc.aio)."""

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        md = grpc.aio.Metadata(*self._merge(client_call_details.metadata))
        return await continuation(aio_details(client_call_details, metadata=md), request)


class MetadataInterceptor(
    _MetadataBase, grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor
):
    """Adds the client's metadata to unary and server-streaming calls (sync grpc)."""

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        md = self._merge(client_call_details.metadata)
        return continuation(sync_details(client_call_details, metadata=md), request)

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        md = self._merge(client_call_details.metadata)
        return continuation(sync_details(client_call_details, metadata=md), request)
