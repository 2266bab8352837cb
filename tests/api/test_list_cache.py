"""ListTasks pages are cached by the plan's revision. Every way a plan's tasks change must
show in the next page read: checked against a second server on the same database file
with the cache off (the oracle), which also writes, as another process would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from plansmith.v1 import (
    agent_pb2,
    generation_pb2,
    ops_service_pb2,
    ops_service_pb2_grpc,
    plan_pb2,
    plan_service_pb2_grpc,
    planning_service_pb2_grpc,
    task_pb2,
)
from plansmith.v1 import plan_service_pb2 as ps
from plansmith.v1 import planning_service_pb2 as pb
from plansmith_server.app import Running, start
from plansmith_server.config import Config
from plansmith_server.storage.postgres import PostgresStore
from tests.conftest import wait_for

T = task_pb2.Task
TODO, DONE = task_pb2.TASK_STATUS_TODO, task_pb2.TASK_STATUS_DONE
HIGH, LOW = task_pb2.TASK_PRIORITY_HIGH, task_pb2.TASK_PRIORITY_LOW


@pytest.fixture
async def two(db_path: str) -> AsyncIterator[tuple[Running, Running]]:
    cached = await start(Config(listen="127.0.0.1:0", db_path=db_path))
    fresh = await start(Config(listen="127.0.0.1:0", db_path=db_path, page_cache_tasks=0))
    try:
        yield cached, fresh
    finally:
        await fresh.stop(grace=0.5)
        await cached.stop(grace=0.5)


async def heard(running: Running, plan_id: str, revision: int) -> None:
    """Waits until `running` knows of the plan's revision committed by another server: at
    once on SQLite (the wal-index), on PostgreSQL once its listener has heard the
    notification (docs/storage.md, "Caches")."""
    store = running.store
    if isinstance(store, PostgresStore):

        async def told() -> bool:
            return store.told_revision(plan_id) >= revision

        await wait_for(told)


async def all_pages(stub, plan_id: str, **filters) -> list[ps.ListTasksResponse]:
    out, token = [], ""
    while True:
        r = await stub.ListTasks(
            ps.ListTasksRequest(plan_id=plan_id, page_size=3, page_token=token, **filters)
        )
        out.append(r)
        token = r.next_page_token
        if not token:
            return out


FILTERS = [{}, {"status": TODO}, {"status": DONE}, {"assigned_to": "ann"}, {"priority": HIGH}]


async def test_every_change_of_a_plans_tasks_shows_in_the_next_page(two):
    cached, fresh = two
    async with (
        grpc.aio.insecure_channel(cached.address) as ch,
        grpc.aio.insecure_channel(fresh.address) as other_ch,
    ):
        plans = plan_service_pb2_grpc.PlanServiceStub(ch)
        planning = planning_service_pb2_grpc.PlanningServiceStub(ch)
        other = plan_service_pb2_grpc.PlanServiceStub(other_ch)

        async def same_pages(plan_id: str) -> None:
            for filters in FILTERS:
                first = await all_pages(plans, plan_id, **filters)
                again = await all_pages(plans, plan_id, **filters)  # from the cache
                truth = await all_pages(other, plan_id, **filters)
                assert first == again == truth, filters

        agents = [agent_pb2.Agent(id="ann"), agent_pb2.Agent(id="bob")]
        plan = (
            await plans.CreatePlan(
                ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P", agents=agents))
            )
        ).plan
        await same_pages(plan.id)
        made = (
            await plans.BatchCreateTasks(
                ps.BatchCreateTasksRequest(
                    plan_id=plan.id,
                    tasks=[
                        T(title=f"t{i}", estimated_hours=2 + i, priority=HIGH if i % 2 else LOW)
                        for i in range(7)
                    ],
                )
            )
        ).tasks
        await same_pages(plan.id)
        one = (
            await plans.CreateTask(
                ps.CreateTaskRequest(
                    plan_id=plan.id,
                    task=T(title="api", estimated_hours=8, dependencies=[made[0].id]),
                )
            )
        ).task
        await same_pages(plan.id)

        def update(task_id: str, paths: list[str], **fields):
            return ps.UpdateTaskRequest(
                task=T(id=task_id, **fields), update_mask=field_mask_pb2.FieldMask(paths=paths)
            )

        await plans.UpdateTask(update(made[1].id, ["title"], title="renamed"))
        await same_pages(plan.id)
        await plans.UpdateTask(update(made[2].id, ["status"], status=DONE))
        await same_pages(plan.id)
        await plans.UpdateTask(update(made[3].id, ["dependencies"], dependencies=[made[4].id]))
        await same_pages(plan.id)
        await plans.DeleteTask(ps.DeleteTaskRequest(task_id=made[0].id, force=True))  # detaches
        await same_pages(plan.id)
        await planning.OptimizePlan(  # assigns and schedules every task
            pb.OptimizePlanRequest(
                plan_id=plan.id, apply=True, time_limit=duration_pb2.Duration(seconds=2)
            )
        )
        await same_pages(plan.id)
        await planning.DecomposeTask(
            pb.DecomposeTaskRequest(
                task_id=one.id, level=pb.DECOMPOSITION_LEVEL_STANDARD, persist=True
            )
        )
        await same_pages(plan.id)
        await plans.UpdatePlan(
            ps.UpdatePlanRequest(
                plan=plan_pb2.Plan(id=plan.id, name="renamed"),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            )
        )
        await same_pages(plan.id)
        # Written by the other server (as another process would): seen here too.
        await other.UpdateTask(update(made[5].id, ["title", "status"], title="there", status=DONE))
        done = await other.CreateTask(
            ps.CreateTaskRequest(plan_id=plan.id, task=T(title="there too"))
        )
        await heard(cached, plan.id, done.plan_revision)
        await same_pages(plan.id)
        await plans.UpdateTask(update(made[6].id, ["priority"], priority=LOW))
        await same_pages(plan.id)
        generated = await planning.GeneratePlan(
            pb.GeneratePlanRequest(
                brief=generation_pb2.PlanBrief(
                    name="Status page",
                    description="Build a public status page web application for our API",
                    requirements=["Show current incidents", "Email subscribers on updates"],
                ),
                persist=True,
            )
        )
        await same_pages(generated.result.plan.id)
        await other.DeletePlan(ps.DeletePlanRequest(plan_id=plan.id))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await plans.ListTasks(ps.ListTasksRequest(plan_id=plan.id))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_page_of_an_unchanged_plan_is_served_from_the_cache(two):
    """The test above could pass with no cache at all: here the domain returns the very
    same page while the plan is unchanged, and a new one after a change; the server with
    the cache off builds a new page each time."""
    cached, fresh = two
    async with grpc.aio.insecure_channel(cached.address) as ch:
        plans = plan_service_pb2_grpc.PlanServiceStub(ch)
        plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
        tasks = [T(title=f"t{i}") for i in range(3)]
        await plans.BatchCreateTasks(ps.BatchCreateTasksRequest(plan_id=plan.id, tasks=tasks))
        first = await cached.tasks.list_tasks(plan.id)
        assert len(first.items) == 3
        assert await cached.tasks.list_tasks(plan.id) is first
        await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="t3")))
        after = await cached.tasks.list_tasks(plan.id)
        assert after is not first and len(after.items) == 4
        assert await cached.tasks.list_tasks(plan.id) is after
    assert await fresh.tasks.list_tasks(plan.id) is not await fresh.tasks.list_tasks(plan.id)


async def test_a_memory_database_caches_pages_on_its_writer_thread_too():
    """`:memory:` runs every read on the writer thread: the same cache, the same rule."""
    running = await start(Config(listen="127.0.0.1:0", db_path=":memory:"))
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            plans = plan_service_pb2_grpc.PlanServiceStub(ch)
            plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
            task = (
                await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))
            ).task
            first = await running.tasks.list_tasks(plan.id)
            assert await running.tasks.list_tasks(plan.id) is first
            await plans.UpdateTask(
                ps.UpdateTaskRequest(
                    task=T(id=task.id, title="b"),
                    update_mask=field_mask_pb2.FieldMask(paths=["title"]),
                )
            )
            r = await plans.ListTasks(ps.ListTasksRequest(plan_id=plan.id))
            assert [t.title for t in r.tasks] == ["b"]
    finally:
        await running.stop(grace=0.5)


def test_an_encoded_page_lives_only_as_long_as_its_page():
    """With the domain's cache off every page is new: the API keeps no encoding of it
    once the page is gone (a second cache of its own would fill with dead pages)."""
    import gc

    from plansmith_server.api.convert import TaskEncodings
    from plansmith_server.domain.models import Page, Task

    encodings = TaskEncodings()
    page = Page((Task(id="tsk_1", plan_id="pln_1", title="a"),), "", 1)
    data = encodings.list_response(page)
    assert ps.ListTasksResponse.FromString(data).tasks[0].title == "a"
    assert encodings.list_response(page) is data  # the same page: kept
    assert encodings.list_response(Page(page.items, "", 1)) is not data  # an equal one: not
    del page
    gc.collect()
    assert len(encodings._pages) == 0


@pytest.mark.sqlite_only
async def test_the_status_report_shows_whether_the_caches_pay(two):
    """An operator can tell from `OpsService.GetServiceStatus` (and `plansmith-server
    status`) how often each cache is hit; a cache turned off is not listed."""
    cached, fresh = two

    async def caches(running: Running) -> dict[str, ops_service_pb2.CacheStats]:
        async with grpc.aio.insecure_channel(running.address) as ch:
            ops = ops_service_pb2_grpc.OpsServiceStub(ch)
            status = await ops.GetServiceStatus(ops_service_pb2.GetServiceStatusRequest())
        return {c.name: c for c in status.caches}

    async with grpc.aio.insecure_channel(cached.address) as ch:
        plans = plan_service_pb2_grpc.PlanServiceStub(ch)
        plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
        tasks = [T(title=f"t{i}") for i in range(3)]
        await plans.BatchCreateTasks(ps.BatchCreateTasksRequest(plan_id=plan.id, tasks=tasks))
        for _ in range(3):
            await plans.ListTasks(ps.ListTasksRequest(plan_id=plan.id))
    pages = (await caches(cached))["task_pages"]
    assert (pages.hits, pages.misses, pages.entries) == (2, 1, 1)
    assert pages.size == 4 and pages.capacity == 10_000  # 3 tasks and the page itself
    report = await caches(cached)
    assert {"lookups", "tasks", "task_encodings"} <= set(report)
    assert report["task_encodings"].misses == 3 and report["task_encodings"].entries == 3
    # The plan's size was remembered after the first read: the next two found it.
    assert report["lookups"].hits >= 2 and report["lookups"].capacity == 10_000
    assert set(await caches(fresh)) == {"lookups", "tasks", "task_encodings"}  # no pages


async def test_pages_of_large_tasks_weigh_their_size_not_their_count(two):
    """A page is bounded in memory like the store's cache of the same tasks (one per task,
    one more per 4 KiB): pages of the largest tasks cannot fill gigabytes."""
    cached, _ = two
    async with grpc.aio.insecure_channel(cached.address) as ch:
        plans = plan_service_pb2_grpc.PlanServiceStub(ch)
        ops = ops_service_pb2_grpc.OpsServiceStub(ch)
        plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
        big = [T(title=f"t{i}", description="d" * 10_000) for i in range(3)]
        await plans.BatchCreateTasks(ps.BatchCreateTasksRequest(plan_id=plan.id, tasks=big))
        await plans.ListTasks(ps.ListTasksRequest(plan_id=plan.id))
        status = await ops.GetServiceStatus(ops_service_pb2.GetServiceStatusRequest())
    report = {c.name: c for c in status.caches}
    pages, tasks = report["task_pages"], report["tasks"]
    assert pages.entries == 1 and tasks.entries == 3
    # Each task has over 8 KiB of text: three blocks, as the store's cache weighs it.
    assert tasks.size == 9 and pages.size == 1 + tasks.size
