"""The server on PostgreSQL while PostgreSQL comes and goes: up and NOT_SERVING without
it (at start-up too), SERVING again when it is back, without a restart; calls meanwhile
get UNAVAILABLE with RetryInfo, never INTERNAL; the password never shows."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import psycopg
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from plansmith.v1 import ops_service_pb2, ops_service_pb2_grpc, plan_pb2, plan_service_pb2_grpc
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import start
from plansmith_server.config import Config
from plansmith_server.domain.models import ChangeRecord, Plan
from plansmith_server.domain.mutations import now_us
from plansmith_server.errors import UnavailableError
from plansmith_server.storage import dsn as dsn_mod
from plansmith_server.storage.postgres import PostgresStore
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


async def test_commits_are_heard_across_replicas_in_order_across_a_restart(own_postgres):
    """Replica B hears replica A's commits in order; PostgreSQL restarts (B's listening
    connection dies with it); A commits again as soon as it is back, possibly before B
    listens again: B still hears up to A's last revision (the change log backstops)."""
    own_postgres.start()
    dsn = dsn_mod.parse(own_postgres.create_database())
    a, b = PostgresStore(dsn), PostgresStore(dsn)
    await a.open(wait=True)
    await b.open(wait=True)
    heard: list[tuple[str, int]] = []
    b.subscribe_commits(heard.extend)

    def change(tx):
        revision = tx.bump_revision("pln_w", 1)
        tx.append_changes(
            "pln_w", revision, [ChangeRecord("PLAN_UPDATED", "plan", "pln_w", {})], now_us()
        )
        return revision

    try:
        await a.write(
            lambda tx: tx.insert_plan(Plan(id="pln_w", project_id="", name="w", revision=1))
        )
        await asyncio.sleep(0.3)  # B listens
        for _ in range(5):
            last = await a.write(change)
        await wait_for(lambda: _heard_up_to(heard, last), within=10)

        own_postgres.stop()
        own_postgres.start()
        for _ in range(20):  # the first calls may meet connections that died: retried
            try:
                last = await a.write(change)
            except UnavailableError:
                await asyncio.sleep(0.1)
        await wait_for(lambda: _heard_up_to(heard, last), within=20)
        revisions = [r for p, r in heard if p == "pln_w"]
        assert revisions == sorted(revisions)
    finally:
        await a.close()
        await b.close()


async def _heard_up_to(heard: list[tuple[str, int]], revision: int) -> bool:
    return ("pln_w", revision) in heard


async def test_a_commit_whose_notification_was_lost_is_read_from_the_change_log(pg_dsn):
    """A change in the log that no NOTIFY announced (as one lost with a connection that
    died unnoticed): the listener's periodic read of the change log tells of it."""
    store = PostgresStore(dsn_mod.parse(pg_dsn), catch_up_seconds=0.2)
    await store.open(wait=True)
    heard: list[tuple[str, int]] = []
    store.subscribe_commits(heard.extend)
    try:
        with psycopg.connect(pg_dsn) as conn:
            conn.execute(
                "INSERT INTO plan_changes (plan_id, revision, position, kind, entity_type, "
                "entity_id, snapshot, create_time) VALUES ('pln_q', 7, 0, 'PLAN_UPDATED', "
                "'plan', 'pln_q', '{}', %s)",
                (int(time.time() * 1e6),),
            )

        async def told() -> bool:
            return ("pln_q", 7) in heard

        await wait_for(told, within=5)
        await asyncio.sleep(0.5)  # read again and again: told once
        assert heard.count(("pln_q", 7)) == 1
    finally:
        await store.close()


async def test_postgresql_killed_under_load_loses_and_doubles_nothing(own_postgres, replica):
    """Writers keep going (each retrying its request under the same request_id) while
    PostgreSQL is SIGKILLed and started again: every write ends acknowledged, once."""
    own_postgres.start()
    dsn = own_postgres.create_database()
    async with replica(dsn, health_probe_seconds=0.1) as running:
        async with grpc.aio.insecure_channel(running.address) as ch:
            plans = plan_service_pb2_grpc.PlanServiceStub(ch)
            acked: dict[int, str] = {}
            unavailable = 0

            async def writer(w: int) -> None:
                nonlocal unavailable
                for i in range(w * 100, w * 100 + 15):
                    req = pb.CreatePlanRequest(plan=plan_pb2.Plan(name=f"p{i}"), request_id=f"k{i}")
                    async with asyncio.timeout(30):
                        while True:
                            try:
                                acked[i] = (await plans.CreatePlan(req, timeout=5)).plan.id
                                break
                            except grpc.aio.AioRpcError as e:
                                assert e.code() == grpc.StatusCode.UNAVAILABLE, e
                                unavailable += 1
                                await asyncio.sleep(0.05)

            writers = asyncio.gather(*(writer(w) for w in range(4)))

            async def some_acked() -> bool:
                return len(acked) >= 8

            await wait_for(some_acked, within=10)
            own_postgres.kill()
            await wait_for(lambda: _is(ch, NOT_SERVING), within=10)
            own_postgres.start()
            await writers
            assert unavailable > 0  # the outage was met, and ridden out
            listed = await plans.ListPlans(pb.ListPlansRequest(page_size=100))
            assert sorted(p.id for p in listed.plans) == sorted(acked.values())
            assert len(acked) == 60 == len({p.name for p in listed.plans})
