"""How many round trips a write costs on PostgreSQL, counted on the wire (a proxy that
reads the client's side of the protocol, `tests/support/pg_wire.py`): each one is a wait
of the call, and with the database on another machine the waits are what a write
costs. The figures and what they were before: docs/performance.md."""

from __future__ import annotations

import grpc

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from tests.support.pg_wire import WireCounter

WARM_UP = 8  # past psycopg's prepare_threshold (5): the steady state, statements prepared


async def test_a_create_task_costs_two_round_trips_three_with_a_request_id(pg_dsn, replica):
    async with WireCounter(pg_dsn) as proxy, replica(proxy.dsn) as running:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            plan = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="rt")))).plan

            async def create(n: int, request_id: str = "") -> int:
                mark = proxy.mark()
                await stub.CreateTask(
                    pb.CreateTaskRequest(
                        plan_id=plan.id, task=task_pb2.Task(title=f"t{n}"), request_id=request_id
                    )
                )
                return proxy.since(mark).round_trips

            for n in range(WARM_UP):
                await create(n)
                await create(n, f"warm-{n}")
            # BEGIN, the timeout and the plan's size; then the task, the revision, the
            # change record, NOTIFY and COMMIT in one batch.
            assert await create(100) <= 2
            # And the request_id looked up with BEGIN, recorded in the last batch.
            assert await create(101, "once") <= 3
            # A retry of it: the recorded answer, read in the first round trip.
            assert await create(101, "once") <= 2
            tasks = await stub.ListTasks(pb.ListTasksRequest(plan_id=plan.id, page_size=100))
            assert len(tasks.tasks) == 2 * WARM_UP + 2


async def test_an_update_task_costs_two_round_trips_a_batch_one_insert_per_table(pg_dsn, replica):
    async with WireCounter(pg_dsn) as proxy, replica(proxy.dsn) as running:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            plan = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="rt")))).plan
            task = (
                await stub.CreateTask(
                    pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="t"))
                )
            ).task

            async def update(n: int) -> int:
                mark = proxy.mark()
                await stub.UpdateTask(
                    pb.UpdateTaskRequest(
                        task=task_pb2.Task(id=task.id, title=f"u{n}"),
                        update_mask={"paths": ["title"]},
                    )
                )
                return proxy.since(mark).round_trips

            async def batch(n: int) -> tuple[int, int]:
                mark = proxy.mark()
                await stub.BatchCreateTasks(
                    pb.BatchCreateTasksRequest(
                        plan_id=plan.id,
                        tasks=[
                            task_pb2.Task(title=f"b{n}.{i}", dependencies=[task.id])
                            for i in range(10)
                        ],
                    )
                )
                wire = proxy.since(mark)
                return wire.round_trips, wire.statements

            for n in range(WARM_UP):
                await update(n)
                await batch(n)
            # The task with its plan's revision, then the rest in one batch.
            assert await update(100) <= 2
            # The plan's size, then its tasks the batch depends on; the ten tasks, their
            # ten dependencies and ten change records in a statement each.
            round_trips, statements = await batch(100)
            assert round_trips <= 3
            assert statements == 9
