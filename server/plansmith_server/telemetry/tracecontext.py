"""W3C trace context for calls when no spans are recorded (no trace exporter configured).

Each call still belongs to a trace: the caller's (its `traceparent` header: the same trace
id, flags and `tracestate`, with a span id of the call's own, as a server span would
have) or a new one. `ContinuedSpan` is the OpenTelemetry API's non-recording span for
that context, so logs and anything that propagates the current context see it.

Its ids are made when first asked for (the access log line asks; at WARNING nothing
may): reading the headers and drawing ids is most of the cost, so a call whose trace
context nobody asks for pays only for one small object and a context switch.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags, TraceState

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# version-trace_id-parent_id-flags, lowercase hex; a later version may append fields.
_TRACEPARENT = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^ \t]*)?[ \t]*"
)
_MAX_TRACEPARENT = 512


def new_id(bits: int) -> int:
    """A random non-zero id, drawn as the OpenTelemetry SDK's id generator draws them."""
    while True:
        value = random.getrandbits(bits)
        if value:
            return value


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """(trace id, parent span id, flags) of a valid `traceparent`, else None (W3C Trace
    Context level 1: version ff and all-zero ids are invalid; version 00 has no more
    fields)."""
    if len(value) > _MAX_TRACEPARENT:
        return None
    m = _TRACEPARENT.fullmatch(value)
    if m is None:
        return None
    version, trace_id, parent_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    tid, pid = int(trace_id, 16), int(parent_id, 16)
    if not tid or not pid:
        return None
    return tid, pid, int(flags, 16)


def continue_trace(traceparent: str | None, tracestate: str | None) -> SpanContext:
    """The span context of a call: continuing `traceparent` when it is valid, else a new
    trace (not sampled: nothing here records it)."""
    parent = parse_traceparent(traceparent) if traceparent else None
    if parent is None:
        return SpanContext(new_id(128), new_id(64), is_remote=False)
    trace_id, _parent_span, flags = parent
    state = TraceState.from_header([tracestate]) if tracestate else None
    return SpanContext(
        trace_id, new_id(64), is_remote=False, trace_flags=TraceFlags(flags), trace_state=state
    )


def _headers(metadata: Iterable[tuple[str, str | bytes]]) -> tuple[str | None, str | None]:
    traceparent = tracestate = None
    for key, value in metadata:
        if key == TRACEPARENT and isinstance(value, str):
            traceparent = value
        elif key == TRACESTATE and isinstance(value, str):
            tracestate = value
    return traceparent, tracestate


class ContinuedSpan(trace.NonRecordingSpan):
    """A call's non-recording span; its context is built on first use from the call's
    metadata (gRPC's invocation metadata: lowercase keys)."""

    def __init__(self, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        # No SpanContext yet: get_span_context builds it on first use.
        super().__init__(None)  # type: ignore[arg-type]
        self._metadata = metadata

    def get_span_context(self) -> SpanContext:
        ctx = self._context
        if ctx is None:
            ctx = self._context = continue_trace(*_headers(self._metadata))
            self._metadata = ()
        return ctx

    def __repr__(self) -> str:
        return f"ContinuedSpan({self.get_span_context()!r})"
