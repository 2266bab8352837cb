"""The server on PostgreSQL while PostgreSQL comes and goes: up and NOT_SERVING without
it (at start-up too), SERVING again when it is back, without a restart; calls meanwhile
get UNAVAILABLE with RetryInfo, never INTERNAL; the password never shows."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from plansmith.v1 import ops_service_pb2, ops_service_pb2_grpc, plan_pb2, plan_service_pb2_grpc
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import start
from plansmith_server.config import Config
from plansmith_server.telemetry import Telemetry
from tests.conftest import details_of, wait_for

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
PASSWORD = "Hunter2-not-for-logs"


async def _status(channel: grpc.aio.Channel) -> int:
    r = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    return int(r.status)


async def _unavailable_with_retry_info(call) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
        assert "RetryInfo" in details_of(e)
        return f"{e.details()} {details_of(e)}"
    raise AssertionError("the call succeeded without the database")


async def test_unreachable_at_start_up_then_serving_once_it_comes(own_postgres, caplog):
    """Started before PostgreSQL: the server is up and NOT_SERVING, calls get
    UNAVAILABLE with RetryInfo; PostgreSQL starts and the server serves, without a
    restart. Nothing it logs, traces or answers holds the DSN's password."""
    caplog.set_level(logging.DEBUG)
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry.from_providers(tracer_provider, None)
    telemetry.tracing_enabled = True
    dsn = own_postgres.dsn().replace("postgres@", f"postgres:{PASSWORD}@")
    running = await start(
        Config(listen="127.0.0.1:0", db_path=dsn, health_probe_seconds=0.1, grace_seconds=1),
        telemetry=telemetry,
    )
    seen: list[str] = []
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            plans = plan_service_pb2_grpc.PlanServiceStub(ch)
            ops = ops_service_pb2_grpc.OpsServiceStub(ch)
            assert await _status(ch) == NOT_SERVING
            seen.append(
                await _unavailable_with_retry_info(
                    plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="early")))
                )
            )
            seen.append(await _unavailable_with_retry_info(plans.ListPlans(pb.ListPlansRequest())))
            report = await ops.GetServiceStatus(ops_service_pb2.GetServiceStatusRequest())
            seen.append(str(report))
            assert "postgres:***@" in report.database.path

            own_postgres.start()
            await wait_for(lambda: _is(ch, SERVING), within=15)
            created = await plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))
            assert created.plan.revision == 1
    finally:
        await running.stop(grace=0.2)
    seen.append(caplog.text)
    for span in spans.get_finished_spans():
        seen.append(str(span.to_json()))
    assert "postgres:***@" in caplog.text  # the DSN is logged, redacted
    assert PASSWORD not in "\n".join(seen)


async def _is(channel: grpc.aio.Channel, want: int) -> bool:
    return await _status(channel) == want


async def test_postgresql_restarted_health_flips_and_nothing_acknowledged_is_lost(
    own_postgres, replica
):
    own_postgres.start()
    dsn = own_postgres.create_database()
    async with replica(dsn, health_probe_seconds=0.1) as running:
        async with grpc.aio.insecure_channel(running.address) as ch:
            plans = plan_service_pb2_grpc.PlanServiceStub(ch)
            await wait_for(lambda: _is(ch, SERVING))
            plan = (await plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan

            own_postgres.stop()
            await wait_for(lambda: _is(ch, NOT_SERVING), within=10)
            for _ in range(3):  # pooled connections died: every call says so, none INTERNAL
                await _unavailable_with_retry_info(
                    plans.GetPlan(pb.GetPlanRequest(plan_id=plan.id))
                )
                await _unavailable_with_retry_info(
                    plans.UpdatePlan(
                        pb.UpdatePlanRequest(
                            plan=plan_pb2.Plan(id=plan.id, name="while down"),
                            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
                        )
                    )
                )

            own_postgres.start()
            await wait_for(lambda: _is(ch, SERVING), within=15)
            got = (await plans.GetPlan(pb.GetPlanRequest(plan_id=plan.id))).plan
            assert got.name == "P" and got.revision == 1  # the refused update changed nothing
            renamed = await plans.UpdatePlan(
                pb.UpdatePlanRequest(
                    plan=plan_pb2.Plan(id=plan.id, name="after"),
                    update_mask=field_mask_pb2.FieldMask(paths=["name"]),
                )
            )
            assert renamed.plan.name == "after"


async def test_a_killed_postgresql_is_noticed_and_survived(own_postgres, replica):
    """SIGKILL (crash recovery at the next start) instead of a clean stop: every write
    acknowledged before it is there after."""
    own_postgres.start()
    dsn = own_postgres.create_database()
    async with replica(dsn, health_probe_seconds=0.1) as running:
        async with grpc.aio.insecure_channel(running.address) as ch:
            plans = plan_service_pb2_grpc.PlanServiceStub(ch)
            acked = []
            for i in range(20):
                acked.append(
                    (
                        await plans.CreatePlan(
                            pb.CreatePlanRequest(plan=plan_pb2.Plan(name=f"p{i}"))
                        )
                    ).plan.id
                )
            own_postgres.kill()
            await wait_for(lambda: _is(ch, NOT_SERVING), within=10)
            await _unavailable_with_retry_info(plans.ListPlans(pb.ListPlansRequest()))
            own_postgres.start()
            await wait_for(lambda: _is(ch, SERVING), within=15)
            listed = await plans.ListPlans(pb.ListPlansRequest(page_size=100))
            assert sorted(p.id for p in listed.plans) == sorted(acked)
