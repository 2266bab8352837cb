"""Health follows the database: NOT_SERVING while it cannot be reached, SERVING again after."""

from __future__ import annotations

import os

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plansmith_server.app import start
from plansmith_server.config import Config
from tests.conftest import wait_for

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_health_overall_and_per_service(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", "plansmith.v1.PlanService"):
        r = await stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert r.status == SERVING
    try:
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    except grpc.aio.AioRpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND
    else:
        raise AssertionError("unknown service should be NOT_FOUND")


@pytest.mark.sqlite_only
async def test_health_flips_when_the_database_goes_away_and_comes_back(db_path):
    running = await start(Config(listen="127.0.0.1:0", db_path=db_path, health_probe_seconds=0.05))
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)

            async def status_is(want: int) -> bool:
                r = await stub.Check(health_pb2.HealthCheckRequest(service=""))
                return r.status == want

            await wait_for(lambda: status_is(SERVING))
            os.rename(db_path, db_path + ".away")
            await wait_for(lambda: status_is(NOT_SERVING))
            os.rename(db_path + ".away", db_path)
            await wait_for(lambda: status_is(SERVING))
    finally:
        await running.stop(grace=0.5)


async def test_stop_turns_health_not_serving_and_refuses_new_calls(db_path):
    running = await start(Config(listen="127.0.0.1:0", db_path=db_path))
    async with grpc.aio.insecure_channel(running.address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        assert (await stub.Check(health_pb2.HealthCheckRequest())).status == SERVING
        await running.stop(grace=0.5)
        try:
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.aio.AioRpcError as e:
            assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        else:
            raise AssertionError("a stopped server answered")


async def test_grpc_health_gets_the_same_interceptor_chain_as_our_services(server, channel):
    """grpc's health service is registered through the chain too: its calls carry a
    request id and are counted, like ours."""
    call = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert (await call).status == SERVING
    assert len(dict(await call.trailing_metadata())["x-request-id"]) == 32
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
    assert (await watch.read()).status == SERVING  # a context.write stream, wrapped as unary
    watch.cancel()
    counted = {s.method: dict(s.codes) for s in server.telemetry.stats.summary(3600)}
    assert counted["/grpc.health.v1.Health/Check"] == {"OK": 1}


@pytest.mark.sqlite_only
async def test_health_turns_not_serving_while_another_process_holds_the_write_lock(
    db_path, monkeypatch
):
    """Reads go on while another connection holds the write lock, but every write waits,
    then fails UNAVAILABLE: health says NOT_SERVING once writes have been kept from the
    lock for the window, and SERVING again when a write gets it (here: the one waiting)
    or, with no write left waiting, when the probe finds it free."""
    import asyncio
    import sqlite3

    from plansmith.v1 import plan_pb2, plan_service_pb2_grpc
    from plansmith.v1 import plan_service_pb2 as pb
    from plansmith_server.storage import sqlite as sqlite_store

    running = await start(
        Config(
            listen="127.0.0.1:0",
            db_path=db_path,
            health_probe_seconds=0.05,
            health_write_lock_seconds=0.5,
        )
    )
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            plans = plan_service_pb2_grpc.PlanServiceStub(ch)

            async def status_is(want: int) -> bool:
                r = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                return r.status == want

            def create(name: str):
                return plans.CreatePlan(
                    pb.CreatePlanRequest(plan=plan_pb2.Plan(name=name)), timeout=10
                )

            await wait_for(lambda: status_is(SERVING))
            # 1. The next successful write turns it back.
            other.execute("BEGIN IMMEDIATE")
            waiting = asyncio.ensure_future(create("waits for the lock"))
            await wait_for(lambda: status_is(NOT_SERVING), within=5)
            assert not waiting.done()
            other.execute("ROLLBACK")
            await waiting
            await wait_for(lambda: status_is(SERVING), within=5)

            # 2. A write that gave up ("database is locked"), no other write: the probe
            # finds the lock free again.
            monkeypatch.setattr(sqlite_store, "_WRITER_BUSY_MS", 300)  # gives up sooner
            other.execute("BEGIN EXCLUSIVE")
            try:
                await create("refused")
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE
                assert "locked" in (e.details() or "")
            else:
                raise AssertionError("a write got a lock another connection holds")
            await wait_for(lambda: status_is(NOT_SERVING), within=5)
            for _ in range(5):  # it stays so while the lock is held
                assert await status_is(NOT_SERVING)
            other.execute("ROLLBACK")
            await wait_for(lambda: status_is(SERVING), within=5)
            listed = await plans.ListPlans(pb.ListPlansRequest())
            assert [p.name for p in listed.plans] == ["waits for the lock"]
    finally:
        other.close()
        await running.stop(grace=0.5)


def test_the_write_lock_window_is_a_flag_with_a_documented_default():
    from plansmith_server import config

    assert config.Config().health_write_lock_seconds == 3.0
    flag = config.load(["--health-write-lock-seconds", "0.5"], env={})
    assert flag.health_write_lock_seconds == 0.5
    env = config.load([], env={"PLANSMITH_HEALTH_WRITE_LOCK_SECONDS": "7"})
    assert env.health_write_lock_seconds == 7
