"""A caller that gives up stops the CPU work it asked for (solves and simulations run on
threads a cancelled call cannot interrupt, so the server has to tell them)."""

from __future__ import annotations

import asyncio
import logging
import random
import time

import grpc
import pytest
from google.protobuf import duration_pb2

from plansmith.v1 import (
    agent_pb2,
    ops_service_pb2,
    ops_service_pb2_grpc,
    plan_pb2,
    planning_service_pb2_grpc,
    task_pb2,
)
from plansmith.v1 import plan_service_pb2 as ps
from plansmith.v1 import planning_service_pb2 as pb
from tests.conftest import wait_for


async def quiet(window: float = 0.3) -> bool:
    """Whether this process (server included) used under a third of one core's time over
    `window` seconds: no solver or simulation is running on."""
    before = time.process_time()
    await asyncio.sleep(window)  # a measuring window, not a wait for a change
    return time.process_time() - before < window / 3


async def hard_plan(plans, tasks: int, agents: bool = True) -> str:
    rng = random.Random(3)
    caps = ["c1", "c2", "c3", "c4", "c5"]
    plan = (
        await plans.CreatePlan(
            ps.CreatePlanRequest(
                plan=plan_pb2.Plan(
                    name="hard",
                    agents=[
                        agent_pb2.Agent(id=f"r{i}", capabilities=rng.sample(caps, 3))
                        for i in range(5)
                    ]
                    if agents
                    else [],
                )
            )
        )
    ).plan
    for first in range(0, tasks, 1_000):
        await plans.BatchCreateTasks(
            ps.BatchCreateTasksRequest(
                plan_id=plan.id,
                tasks=[
                    task_pb2.Task(
                        id=f"a{i}",
                        title=f"a{i}",
                        estimated_hours=rng.uniform(1, 20),
                        optimistic_hours=0.5,
                        pessimistic_hours=30,
                        required_capabilities=[rng.choice(caps)] if agents else [],
                        dependencies=[
                            f"a{j}"
                            for j in rng.sample(range(first, i), min(i - first, rng.randrange(3)))
                        ],
                    )
                    for i in range(first, min(first + 1_000, tasks))
                ],
            )
        )
    return plan.id


@pytest.fixture
def sched(channel):
    return planning_service_pb2_grpc.PlanningServiceStub(channel)


async def test_an_abandoned_optimize_stops_solving(plans, sched):
    plan_id = await hard_plan(plans, 40)  # CP-SAT uses all of a 20 s limit on this one
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await sched.OptimizePlan(
            pb.OptimizePlanRequest(plan_id=plan_id, time_limit=duration_pb2.Duration(seconds=20)),
            timeout=0.5,
        )
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await wait_for(quiet, within=5)  # left running, its two workers would keep a core busy


async def test_an_abandoned_analysis_stops_simulating(plans, sched):
    plan_id = await hard_plan(plans, 2_000, agents=False)  # 10,000 samples: ~2 s of CPU
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await sched.AnalyzePlan(
            pb.AnalyzePlanRequest(
                plan_id=plan_id, analysis_types=[pb.ANALYSIS_TYPE_RISK_ASSESSMENT]
            ),
            timeout=0.3,
        )
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await wait_for(quiet, within=1)


async def test_a_passed_deadline_is_recorded_deadline_exceeded_not_cancelled(
    server, plans, sched, caplog
):
    """The caller's deadline passing is not the caller cancelling: the access log line and
    OpsService's code counts both say DEADLINE_EXCEEDED; a cancel still says CANCELLED."""
    method = "/plansmith.v1.PlanningService/OptimizePlan"
    plan_id = await hard_plan(plans, 40)
    request = pb.OptimizePlanRequest(plan_id=plan_id, time_limit=duration_pb2.Duration(seconds=20))

    async def codes() -> dict[str, int]:
        async with grpc.aio.insecure_channel(server.address) as ch:
            status = await ops_service_pb2_grpc.OpsServiceStub(ch).GetServiceStatus(
                ops_service_pb2.GetServiceStatusRequest()
            )
        return next((dict(m.total_codes) for m in status.methods if m.method == method), {})

    with caplog.at_level(logging.INFO, logger="plansmith.access"):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await sched.OptimizePlan(request, timeout=0.5)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        async def recorded(n: int) -> bool:
            return sum((await codes()).values()) == n

        await wait_for(lambda: recorded(1))
        assert await codes() == {"DEADLINE_EXCEEDED": 1}
        lines = [r for r in caplog.records if getattr(r, "rpc_method", "") == method]
        assert [r.status_code for r in lines] == ["DEADLINE_EXCEEDED"]
        assert "DEADLINE_EXCEEDED" in lines[0].getMessage()

        # A caller that cancels before its deadline is still CANCELLED.
        call = sched.OptimizePlan(request, timeout=30)

        async def started() -> bool:  # a call cancelled before its handler is not seen
            return server.telemetry.stats.in_flight == 1

        await wait_for(started)
        call.cancel()
        await wait_for(lambda: recorded(2))
        assert await codes() == {"DEADLINE_EXCEEDED": 1, "CANCELLED": 1}
    await wait_for(quiet, within=5)
