"""Several replicas on one PostgreSQL database: the semantics of one SQLite file."""

from __future__ import annotations

import asyncio
import threading

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.storage import dsn as dsn_mod
from plansmith_server.storage.pg_migrations import MIGRATIONS
from plansmith_server.storage.postgres import PostgresStore
from tests.conftest import wait_for


def _stubs(*channels: grpc.aio.Channel) -> list[plan_service_pb2_grpc.PlanServiceStub]:
    return [plan_service_pb2_grpc.PlanServiceStub(ch) for ch in channels]


@pytest.fixture
async def two(pg_dsn, replica):
    """Two replicas on one new database, and a PlanService stub for each."""
    async with replica(pg_dsn) as a, replica(pg_dsn) as b:
        async with (
            grpc.aio.insecure_channel(a.address) as ca,
            grpc.aio.insecure_channel(b.address) as cb,
        ):
            yield (a, b), _stubs(ca, cb)


def test_replicas_starting_together_migrate_once(pg_dsn):
    """Four stores migrating one new database at the same moment: the advisory lock makes
    them take turns; each finds the schema complete, and every migration ran once."""
    stores = [PostgresStore(dsn_mod.parse(pg_dsn)) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def migrate(store: PostgresStore) -> None:
        barrier.wait()
        try:
            store._migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with psycopg.connect(pg_dsn) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert {"plans", "tasks", "task_dependencies", "plan_changes", "idempotency_keys"} <= tables


async def test_the_same_request_id_on_two_replicas_has_one_effect_and_one_answer(two):
    _, (a, b) = two
    for round_ in range(10):
        req = pb.CreatePlanRequest(
            plan=plan_pb2.Plan(name="P", project_id=f"r{round_}"), request_id=f"same-{round_}"
        )
        first, second = await asyncio.gather(a.CreatePlan(req), b.CreatePlan(req))
        assert first.plan == second.plan
    listed = await a.ListPlans(pb.ListPlansRequest(page_size=100))
    assert listed.total_size == 10


async def _heard_everywhere(replicas, plan_id: str, revision: int) -> None:
    """Until every replica has heard of the plan's revision: a read on one right after a
    write on another may precede the notification (docs/storage.md "Caches")."""

    async def told() -> bool:
        return all(r.store.told_revision(plan_id) >= revision for r in replicas)

    await wait_for(told)


async def test_concurrent_updates_from_two_replicas_never_lose_one(two):
    replicas, (a, b) = two
    plan = (await a.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    made = await a.CreateTask(pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="t")))
    task, latest = made.task, made.plan_revision

    # Both read the same etag and update: exactly one wins, the other is ABORTED.
    for i in range(5):
        await _heard_everywhere(replicas, plan.id, latest)
        current = (await b.GetTask(pb.GetTaskRequest(task_id=task.id))).task
        outcomes = await asyncio.gather(
            *(
                stub.UpdateTask(
                    pb.UpdateTaskRequest(
                        task=task_pb2.Task(id=task.id, title=f"{name}{i}", etag=current.etag),
                        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
                    )
                )
                for name, stub in (("a", a), ("b", b))
            ),
            return_exceptions=True,
        )
        ok = [o for o in outcomes if not isinstance(o, BaseException)]
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(ok) == 1 and len(failed) == 1, outcomes
        assert failed[0].code() == grpc.StatusCode.ABORTED
        latest = ok[0].plan_revision
        await _heard_everywhere(replicas, plan.id, latest)
        now = (await a.GetTask(pb.GetTaskRequest(task_id=task.id))).task
        assert now.title == ok[0].task.title

    # Without etags every update lands: 40 from two replicas, 40 revisions.
    before = (await a.GetPlan(pb.GetPlanRequest(plan_id=plan.id))).plan.revision
    results = await asyncio.gather(
        *(
            stub.CreateTask(
                pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title=f"c{i}"))
            )
            for i in range(20)
            for stub in (a, b)
        )
    )
    assert sorted(r.plan_revision for r in results) == list(range(before + 1, before + 41))
    await _heard_everywhere(replicas, plan.id, before + 40)
    listed = await b.ListTasks(pb.ListTasksRequest(plan_id=plan.id, page_size=100))
    assert listed.total_size == 41


async def test_page_tokens_and_cached_pages_hold_across_replicas(two):
    """A page token from A continues on B; a change made on A shows in B's next read
    once B has heard of it (B's pages are keyed by the revision it reads, its remembered
    lookups emptied by the commit's notification: docs/storage.md "Caches")."""
    (_, rb), (a, b) = two
    plan = (await a.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    await a.BatchCreateTasks(
        pb.BatchCreateTasksRequest(
            plan_id=plan.id, tasks=[task_pb2.Task(title=f"t{i}") for i in range(5)]
        )
    )
    first = await a.ListTasks(pb.ListTasksRequest(plan_id=plan.id, page_size=2))
    rest = await b.ListTasks(
        pb.ListTasksRequest(plan_id=plan.id, page_size=10, page_token=first.next_page_token)
    )
    assert [t.title for t in (*first.tasks, *rest.tasks)] == [f"t{i}" for i in range(5)]

    # B caches the page and the task; A changes both; B's next reads see it.
    page = await b.ListTasks(pb.ListTasksRequest(plan_id=plan.id, page_size=10))
    again = await b.ListTasks(pb.ListTasksRequest(plan_id=plan.id, page_size=10))
    assert page == again
    task_id = page.tasks[0].id
    assert (await b.GetTask(pb.GetTaskRequest(task_id=task_id))).task.title == "t0"
    done = await a.UpdateTask(
        pb.UpdateTaskRequest(
            task=task_pb2.Task(id=task_id, title="renamed on A"),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        )
    )

    async def heard() -> bool:
        return rb.store.told_revision(plan.id) >= done.plan_revision

    await wait_for(heard)
    assert (await b.GetTask(pb.GetTaskRequest(task_id=task_id))).task.title == "renamed on A"
    page = await b.ListTasks(pb.ListTasksRequest(plan_id=plan.id, page_size=10))
    assert page.tasks[0].title == "renamed on A"


async def test_commits_on_one_replica_are_announced_on_the_other_in_order(two):
    (_, rb), (a, _) = two
    heard: list[tuple[str, int]] = []
    got_all = asyncio.Event()

    def on_commit(pairs: list[tuple[str, int]]) -> None:
        heard.extend(pairs)
        if len(heard) >= 6:
            got_all.set()

    rb.store.subscribe_commits(on_commit)
    plan = (await a.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    for i in range(5):
        await a.CreateTask(pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title=f"t{i}")))
    async with asyncio.timeout(10):
        await got_all.wait()
    assert heard == [(plan.id, r) for r in range(1, 7)]


async def test_a_statement_does_not_outlive_its_calls_deadline(pg_dsn, replica):
    """An update waiting for a row lock held elsewhere gives up with the call (its
    statement timeout follows the deadline), not after the 5 s statement timeout."""
    async with replica(pg_dsn) as running:
        async with grpc.aio.insecure_channel(running.address) as ch:
            (stub,) = _stubs(ch)
            plan = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
            with psycopg.connect(pg_dsn) as holder:
                holder.execute("SELECT * FROM plans WHERE id = %s FOR UPDATE", (plan.id,))
                loop = asyncio.get_running_loop()
                start = loop.time()
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await stub.UpdatePlan(
                        pb.UpdatePlanRequest(
                            plan=plan_pb2.Plan(id=plan.id, name="blocked"),
                            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
                        ),
                        timeout=0.5,
                    )
                assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

                async def nobody_waits() -> bool:
                    with psycopg.connect(pg_dsn) as probe:
                        row = probe.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        ).fetchone()
                    return row is not None and row[0] == 0

                # The server's statement gave up with the call, not 5 s later.
                await wait_for(nobody_waits, within=2.5)
                assert loop.time() - start < 3
                holder.rollback()
