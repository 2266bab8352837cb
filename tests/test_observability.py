"""Traces, metrics, logs and the status report, with in-memory exporters."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import grpc
import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from plansmith.v1 import (
    agent_pb2,
    ops_service_pb2,
    ops_service_pb2_grpc,
    plan_pb2,
    plan_service_pb2_grpc,
    task_pb2,
)
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import start
from plansmith_server.config import Config
from plansmith_server.telemetry import Telemetry
from tests.conftest import wait_for

BIN = Path(sys.executable).parent


class Observed:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.telemetry = Telemetry.from_providers(self.tracer_provider, self.meter_provider)

    def finished(self, name: str | None = None):
        spans = self.spans.get_finished_spans()
        return [s for s in spans if name is None or s.name == name]

    def points(self, metric: str):
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        out += list(m.data.data_points)
        return out


@pytest.fixture
async def observed(db_path):
    obs = Observed()
    running = await start(
        Config(listen="127.0.0.1:0", db_path=db_path, access_log="all"), telemetry=obs.telemetry
    )
    obs.running = running
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            obs.plans = plan_service_pb2_grpc.PlanServiceStub(ch)
            obs.ops = ops_service_pb2_grpc.OpsServiceStub(ch)
            yield obs
    finally:
        await running.stop(grace=0.5)


def traced_metadata(obs: Observed):
    """Starts a client span and returns it with metadata carrying its traceparent."""
    tracer = obs.tracer_provider.get_tracer("test-client")
    span = tracer.start_span("client-call", kind=trace.SpanKind.CLIENT)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return span, tuple(carrier.items())


async def test_server_span_continues_the_callers_trace(observed):
    span, md = traced_metadata(observed)
    with trace.use_span(span, end_on_exit=True):
        await observed.plans.CreatePlan(
            pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")), metadata=md
        )
    server = observed.finished("plansmith.v1.PlanService/CreatePlan")[0]
    assert server.context.trace_id == span.get_span_context().trace_id
    assert server.parent.span_id == span.get_span_context().span_id
    assert server.kind == trace.SpanKind.SERVER
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.service"] == "plansmith.v1.PlanService"
    assert server.attributes["rpc.method"] == "CreatePlan"
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert len(server.attributes["plansmith.request_id"]) == 32
    db = [
        s
        for s in observed.finished("db.write")
        if s.parent and s.parent.span_id == server.context.span_id
    ]
    assert db and db[0].attributes["db.system"] == "sqlite"


async def test_error_calls_carry_the_error_status(observed):
    with pytest.raises(grpc.aio.AioRpcError):
        await observed.plans.GetPlan(pb.GetPlanRequest(plan_id="pln_x"))

    async def ended() -> bool:
        return bool(observed.finished("plansmith.v1.PlanService/GetPlan"))

    # `context.abort` sends the status, then raises: the span may end just after.
    await wait_for(ended)
    span = observed.finished("plansmith.v1.PlanService/GetPlan")[0]
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.status.description.startswith("NOT_FOUND")
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert span.attributes["plansmith.plan_id"] == "pln_x"


async def test_duration_histogram_counts_calls_by_method_and_code(observed):
    plan = (
        await observed.plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))
    ).plan
    for _ in range(3):
        await observed.plans.GetPlan(pb.GetPlanRequest(plan_id=plan.id))
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await observed.plans.GetPlan(pb.GetPlanRequest(plan_id="nope"))

    def counts() -> dict[tuple[str, int], int]:
        return {
            (p.attributes["rpc.method"], p.attributes["rpc.grpc.status_code"]): p.count
            for p in observed.points("rpc.server.duration")
        }

    async def both_errors_counted() -> bool:
        return counts().get(("GetPlan", grpc.StatusCode.NOT_FOUND.value[0])) == 2

    # `context.abort` sends the status, then raises: the last call is counted just after.
    await wait_for(both_errors_counted)
    got = counts()
    assert got[("CreatePlan", 0)] == 1
    assert got[("GetPlan", 0)] == 3
    assert got[("GetPlan", grpc.StatusCode.NOT_FOUND.value[0])] == 2
    db = {
        p.attributes["db.operation"]: p.count
        for p in observed.points("plansmith.db.transaction.duration")
    }
    assert db["write"] >= 1  # CreatePlan's transaction (GetPlan is a single statement)


async def test_status_report_matches_a_known_sequence_of_calls(observed):
    plan = (
        await observed.plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))
    ).plan
    for i in range(4):
        await observed.plans.CreateTask(
            pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title=f"t{i}"))
        )
    with pytest.raises(grpc.aio.AioRpcError):
        await observed.plans.CreateTask(pb.CreateTaskRequest(plan_id=plan.id))
    status = await observed.ops.GetServiceStatus(ops_service_pb2.GetServiceStatusRequest())
    by_method = {m.method: m for m in status.methods}
    ct = by_method["/plansmith.v1.PlanService/CreateTask"]
    assert (ct.total_calls, ct.total_errors, ct.window_calls) == (5, 1, 5)
    assert ct.error_rate == pytest.approx(0.2)
    assert dict(ct.codes) == {"OK": 4, "INVALID_ARGUMENT": 1}
    assert dict(ct.total_codes) == {"OK": 4, "INVALID_ARGUMENT": 1}
    assert 0 < ct.p50_ms <= ct.p95_ms <= ct.p99_ms
    assert ct.calls_per_second > 0
    assert by_method["/plansmith.v1.PlanService/CreatePlan"].total_calls == 1
    assert status.database.healthy and status.database.size_bytes > 0
    assert status.calls_in_flight == 1  # this very call
    assert status.uptime_seconds > 0 and status.version
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await observed.ops.GetServiceStatus(
            ops_service_pb2.GetServiceStatusRequest(window_seconds=-5)
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_json_logs_carry_trace_and_request_ids(observed, caplog):
    from plansmith_server.logs import JsonFormatter

    span, md = traced_metadata(observed)
    with caplog.at_level(logging.INFO, logger="plansmith.access"):
        with trace.use_span(span, end_on_exit=True):
            await observed.plans.ListPlans(
                pb.ListPlansRequest(), metadata=(*md, ("x-request-id", "req-77"))
            )
    records = [r for r in caplog.records if getattr(r, "request_id", "") == "req-77"]
    assert records
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(
        observed.finished("plansmith.v1.PlanService/ListPlans")[0].context.span_id, "016x"
    )
    assert line["status_code"] == "OK" and line["rpc_method"].endswith("/ListPlans")
    assert "duration_ms" in line and line["peer"].startswith("ipv4:127.0.0.1:")
    with caplog.at_level(logging.DEBUG):
        await observed.plans.CreatePlan(
            pb.CreatePlanRequest(
                plan=plan_pb2.Plan(name="P", description="s3cr3t-payload"), request_id="r-1"
            ),
            metadata=(("authorization", "Bearer tok3n"),),
        )
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "s3cr3t-payload" not in everything and "tok3n" not in everything


async def test_grpcurl_with_a_handwritten_traceparent_continues_that_trace(observed):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = "00f067aa0ba902b7"
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "grpcurl"),
        "-plaintext",
        "-H",
        f"traceparent: 00-{trace_id}-{parent}-01",
        "-d",
        "{}",
        observed.running.address,
        "plansmith.v1.PlanService/ListPlans",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    span = observed.finished("plansmith.v1.PlanService/ListPlans")[0]
    assert format(span.context.trace_id, "032x") == trace_id
    assert format(span.parent.span_id, "016x") == parent


async def test_status_command_prints_a_readable_report(observed):
    await observed.plans.ListPlans(pb.ListPlansRequest())
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "plansmith-server"),
        "status",
        "--target",
        observed.running.address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    text = out.decode()
    assert "Database: healthy" in text
    assert "/plansmith.v1.PlanService/ListPlans" in text
    assert "Caches:" in text and "task_pages" in text
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "plansmith-server"),
        "status",
        "--target",
        "127.0.0.1:1",
        "--timeout",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"UNAVAILABLE" in err


async def test_telemetry_off_makes_no_spans_and_still_reports_status(server, channel):
    assert not server.telemetry.tracing_enabled
    ops = ops_service_pb2_grpc.OpsServiceStub(channel)
    status = await ops.GetServiceStatus(ops_service_pb2.GetServiceStatusRequest())
    assert status.calls_in_flight == 1


CLIENT_SCRIPT = """
import asyncio, json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from plansmith import AsyncPlansmithClient, PlansmithClient

spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)

async def main():
    async with AsyncPlansmithClient.connect(sys.argv[1]) as client:
        await client.create_plan(name="traced")
        events = [e async for e in client.stream_generate_plan(
            name="Website", description="Build a marketing website with a blog",
            requirements=["Blog"])]
    with PlansmithClient.connect(sys.argv[1]) as client:
        client.get_plans()
    await asyncio.sleep(0.1)  # let the span-ending tasks run

asyncio.run(main())
print(json.dumps([
    {"name": s.name, "trace_id": format(s.context.trace_id, "032x"),
     "span_id": format(s.context.span_id, "016x"), "kind": s.kind.name,
     "code": s.attributes.get("rpc.grpc.status_code")}
    for s in spans.get_finished_spans()]))
"""


async def test_python_client_spans_are_the_parents_of_the_server_spans(observed, tmp_path):
    script = tmp_path / "client.py"
    script.write_text(CLIENT_SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        observed.running.address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    client_spans = {s["name"]: s for s in json.loads(out.decode().strip().splitlines()[-1])}
    for name in (
        "plansmith.v1.PlanService/CreatePlan",
        "plansmith.v1.PlanningService/StreamGeneratePlan",
        "plansmith.v1.PlanService/ListPlans",
    ):
        client = client_spans[name]
        assert client["kind"] == "CLIENT" and client["code"] == 0
        server = observed.finished(name)[0]
        assert format(server.context.trace_id, "032x") == client["trace_id"]
        assert format(server.parent.span_id, "016x") == client["span_id"]


async def test_a_streaming_call_is_traced_from_first_to_last_message(observed):
    from plansmith.v1 import generation_pb2, planning_service_pb2, planning_service_pb2_grpc

    span, md = traced_metadata(observed)
    async with grpc.aio.insecure_channel(observed.running.address) as ch:
        stub = planning_service_pb2_grpc.PlanningServiceStub(ch)
        brief = generation_pb2.PlanBrief(
            name="Website", description="Build a marketing website", requirements=["Blog"]
        )
        with trace.use_span(span, end_on_exit=True):
            events = [
                e
                async for e in stub.StreamGeneratePlan(
                    planning_service_pb2.StreamGeneratePlanRequest(brief=brief), metadata=md
                )
            ]
    server = observed.finished("plansmith.v1.PlanningService/StreamGeneratePlan")[0]
    assert server.attributes["rpc.plansmith.messages_sent"] == len(events)
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert server.parent.span_id == span.get_span_context().span_id
    phases = [
        s
        for s in observed.finished()
        if s.name.startswith("planning.")
        and s.parent
        and s.parent.span_id == server.context.span_id
    ]
    assert [s.name for s in phases] == [
        "planning.analyzing",
        "planning.decomposing",
        "planning.assigning",
        "planning.scheduling",
        "planning.assessing",
    ]
    assert all(server.start_time <= s.start_time and s.end_time <= server.end_time for s in phases)


async def test_generate_plan_shows_nested_database_and_planning_spans(observed):
    from plansmith.v1 import generation_pb2, planning_service_pb2, planning_service_pb2_grpc

    async with grpc.aio.insecure_channel(observed.running.address) as ch:
        stub = planning_service_pb2_grpc.PlanningServiceStub(ch)
        brief = generation_pb2.PlanBrief(
            name="Website", description="Build a marketing website", requirements=["Blog"]
        )
        await stub.GeneratePlan(
            planning_service_pb2.GeneratePlanRequest(brief=brief, persist=True, request_id="g")
        )
    server = observed.finished("plansmith.v1.PlanningService/GeneratePlan")[0]
    children = {
        s.name
        for s in observed.finished()
        if s.parent and s.parent.span_id == server.context.span_id
    }
    assert {"planning.analyzing", "planning.assessing", "db.write"} <= children


async def test_bulk_reads_have_a_database_span_and_key_reads_do_not(observed):
    """A whole-plan read runs on the reader thread and shows as `db.read`; a key lookup runs
    on the event loop in microseconds, and a span would cost more than the lookup."""
    from plansmith.v1 import planning_service_pb2, planning_service_pb2_grpc

    plan = (
        await observed.plans.CreatePlan(
            pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P", agents=[agent_pb2.Agent(id="a")]))
        )
    ).plan
    await observed.plans.CreateTask(
        pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="t", estimated_hours=2))
    )
    await observed.plans.GetPlan(pb.GetPlanRequest(plan_id=plan.id))
    async with grpc.aio.insecure_channel(observed.running.address) as ch:
        stub = planning_service_pb2_grpc.PlanningServiceStub(ch)
        await stub.AnalyzePlan(planning_service_pb2.AnalyzePlanRequest(plan_id=plan.id))

    def children(name: str) -> set[str]:
        server = observed.finished(name)[0]
        return {
            s.name
            for s in observed.finished()
            if s.parent and s.parent.span_id == server.context.span_id
        }

    assert "db.read" in children("plansmith.v1.PlanningService/AnalyzePlan")
    assert "db.read" not in children("plansmith.v1.PlanService/GetPlan")


async def test_grpcs_error_for_a_stream_write_after_the_caller_left_stays_at_debug(server, caplog):
    """grpc logs `ExecuteBatchError raised in core by servicer method` at ERROR, with a
    traceback, when a stream message races the caller's cancellation; the server keeps
    that at DEBUG (the call itself is recorded CANCELLED). Other grpc errors still show."""
    grpc_log = logging.getLogger("grpc._cython.cygrpc")
    with caplog.at_level(logging.INFO):
        grpc_log.error(
            "ExecuteBatchError raised in core by servicer method [%s]",
            "/plansmith.v1.PlanningService/StreamGeneratePlan",
        )
        grpc_log.error("Unexpected [ValueError] raised by servicer method [/x/Y]")
    assert [r.getMessage() for r in caplog.records] == [
        "Unexpected [ValueError] raised by servicer method [/x/Y]"
    ]
    with caplog.at_level(logging.DEBUG, logger="grpc._cython.cygrpc"):
        caplog.clear()
        grpc_log.error("ExecuteBatchError raised in core by servicer method [%s]", "/a/B")
    assert [(r.levelname, r.getMessage()[:19]) for r in caplog.records] == [
        ("DEBUG", "ExecuteBatchError r")
    ]
