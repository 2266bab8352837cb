"""OpsService: the status report (uptime, per-method statistics, database, streams)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any

import grpc

from plansmith.v1 import ops_service_pb2 as pb
from plansmith_server.api.convert import timestamp
from plansmith_server.backends import BackendState
from plansmith_server.errors import FieldViolation, InvalidArgumentError
from plansmith_server.lru import LruCache
from plansmith_server.storage.postgres import PostgresStore
from plansmith_server.storage.sqlite import SqliteStore
from plansmith_server.telemetry import Telemetry

MAX_WINDOW = 3600
DEFAULT_WINDOW = 300


def server_version() -> str:
    try:
        return metadata.version("plansmith-server")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


class OpsServicer:
    """The `plansmith.v1.OpsService` implementation."""

    def __init__(
        self,
        telemetry: Telemetry,
        store: SqliteStore | PostgresStore,
        caches: Mapping[str, LruCache[Any, Any] | None] | None = None,
        backends: Callable[[], Sequence[BackendState]] | None = None,
    ) -> None:
        self.backends = backends or (lambda: ())
        self.telemetry = telemetry
        self.store = store
        self.caches = dict(caches or {})
        self.start_wall_us = time.time_ns() // 1000
        self.version = server_version()

    async def GetServiceStatus(
        self, request: pb.GetServiceStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetServiceStatusResponse:
        if request.window_seconds < 0 or request.window_seconds > MAX_WINDOW:
            raise InvalidArgumentError(
                [FieldViolation("window_seconds", f"must be between 0 and {MAX_WINDOW}")]
            )
        window = request.window_seconds or DEFAULT_WINDOW
        stats = self.telemetry.stats
        db = pb.DatabaseStatus(path=self.store.path, size_bytes=self.store.size_bytes())
        start = time.perf_counter()
        try:
            await self.store.ping()
            db.healthy = True
        except Exception as exc:  # the report says what is wrong instead of failing
            db.error = str(exc)
        db.probe_latency_ms = (time.perf_counter() - start) * 1000
        return pb.GetServiceStatusResponse(
            version=self.version,
            start_time=timestamp(self.start_wall_us),
            uptime_seconds=stats.clock() - stats.started,
            window_seconds=window,
            methods=[
                pb.MethodStats(
                    method=m.method,
                    total_calls=m.total_calls,
                    total_errors=m.total_errors,
                    window_calls=m.window_calls,
                    error_rate=m.error_rate,
                    p50_ms=m.p50_ms,
                    p95_ms=m.p95_ms,
                    p99_ms=m.p99_ms,
                    calls_per_second=m.calls_per_second,
                    codes=m.codes,
                    total_codes=m.total_codes,
                )
                for m in stats.summary(window)
            ],
            database=db,
            active_streams=stats.active_streams,
            calls_in_flight=stats.in_flight,
            caches=[
                pb.CacheStats(
                    name=name,
                    entries=len(cache),
                    capacity=cache.maxsize,
                    size=cache.size,
                    hits=cache.hits,
                    misses=cache.misses,
                )
                for name, cache in self.caches.items()
                if cache is not None
            ],
            backends=[
                pb.BackendStatus(
                    name=b.name,
                    kind=b.kind,
                    model=b.model,
                    breaker_state=_BREAKER.get(b.breaker, pb.BREAKER_STATE_UNSPECIFIED),
                    calls=b.calls,
                    failures=b.failures,
                    fallbacks=b.fallbacks,
                    p50_ms=b.p50_ms,
                    p95_ms=b.p95_ms,
                    p99_ms=b.p99_ms,
                    last_error=b.last_error,
                    open_seconds_left=b.open_seconds_left,
                )
                for b in self.backends()
            ],
        )


_BREAKER = {
    "closed": pb.BREAKER_STATE_CLOSED,
    "open": pb.BREAKER_STATE_OPEN,
    "half-open": pb.BREAKER_STATE_HALF_OPEN,
}
