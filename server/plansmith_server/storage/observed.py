"""A store transaction as telemetry: a child span (when tracing is on) and a duration
sample, the same for every store but for the `db.system` it names."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from opentelemetry import trace

from plansmith_server.telemetry import Telemetry

DB_ATTRIBUTES = {op: {"db.operation": op} for op in ("read", "write")}
"""The duration histogram's attributes per operation (built once: recorded per call)."""


@contextlib.contextmanager
def observed(telemetry: Telemetry, system: str, operation: str) -> Iterator[None]:
    start = time.perf_counter()
    span = (
        telemetry.tracer.start_as_current_span(
            f"db.{operation}",
            kind=trace.SpanKind.CLIENT,
            attributes={"db.system": system, "db.operation": operation},
        )
        if telemetry.tracing_enabled
        else contextlib.nullcontext()
    )
    with span:
        try:
            yield
        finally:
            telemetry.db_duration.record(
                (time.perf_counter() - start) * 1000, DB_ATTRIBUTES[operation]
            )
