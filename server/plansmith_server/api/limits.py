"""Overload protection: a bound on calls in flight and on open streams.

Beyond the bound a call is answered RESOURCE_EXHAUSTED with a RetryInfo delay at once,
instead of queueing without bound behind the others (which only grows latency and
memory). Health, status and reflection are exempt: an overloaded server must still say
how it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from plansmith_server.api.handlers import StreamBehavior, UnaryBehavior
from plansmith_server.api.interceptors import Concern
from plansmith_server.errors import ResourceExhaustedError

EXEMPT_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    "/plansmith.v1.OpsService/",
)


class LoadShedInterceptor(Concern):
    """Refuses calls beyond `max_in_flight` (unary and streams together) and streams beyond
    `max_streams`, telling the caller to retry after `retry_after` seconds."""

    def __init__(self, max_in_flight: int, max_streams: int, retry_after: float) -> None:
        self.max_in_flight = max_in_flight
        self.max_streams = max_streams
        self.retry_after = retry_after
        self.in_flight = 0
        self.streams = 0
        self.refused = 0

    def _refuse(self, what: str, limit: int) -> ResourceExhaustedError:
        self.refused += 1
        return ResourceExhaustedError(
            f"server busy: {limit} {what} already in progress; retry after "
            f"{self.retry_after * 1000:.0f} ms",
            retry_after=self.retry_after,
            reason="SERVER_OVERLOADED",
        )

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        if method.startswith(EXEMPT_PREFIXES):
            return behavior

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if self.in_flight >= self.max_in_flight:
                raise self._refuse("calls", self.max_in_flight)
            self.in_flight += 1
            try:
                return await behavior(request, context)
            finally:
                self.in_flight -= 1

        return wrapped

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        if method.startswith(EXEMPT_PREFIXES):
            return behavior

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if self.streams >= self.max_streams:
                raise self._refuse("streams", self.max_streams)
            if self.in_flight >= self.max_in_flight:
                raise self._refuse("calls", self.max_in_flight)
            self.in_flight += 1
            self.streams += 1
            try:
                async for item in behavior(request, context):
                    yield item
            finally:
                self.in_flight -= 1
                self.streams -= 1

        return wrapped
