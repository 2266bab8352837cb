"""Overload and size limits: refused at once, with a reason and (when retrying helps) a
RetryInfo delay; nothing changes."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plansmith.v1 import (
    generation_pb2,
    plan_pb2,
    plan_service_pb2_grpc,
    planning_service_pb2,
    planning_service_pb2_grpc,
    task_pb2,
)
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import start
from plansmith_server.config import Config
from tests.api.test_generation import GatedPlanner
from tests.conftest import details_of, wait_for


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
    finally:
        await running.stop(grace=0.5)
