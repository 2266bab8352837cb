"""Overload protection: a bound on calls in flight and on open streams.

Beyond the bound a call is answered RESOURCE_EXHAUSTED with a RetryInfo delay as soon as
the server reaches it, instead of being served after a wait that only grows with the
offered load (which grows latency and memory without bound). Calls in flight are those
in handlers and, when a `CoreCallGauge` is given, those still waiting in gRPC core to
start (see `core_call_gauge.py`: under load most of them wait there). One connection cannot fill
the server alone: `grpc.max_concurrent_streams` (set in app.py) makes its client queue
further calls itself, so the server does not spend its time refusing a client that
refills its streams at once. Health, status and reflection are exempt: an overloaded
server must still say how it is.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_status import rpc_status

from plansmith_server.api.core_call_gauge import CoreCallGauge
from plansmith_server.api.errors import to_status
from plansmith_server.api.handlers import StreamBehavior, UnaryBehavior
from plansmith_server.api.interceptors import Concern, status_trailers
from plansmith_server.errors import ResourceExhaustedError

EXEMPT_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    "/plansmith.v1.OpsService/",
)
OWN_LIMIT = ("/plansmith.v1.PlanService/WatchPlan",)
"""Long-lived streams with a limit of their own (`--max-watches`): not counted against
`max_streams` nor `max_in_flight`, and taken out of the calls the gauge counts in core."""


class LoadSheddingConcern(Concern):
    """Refuses calls beyond `max_in_flight` (unary and streams together) and streams beyond
    `max_streams`, telling the caller to retry after `retry_after` seconds."""

    def __init__(
        self,
        max_in_flight: int,
        max_streams: int,
        retry_after: float,
        gauge: CoreCallGauge | None = None,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.max_streams = max_streams
        self.retry_after = retry_after
        self.gauge = gauge
        self.in_flight = 0
        self.streams = 0
        self.own_limit = 0
        """Open calls of `OWN_LIMIT` methods."""
        self._statuses: dict[tuple[str, int], Any] = {}
        self._random = random.Random(0)

    def _full(self) -> bool:
        if self.in_flight >= self.max_in_flight:
            return True
        if self.gauge is None:
            return False
        # The gauge counts this call too, and exempt calls (cheap, and few).
        beyond = self.gauge.open_calls() - self.own_limit - self.max_in_flight
        if beyond <= 0:
            return False
        # Random early refusal, as gRPC core's own backlog protector does: a share growing
        # from none at the limit to all at twice it. Refusing everything past one
        # threshold lets clients that refill their streams at once (no back-off) pin the
        # backlog above it and get almost nothing served (docs/performance.md).
        return self._random.random() * self.max_in_flight < beyond

    def _refuse(self, context: grpc.aio.ServicerContext, what: str, limit: int) -> None:
        """Answers the call RESOURCE_EXHAUSTED by setting its status, not by raising.

        Refusing has to cost much less than serving, or under overload the server spends
        its time refusing: a refusal raised through the chain costs about as much as a
        write, and then few calls are served (docs/performance.md).
        The status is built once per kind; it goes out in the one batch that ends the
        call, and no exception unwinds through the concerns outside."""
        key = (what, limit)
        status = self._statuses.get(key)
        if status is None:
            status = rpc_status.to_status(
                to_status(
                    ResourceExhaustedError(
                        f"server busy: {limit} {what} already in progress or waiting; "
                        f"retry after {self.retry_after * 1000:.0f} ms",
                        retry_after=self.retry_after,
                        reason="SERVER_OVERLOADED",
                    )
                )
            )
            self._statuses[key] = status
        context.set_code(status.code)
        context.set_details(status.details)
        context.set_trailing_metadata(status_trailers(status))

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        if method.startswith(EXEMPT_PREFIXES):
            return behavior

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if self._full():
                return self._refuse(context, "calls", self.max_in_flight)
            self.in_flight += 1
            try:
                return await behavior(request, context)
            finally:
                self.in_flight -= 1

        return wrapped

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        if method.startswith(EXEMPT_PREFIXES):
            return behavior
        if method in OWN_LIMIT:
            return self._own_limit(behavior)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if self.streams >= self.max_streams:
                self._refuse(context, "streams", self.max_streams)
                return
            if self._full():
                self._refuse(context, "calls", self.max_in_flight)
                return
            self.in_flight += 1
            self.streams += 1
            try:
                async for item in behavior(request, context):
                    yield item
            finally:
                self.in_flight -= 1
                self.streams -= 1

        return wrapped

    def _own_limit(self, behavior: StreamBehavior) -> StreamBehavior:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            self.own_limit += 1
            try:
                async for item in behavior(request, context):
                    yield item
            finally:
                self.own_limit -= 1

        return wrapped
