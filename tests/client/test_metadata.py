"""Outgoing metadata: request id, trace context, default and per-call metadata."""

from __future__ import annotations

import re

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from plansmith import ResourceNotFoundError, bind_request_id


async def test_request_id_from_the_context_or_generated(client, faults):
    with bind_request_id("req-from-caller"):
        try:
            await client.get_plan("pln_missing")
        except ResourceNotFoundError as err:
            assert err.request_id == "req-from-caller"
    await client.create_plan("P")
    sent = [m["x-request-id"] for m in faults.metadata["GetPlan"] + faults.metadata["CreatePlan"]]
    assert sent[0] == "req-from-caller"
    assert re.fullmatch(r"[0-9a-f]{32}", sent[1])


async def test_traceparent_follows_the_current_span(client, faults):
    span = NonRecordingSpan(
        SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0x00F067AA0BA902B7,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        await client.create_plan("Traced")
    finally:
        otel_context.detach(token)
    await client.create_plan("Untraced")
    traced, untraced = faults.metadata["CreatePlan"]
    assert traced["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
    assert "traceparent" not in untraced


async def test_default_metadata_merged_with_the_calls(connect, faults):
    client = connect(metadata=[("x-team", "core"), ("x-env", "test")])
    await client.create_plan("P", call_metadata=[("x-env", "override"), ("x-extra", "1")])
    md = faults.metadata["CreatePlan"][0]
    assert (md["x-team"], md["x-env"], md["x-extra"]) == ("core", "override", "1")
