"""W3C trace context with no trace exporter (the default): every call continues the
caller's `traceparent` or starts a trace, and what runs inside the call sees it."""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
import pytest
from opentelemetry import trace

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import start
from plansmith_server.config import Config
from plansmith_server.logs import JsonFormatter
from plansmith_server.telemetry.tracecontext import parse_traceparent

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"00-{TRACE_ID}-{PARENT}-01", (int(TRACE_ID, 16), int(PARENT, 16), 1)),
        (f" 00-{TRACE_ID}-{PARENT}-00 ", (int(TRACE_ID, 16), int(PARENT, 16), 0)),
        (f"01-{TRACE_ID}-{PARENT}-01-future", (int(TRACE_ID, 16), int(PARENT, 16), 1)),
        (f"00-{TRACE_ID}-{PARENT}-01-extra", None),  # version 00 has four fields
        (f"ff-{TRACE_ID}-{PARENT}-01", None),  # version ff is invalid
        (f"00-{'0' * 32}-{PARENT}-01", None),
        (f"00-{TRACE_ID}-{'0' * 16}-01", None),
        (f"00-{TRACE_ID.upper()}-{PARENT}-01", None),
        (f"00-{TRACE_ID[:-1]}-{PARENT}-01", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_traceparent_parsing_follows_w3c(value, expected):
    assert parse_traceparent(value) == expected


class SeeTraceContext(grpc.aio.ServerInterceptor):
    """Records the current span context inside each call and logs a line from there."""

    def __init__(self) -> None:
        self.seen: list[trace.SpanContext] = []

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def seeing(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self.seen.append(trace.get_current_span().get_span_context())
            logging.getLogger("plansmith.test").warning("inside the call")
            return await inner(request, context)

        return handler._replace(unary_unary=seeing)


class JsonLines(logging.Handler):
    """Formats each record as it is emitted, as the server's stream handler does."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_calls_continue_the_callers_trace_context_without_an_exporter(db_path):
    see = SeeTraceContext()
    out = JsonLines()
    root = logging.getLogger()
    level = root.level
    running = await start(
        Config(listen="127.0.0.1:0", db_path=db_path, access_log="all"), extra_interceptors=[see]
    )
    try:
        assert not running.telemetry.tracing_enabled
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            root.addHandler(out)
            root.setLevel(logging.INFO)
            try:
                await stub.CreatePlan(
                    pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")),
                    metadata=(
                        ("traceparent", f"00-{TRACE_ID}-{PARENT}-01"),
                        ("tracestate", "vendor=abc,other=1"),
                    ),
                )
                await stub.ListPlans(pb.ListPlansRequest())
                await stub.ListPlans(
                    pb.ListPlansRequest(), metadata=(("traceparent", f"ff-{TRACE_ID}-{PARENT}-01"),)
                )
            finally:
                root.removeHandler(out)
                root.setLevel(level)
    finally:
        await running.stop(grace=0.5)

    continued, fresh, invalid = see.seen
    assert format(continued.trace_id, "032x") == TRACE_ID
    assert continued.span_id != int(PARENT, 16) and continued.is_valid
    assert continued.trace_flags.sampled and not continued.is_remote
    assert continued.trace_state.get("vendor") == "abc"
    for ctx in (fresh, invalid):  # a trace of its own, neither sampled nor the caller's
        assert ctx.is_valid and format(ctx.trace_id, "032x") != TRACE_ID
        assert not ctx.trace_flags.sampled
    assert fresh.trace_id != invalid.trace_id

    inside = [line for line in out.lines if line["message"] == "inside the call"]
    access = [line for line in out.lines if line["logger"] == "plansmith.access"]
    assert len(inside) == 3 and len(access) == 3
    for ctx, log_inside, log_access in zip(see.seen, inside, access, strict=True):
        ids = {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
        assert {k: log_inside[k] for k in ids} == ids
        assert {k: log_access[k] for k in ids} == ids
