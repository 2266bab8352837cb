"""WatchPlan: replay then live, one event per revision, no gaps or duplicates; errors;
deletion; heartbeats; retention; slow consumers; limits; shutdown. Real server, real file."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from plansmith.v1 import (
    agent_pb2,
    execution_pb2,
    plan_pb2,
    plan_service_pb2_grpc,
    task_pb2,
    watch_pb2,
)
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import Running, open_store, prune_changes_once, start
from plansmith_server.config import Config
from plansmith_server.domain.mutations import MutationRunner
from plansmith_server.domain.plans import Plans
from plansmith_server.domain.retention import prune_change_log
from plansmith_server.domain.tasks import Tasks
from plansmith_server.telemetry import Telemetry
from tests.conftest import details_of, wait_for

Stub = plan_service_pb2_grpc.PlanServiceStub


async def new_plan(stub: Stub) -> str:
    r = await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="w", project_id="p")))
    return r.plan.id


async def add_task(stub: Stub, plan_id: str, title: str, description: str = "") -> task_pb2.Task:
    r = await stub.CreateTask(
        pb.CreateTaskRequest(
            plan_id=plan_id, task=task_pb2.Task(title=title, description=description)
        )
    )
    return r.task


def revisions_of(msg: watch_pb2.WatchPlanResponse) -> list[int]:
    return [r.revision for r in msg.changes.revisions]


async def collect(call, until_revision: int) -> list[watch_pb2.WatchPlanResponse]:
    out = []
    while True:
        msg = await asyncio.wait_for(call.read(), 10)
        out.append(msg)
        if msg.WhichOneof("event") == "changes" and revisions_of(msg)[-1] >= until_revision:
            return out


async def read_all(call) -> list[watch_pb2.WatchPlanResponse]:
    """The rest of a stream read with `read()` (which cannot be mixed with `async for`)."""
    out = []
    while (msg := await asyncio.wait_for(call.read(), 10)) is not grpc.aio.EOF:
        out.append(msg)
    return out


@pytest.fixture
async def serve(db_path: str) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """Starts a server with the settings a test asks for; stops it after the test."""
    started: list[Running] = []

    async def make(**settings: object) -> Running:
        running = await start(
            Config(listen="127.0.0.1:0", db_path=db_path, grace_seconds=2.0, **settings)
        )
        started.append(running)
        return running

    yield make
    for running in started:
        await running.stop(grace=0.5)


async def test_replays_then_follows_live_with_each_revision_once(plans: Stub) -> None:
    plan_id = await new_plan(plans)
    first = await add_task(plans, plan_id, "a")
    await plans.UpdateTask(
        pb.UpdateTaskRequest(
            task=task_pb2.Task(id=first.id, status=task_pb2.TASK_STATUS_IN_PROGRESS),
            update_mask={"paths": ["status"]},
        )
    )
    call = plans.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=0))
    replay = await call.read()
    # Replayed revisions that piled up come in one message, in order.
    assert revisions_of(replay) == [1, 2, 3]
    created, added, updated = replay.changes.revisions
    assert created.changes[0].type == watch_pb2.PLAN_CHANGE_TYPE_PLAN_CREATED
    assert created.changes[0].plan.name == "w"
    assert added.changes[0].type == watch_pb2.PLAN_CHANGE_TYPE_TASK_CREATED
    assert added.changes[0].task.title == "a"
    assert updated.changes[0].type == watch_pb2.PLAN_CHANGE_TYPE_TASK_UPDATED
    assert updated.changes[0].task.status == task_pb2.TASK_STATUS_IN_PROGRESS
    assert updated.commit_time.seconds > 0
    # Then live: each new revision, with the task's new state.
    await plans.UpdatePlan(
        pb.UpdatePlanRequest(
            plan=plan_pb2.Plan(id=plan_id, name="renamed"), update_mask={"paths": ["name"]}
        )
    )
    await plans.DeleteTask(pb.DeleteTaskRequest(task_id=first.id))
    seen = [m for m in await collect(call, 5) if m.WhichOneof("event") == "changes"]
    live = [r for m in seen for r in m.changes.revisions]
    assert [r.revision for r in live] == [4, 5]
    assert live[0].changes[0].type == watch_pb2.PLAN_CHANGE_TYPE_PLAN_UPDATED
    assert live[0].changes[0].plan.name == "renamed"
    assert live[1].changes[0].type == watch_pb2.PLAN_CHANGE_TYPE_TASK_DELETED
    assert live[1].changes[0].entity_id == first.id
    assert seen[-1].changes.current_revision == 5
    call.cancel()


async def test_without_from_revision_only_new_changes_arrive(plans: Stub) -> None:
    plan_id = await new_plan(plans)
    await add_task(plans, plan_id, "old")
    call = plans.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id))
    await call.wait_for_connection()
    await asyncio.sleep(0.05)  # the watch is registered (a later commit would be found anyway)
    await add_task(plans, plan_id, "new")
    msg = await call.read()
    assert revisions_of(msg) == [3]
    assert msg.changes.revisions[0].changes[0].task.title == "new"
    call.cancel()


@pytest.mark.parametrize(
    ("request_fields", "code", "field"),
    [
        ({"from_revision": -1}, grpc.StatusCode.INVALID_ARGUMENT, "from_revision"),
        ({"from_revision": 3}, grpc.StatusCode.INVALID_ARGUMENT, "from_revision"),
        ({"plan_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "plan_id"),
        ({"plan_id": "pln_missing"}, grpc.StatusCode.NOT_FOUND, None),
    ],
)
async def test_bad_requests_are_refused_with_details(
    plans: Stub, request_fields: dict, code: grpc.StatusCode, field: str | None
) -> None:
    plan_id = await new_plan(plans)
    await add_task(plans, plan_id, "a")  # current revision: 2
    req = watch_pb2.WatchPlanRequest(**{"plan_id": plan_id, **request_fields})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in plans.WatchPlan(req):
            pass
    assert err.value.code() == code
    details = details_of(err.value)
    if field is not None:
        assert [v.field for v in details["BadRequest"].field_violations] == [field]
    else:
        assert details["ResourceInfo"].resource_name == "pln_missing"


async def test_plan_deleted_while_watched_ends_the_stream_ok(plans: Stub) -> None:
    plan_id = await new_plan(plans)
    call = plans.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=0))
    assert revisions_of(await call.read()) == [1]
    await plans.DeletePlan(pb.DeletePlanRequest(plan_id=plan_id))
    rest = await read_all(call)
    assert revisions_of(rest[0]) == [2]
    assert rest[0].changes.revisions[0].changes[0].type == watch_pb2.PLAN_CHANGE_TYPE_PLAN_DELETED
    assert rest[-1].WhichOneof("event") == "plan_deleted"
    assert rest[-1].plan_deleted.revision == 2
    assert await call.code() == grpc.StatusCode.OK
    # A watch of the deleted plan from before its end replays to the end, then stops.
    again = [
        m
        async for m in plans.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=1))
    ]
    assert [m.WhichOneof("event") for m in again] == ["changes", "plan_deleted"]


async def test_heartbeat_says_the_current_revision(serve) -> None:
    tuned = await serve(watch_heartbeat_seconds=0.2)
    async with grpc.aio.insecure_channel(tuned.address) as ch:
        stub = Stub(ch)
        plan_id = await new_plan(stub)
        await add_task(stub, plan_id, "a")
        call = stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=2))
        msg = await asyncio.wait_for(call.read(), 5)
        assert msg.WhichOneof("event") == "heartbeat"
        assert msg.heartbeat.current_revision == 2
        assert msg.heartbeat.time.seconds > 0
        call.cancel()


async def test_a_write_by_another_process_is_read_from_the_log(serve) -> None:
    tuned = await serve(watch_heartbeat_seconds=0.2)
    """The log is the source of truth: a commit this server was not told of (another
    store on the same database, as another replica would be) arrives: by the poll on
    SQLite, by the notification of the commit on PostgreSQL."""
    async with grpc.aio.insecure_channel(tuned.address) as ch:
        stub = Stub(ch)
        plan_id = await new_plan(stub)
        call = stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=1))
        # Caught up (a heartbeat came): what follows can only be found in the log.
        assert (await asyncio.wait_for(call.read(), 5)).WhichOneof("event") == "heartbeat"
        other = open_store(tuned.config, Telemetry.noop())
        await other.open()
        try:
            from plansmith_server.domain.models import Task

            await Tasks(Plans(MutationRunner(other))).create_task(
                plan_id, Task(id="", plan_id=plan_id, title="elsewhere")
            )
        finally:
            await other.close()
        deadline = time.monotonic() + 5
        msg = await asyncio.wait_for(call.read(), 5)
        while msg.WhichOneof("event") == "heartbeat" and time.monotonic() < deadline:
            msg = await asyncio.wait_for(call.read(), 5)
        assert revisions_of(msg) == [2]
        assert msg.changes.revisions[0].changes[0].task.title == "elsewhere"
        call.cancel()


async def test_concurrent_writers_and_a_watcher_that_resumes_see_every_revision_once(
    plans: Stub,
) -> None:
    plan_id = await new_plan(plans)
    rng = random.Random(21)
    writes = 120

    async def writer(k: int) -> None:
        for i in range(writes // 4):
            if rng.random() < 0.3:
                await plans.BatchCreateTasks(
                    pb.BatchCreateTasksRequest(
                        plan_id=plan_id,
                        tasks=[task_pb2.Task(title=f"{k}/{i}/{j}") for j in range(3)],
                    )
                )
            else:
                await add_task(plans, plan_id, f"{k}/{i}")

    writers = asyncio.gather(*(writer(k) for k in range(4)))
    received: list[int] = []
    last = 0
    final = 1 + writes
    breaks = 0
    while last < final:
        # Each connection takes a few messages, then drops (cancels) and resumes from the
        # last revision it saw.
        call = plans.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=last))
        for _ in range(rng.randint(1, 4)):
            msg = await asyncio.wait_for(call.read(), 10)
            if msg.WhichOneof("event") != "changes":
                continue
            revs = revisions_of(msg)
            assert revs == list(range(last + 1, last + 1 + len(revs)))  # consecutive
            received += revs
            last = revs[-1]
            if last >= final:
                break
        call.cancel()
        breaks += 1
    await writers
    assert breaks > 3
    assert received == list(range(1, final + 1))  # every revision, exactly once


async def test_out_of_range_after_retention_names_the_oldest_kept(serve) -> None:
    tuned = await serve(change_retention_hours=0, change_retention_revisions=3)
    async with grpc.aio.insecure_channel(tuned.address) as ch:
        stub = Stub(ch)
        plan_id = await new_plan(stub)
        for i in range(9):
            await add_task(stub, plan_id, f"t{i}")  # revisions 2..10
        assert await prune_changes_once(tuned) == 7  # 1..7 went; 8, 9, 10 stay
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in stub.WatchPlan(
                watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=0)
            ):
                pass
        assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
        info = details_of(err.value)["ErrorInfo"]
        assert info.reason == "REVISION_NOT_RETAINED"
        assert info.metadata["oldest_retained_revision"] == "8"
        call = stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=7))
        assert revisions_of(await call.read()) == [8, 9, 10]
        call.cancel()


async def test_pruning_goes_in_small_batches_and_keeps_an_unbroken_tail(server: Running) -> None:
    store = server.store
    from plansmith_server.domain.models import Plan, Task

    plan = await server.plans.create_plan(Plan(id="", project_id="p", name="long"))
    for i in range(60):
        await server.tasks.create_task(plan.id, Task(id="", plan_id=plan.id, title=f"t{i}"))
    groups = store.commit_groups
    pruned = await prune_change_log(store, older_than=2**62, keep_revisions=5, batch_rows=10)
    assert pruned == 56  # revisions 1..56 of 61
    assert store.commit_groups - groups >= 6  # ten rows a transaction at most
    assert await store.read(lambda tx: tx.change_log_bounds(plan.id)) == (57, 61)
    # Nothing younger than the cut-off goes, whatever the count.
    assert await prune_change_log(store, older_than=0, keep_revisions=0) == 0


async def test_a_consumer_that_cannot_keep_up_is_cut_with_where_to_resume(serve) -> None:
    tuned = await serve(watch_max_lag_seconds=0.3)
    async with grpc.aio.insecure_channel(tuned.address) as ch:
        stub = Stub(ch)
        plan_id = await new_plan(stub)
        call = stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=0))
        assert revisions_of(await call.read()) == [1]
        # The consumer stops reading while ~12 MB of revisions are committed.
        peak = 0
        big = "x" * 3000
        for i in range(100):
            await stub.BatchCreateTasks(
                pb.BatchCreateTasksRequest(
                    plan_id=plan_id,
                    tasks=[task_pb2.Task(title=f"{i}/{j}", description=big) for j in range(40)],
                )
            )
            peak = max(peak, tuned.feed.buffered_bytes())
        await asyncio.sleep(0.5)
        received: list[int] = [1]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            while True:
                received += revisions_of(await asyncio.wait_for(call.read(), 10))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = details_of(err.value)["ErrorInfo"]
        assert info.reason == "WATCHER_TOO_SLOW"
        resume = int(info.metadata["resume_from_revision"])
        assert received == list(range(1, resume + 1))
        assert resume < 101
        # The server held no more than its ring's bound for the watcher meanwhile.
        assert peak <= tuned.feed.limits.ring_bytes
        # Resuming from there delivers the rest.
        call = stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=resume))
        while received[-1] < 101:
            received += revisions_of(await asyncio.wait_for(call.read(), 10))
        call.cancel()
        assert received == list(range(1, 102))


async def test_watches_have_their_own_limit_apart_from_the_stream_limit(serve) -> None:
    tuned = await serve(max_watches=2, max_streams=1)
    async with grpc.aio.insecure_channel(tuned.address) as ch:
        stub = Stub(ch)
        plan_id = await new_plan(stub)
        calls = [
            stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=0))
            for _ in range(2)
        ]
        for c in calls:  # two watches, past the limit of one stream
            assert revisions_of(await c.read()) == [1]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id)):
                pass
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = details_of(err.value)
        assert details["ErrorInfo"].reason == "TOO_MANY_WATCHES"
        assert "RetryInfo" in details
        for c in calls:
            c.cancel()
        await wait_for(lambda: _true(tuned.feed.active == 0))
        call = stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=0))
        assert revisions_of(await call.read()) == [1]
        call.cancel()


async def _true(value: bool) -> bool:
    return value


async def test_stopping_the_server_ends_watches_with_where_to_resume(db_path: str) -> None:
    running = await start(Config(listen="127.0.0.1:0", db_path=db_path, grace_seconds=30.0))
    async with grpc.aio.insecure_channel(running.address) as ch:
        stub = Stub(ch)
        plan_id = await new_plan(stub)
        call = stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=0))
        assert revisions_of(await call.read()) == [1]
        began = time.monotonic()
        await running.stop()
        # Not held for the 30 s grace: the watch ended at once, cleanly.
        assert time.monotonic() - began < 10
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        info = details_of(err.value)["ErrorInfo"]
        assert info.reason == "SERVER_STOPPING"
        assert info.metadata["resume_from_revision"] == "1"


async def test_a_replanning_decision_arrives_with_its_record(plans: Stub) -> None:
    created = await plans.CreatePlan(
        pb.CreatePlanRequest(
            plan=plan_pb2.Plan(
                name="w", project_id="p", agents=[agent_pb2.Agent(id="ann", capabilities=["x"])]
            )
        )
    )
    plan_id = created.plan.id
    task = await add_task(plans, plan_id, "load")
    await plans.StartTask(execution_pb2.StartTaskRequest(task_id=task.id, agent_id="ann"))
    failure = execution_pb2.TaskFailure(
        category=execution_pb2.FAILURE_CATEGORY_TRANSIENT, message="timeout"
    )
    report = await plans.ReportTaskFailure(
        execution_pb2.ReportTaskFailureRequest(task_id=task.id, failure=failure)
    )
    call = plans.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=0))
    try:
        msgs = await collect(call, report.plan_revision)
    finally:
        call.cancel()
    last = [r for m in msgs for r in m.changes.revisions][-1]
    assert last.revision == report.plan_revision
    recorded = [c for c in last.changes if c.type == watch_pb2.PLAN_CHANGE_TYPE_REPLAN_RECORDED]
    assert len(recorded) == 1
    assert recorded[0].WhichOneof("entity") == "replan_record"
    assert recorded[0].replan_record.id == report.record.id
    assert recorded[0].replan_record.decision == report.record.decision
    assert any(c.type == watch_pb2.PLAN_CHANGE_TYPE_TASK_UPDATED for c in last.changes)
