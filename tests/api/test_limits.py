"""Overload and size limits: refused at once, with a reason and (when retrying helps) a
RetryInfo delay; nothing changes."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plansmith.v1 import (
    generation_pb2,
    ops_service_pb2,
    ops_service_pb2_grpc,
    plan_pb2,
    plan_service_pb2_grpc,
    planning_service_pb2,
    planning_service_pb2_grpc,
    task_pb2,
)
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.api import core_call_gauge
from plansmith_server.app import Running, start
from plansmith_server.config import Config
from tests.api.test_generation import GatedPlanner, brief
from tests.conftest import details_of, wait_for
from tests.planning.scenarios import WEBSITE


class Gate(grpc.aio.ServerInterceptor):
    """Holds GetPlan calls until released (innermost, so they count as in flight)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.waiting = 0

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or not details.method.endswith("/GetPlan"):
            return handler
        inner = handler.unary_unary

        async def held(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self.waiting += 1
            await self.release.wait()
            return await inner(request, context)

        return handler._replace(unary_unary=held)


async def test_calls_beyond_the_limit_are_refused_at_once_with_retry_info(db_path):
    gate = Gate()
    running = await start(
        Config(listen="127.0.0.1:0", db_path=db_path, max_in_flight=2, retry_after_ms=250),
        extra_interceptors=[gate],
    )
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            p = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
            held = [
                asyncio.ensure_future(stub.GetPlan(pb.GetPlanRequest(plan_id=p.id)))
                for _ in range(2)
            ]

            async def both_held() -> bool:
                return gate.waiting == 2

            await wait_for(both_held)
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.ListPlans(pb.ListPlansRequest(), timeout=5)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            d = details_of(e.value)
            assert d["ErrorInfo"].reason == "SERVER_OVERLOADED"
            retry = d["RetryInfo"].retry_delay
            assert retry.seconds * 1000 + retry.nanos // 1_000_000 == 250
            # Health still answers while the server is full.
            h = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
            assert h.status == health_pb2.HealthCheckResponse.SERVING
            gate.release.set()
            assert [r.plan.id for r in await asyncio.gather(*held)] == [p.id, p.id]
            await stub.ListPlans(pb.ListPlansRequest())  # room again
    finally:
        await running.stop(grace=0.5)


async def test_streams_beyond_the_limit_are_refused(db_path):
    gated = GatedPlanner()
    running = await start(
        Config(listen="127.0.0.1:0", db_path=db_path, max_streams=1), planner=gated
    )
    brief = generation_pb2.PlanBrief(
        name="Website", description="Build a marketing website", requirements=["Blog"]
    )
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = planning_service_pb2_grpc.PlanningServiceStub(ch)
            first = stub.StreamGeneratePlan(
                planning_service_pb2.StreamGeneratePlanRequest(brief=brief)
            )
            await first.read()
            await asyncio.wait_for(gated.first_sent.wait(), 10)
            second = stub.StreamGeneratePlan(
                planning_service_pb2.StreamGeneratePlanRequest(brief=brief)
            )
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await second.read()
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "RetryInfo" in details_of(e.value)
            # Unary calls are still served while the stream slot is taken.
            plans = plan_service_pb2_grpc.PlanServiceStub(ch)
            assert (await plans.ListPlans(pb.ListPlansRequest())).total_size == 0
            gated.release.set()
            events = []
            while (event := await first.read()) != grpc.aio.EOF:
                events.append(event)
            assert events[-1].WhichOneof("event") == "completed"
    finally:
        await running.stop(grace=0.5)


async def test_oversized_messages_are_refused(db_path):
    running = await start(
        Config(listen="127.0.0.1:0", db_path=db_path, max_message_bytes=64 * 1024)
    )
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            big = plan_pb2.Plan(name="P", objectives=["x" * 900] * 100)
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.CreatePlan(pb.CreatePlanRequest(plan=big))
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "larger than max" in e.value.details()
            assert (await stub.ListPlans(pb.ListPlansRequest())).total_size == 0
    finally:
        await running.stop(grace=0.5)


async def test_a_plan_cannot_grow_past_its_task_limit(db_path):
    running = await start(Config(listen="127.0.0.1:0", db_path=db_path, max_tasks_per_plan=5))
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            p = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
            await stub.BatchCreateTasks(
                pb.BatchCreateTasksRequest(
                    plan_id=p.id, tasks=[task_pb2.Task(title=f"t{i}") for i in range(4)]
                )
            )
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.BatchCreateTasks(
                    pb.BatchCreateTasksRequest(
                        plan_id=p.id, tasks=[task_pb2.Task(title="a"), task_pb2.Task(title="b")]
                    )
                )
            assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert details_of(e.value)["ErrorInfo"].reason == "PLAN_TASK_LIMIT"
            listed = await stub.ListTasks(pb.ListTasksRequest(plan_id=p.id))
            assert listed.total_size == 4
            await stub.CreateTask(
                pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="fifth"))
            )
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.CreateTask(
                    pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="sixth"))
                )
            assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            # A generated plan larger than the limit is refused the same way, and kept
            # nowhere.
            planning_stub = planning_service_pb2_grpc.PlanningServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await planning_stub.GeneratePlan(
                    planning_service_pb2.GeneratePlanRequest(brief=brief(WEBSITE), persist=True)
                )
            assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            d = details_of(e.value)
            assert d["ErrorInfo"].reason == "PLAN_TASK_LIMIT"
            assert d["ErrorInfo"].metadata["limit"] == "5"
            assert d["PreconditionFailure"].violations[0].type == "PLAN_TASK_LIMIT"
            assert (await stub.ListPlans(pb.ListPlansRequest())).total_size == 1
    finally:
        await running.stop(grace=0.5)


class LoopBlocker(grpc.aio.ServerInterceptor):
    """Blocks the event loop, as CPU-bound work would, inside unary calls that carry
    `x-test-block` metadata, until `release` is set from another thread. Meanwhile gRPC
    core keeps receiving calls (and cancellations) on its own threads."""

    METADATA = (("x-test-block", "1"),)

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def maybe_block(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if self.METADATA[0] in (context.invocation_metadata() or ()):
                self.entered.set()
                self.release.wait(10)
            return await inner(request, context)

        return handler._replace(unary_unary=maybe_block)


async def start_blockable(
    db_path: str, **limits: int
) -> tuple[Running, LoopBlocker, core_call_gauge.CoreCallGauge]:
    """A server whose event loop a call can block, and a gauge (read afresh on every
    call) of the calls gRPC core holds for it."""
    blocker = LoopBlocker()
    before = core_call_gauge.server_ids()
    running = await start(
        Config(listen="127.0.0.1:0", db_path=db_path, **limits),  # type: ignore[arg-type]
        extra_interceptors=[blocker],
    )
    gauge = core_call_gauge.CoreCallGauge.find(before, every=0)
    assert gauge is not None
    return running, blocker, gauge


def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Waits (in a thread) until `predicate()` holds, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


async def _codes(address: str, method: str) -> dict[str, int]:
    async with grpc.aio.insecure_channel(address) as ch:
        status = await ops_service_pb2_grpc.OpsServiceStub(ch).GetServiceStatus(
            ops_service_pb2.GetServiceStatusRequest()
        )
    return next((dict(m.total_codes) for m in status.methods if m.method == method), {})


async def test_calls_waiting_in_grpc_core_count_toward_the_in_flight_limit(db_path):
    """While the loop is busy, calls wait in gRPC core where no handler sees them; they
    count as in flight, so a backlog beyond the limit is refused, not served late."""
    running, blocker, gauge = await start_blockable(db_path, max_in_flight=8)
    assert running.shed.gauge is not None
    # The server samples core's count every 10 ms under load, 100 ms idle; this test's
    # burst comes faster than that, so make the server read it on every admission.
    running.shed.gauge.every = running.shed.gauge.idle_every = 0
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            plan = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan

        def drive() -> list[grpc.RpcError | None]:
            with grpc.insecure_channel(running.address) as sync_ch:
                sync = plan_service_pb2_grpc.PlanServiceStub(sync_ch)
                blocked = sync.GetPlan.future(
                    pb.GetPlanRequest(plan_id=plan.id), metadata=LoopBlocker.METADATA
                )
                assert blocker.entered.wait(10)
                calls = [
                    sync.CreateTask.future(
                        pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title=f"t{i}"))
                    )
                    for i in range(30)
                ]
                until(lambda: gauge.open_calls() >= 31)  # all waiting in core
                blocker.release.set()
                blocked.result(timeout=10)
                return [c.exception(timeout=10) for c in calls]

        outcomes = await asyncio.to_thread(drive)
        refused = [e for e in outcomes if e is not None]
        for e in refused:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
            d = details_of(e)
            assert d["ErrorInfo"].reason == "SERVER_OVERLOADED" and "RetryInfo" in d
        # 31 held, limit 8: all refused while over twice the limit (16), a falling share
        # below that; so at most 16 can have been admitted.
        assert len(refused) >= 14, len(refused)
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            kept = await stub.ListTasks(pb.ListTasksRequest(plan_id=plan.id))
            assert kept.total_size == 30 - len(refused)  # a refused write changes nothing
            await stub.CreateTask(  # the backlog gone, calls are served again
                pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="after"))
            )
    finally:
        blocker.release.set()
        await running.stop(grace=0.5)


async def test_a_call_whose_caller_left_is_recorded_cancelled_not_as_a_fault(db_path, caplog):
    """The caller cancels while the server works; sending the (error) status then fails.
    That is the caller's cancellation: CANCELLED, not UNKNOWN logged as a server fault."""
    running, blocker, gauge = await start_blockable(db_path)
    method = "/plansmith.v1.PlanService/GetPlan"
    try:

        def drive() -> None:
            with grpc.insecure_channel(running.address) as sync_ch:
                sync = plan_service_pb2_grpc.PlanServiceStub(sync_ch)
                call = sync.GetPlan.future(  # NOT_FOUND, once the loop runs again
                    pb.GetPlanRequest(plan_id="no-such-plan"), metadata=LoopBlocker.METADATA
                )
                assert blocker.entered.wait(10)
                call.cancel()
                until(lambda: gauge.open_calls() == 0)  # core has seen the cancellation
                blocker.release.set()

        with caplog.at_level(logging.INFO, logger="plansmith"):
            await asyncio.to_thread(drive)

            async def recorded() -> bool:
                return sum((await _codes(running.address, method)).values()) == 1

            await wait_for(recorded)
        assert await _codes(running.address, method) == {"CANCELLED": 1}
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        blocker.release.set()
        await running.stop(grace=0.5)


async def test_the_backlog_gauge_needs_exactly_one_new_server(caplog):
    """Which channelz entry is ours is told by what appeared while the server was made;
    when that is ambiguous the limit falls back to calls in handlers, and says so."""
    before = core_call_gauge.server_ids()
    with caplog.at_level(logging.WARNING, logger="plansmith.limits"):
        assert core_call_gauge.CoreCallGauge.find(before) is None  # nothing new
        servers = [grpc.aio.server(), grpc.aio.server()]
        try:
            assert len(core_call_gauge.server_ids() - before) == 2
            assert core_call_gauge.CoreCallGauge.find(before) is None  # two new: ambiguous
            first = min(core_call_gauge.server_ids() - before)
            one = core_call_gauge.CoreCallGauge.find(before | {first})
            assert one is not None and one.open_calls() == 0
        finally:
            for s in servers:
                await s.stop(None)
    assert sum("cannot tell" in r.getMessage() for r in caplog.records) == 2


async def test_one_connection_cannot_open_more_calls_than_its_stream_limit(db_path):
    """Past `max_streams_per_connection` the client queues its own calls (HTTP/2
    flow control): the server holds at most that many from the connection."""
    running, blocker, gauge = await start_blockable(db_path, max_streams_per_connection=5)
    try:

        def drive() -> tuple[int, list[grpc.RpcError | None]]:
            with grpc.insecure_channel(running.address) as sync_ch:
                sync = plan_service_pb2_grpc.PlanServiceStub(sync_ch)
                blocked = sync.ListPlans.future(
                    pb.ListPlansRequest(), metadata=LoopBlocker.METADATA
                )
                assert blocker.entered.wait(10)
                calls = [sync.ListPlans.future(pb.ListPlansRequest()) for _ in range(12)]
                until(lambda: gauge.open_calls() >= 5)
                held = gauge.open_calls()
                blocker.release.set()
                blocked.result(timeout=10)
                return held, [c.exception(timeout=10) for c in calls]

        held, outcomes = await asyncio.to_thread(drive)
        assert held == 5  # the blocked call and 4 more; 8 wait in the client
        assert outcomes == [None] * 12  # all served in the end, none refused
    finally:
        blocker.release.set()
        await running.stop(grace=0.5)


async def test_the_gauge_reads_core_often_only_while_the_server_is_busy(db_path):
    gate = Gate()
    before = core_call_gauge.server_ids()
    running = await start(Config(listen="127.0.0.1:0", db_path=db_path), extra_interceptors=[gate])
    gauge = core_call_gauge.CoreCallGauge.find(before, every=0, idle_every=3600, busy_from=1)
    assert gauge is not None and gauge.open_calls() == 0
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            p = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
            held = asyncio.ensure_future(stub.GetPlan(pb.GetPlanRequest(plan_id=p.id)))

            async def one_held() -> bool:
                return gate.waiting == 1

            await wait_for(one_held)
            assert gauge.open_calls() == 0  # idle at the last read: the cached count stands
            gauge.idle_every = 0
            assert gauge.open_calls() == 1  # read again: one call held
            gauge.idle_every = 3600
            gate.release.set()
            await held
            assert gauge.open_calls() == 0  # busy at the last read: read every time
    finally:
        gate.release.set()
        await running.stop(grace=0.5)


def test_a_gauge_that_cannot_read_core_counts_nothing_and_warns_once(caplog):
    gauge = core_call_gauge.CoreCallGauge(10**9, every=0)  # no such server
    with caplog.at_level(logging.WARNING, logger="plansmith.limits"):
        assert [gauge.open_calls() for _ in range(3)] == [0, 0, 0]
    assert sum("cannot read" in r.getMessage() for r in caplog.records) == 1


async def test_server_ids_reads_every_page_of_channelz():
    """channelz lists servers 100 to a page; the ids of all of them are read."""
    before = core_call_gauge.server_ids()
    servers = [grpc.aio.server() for _ in range(105)]
    try:
        assert len(core_call_gauge.server_ids() - before) == 105
    finally:
        for s in servers:
            await s.stop(None)
