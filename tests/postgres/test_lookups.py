"""Lookups by key (GetTask, GetPlan, a plan's size for ListTasks) remembered between
commits on PostgreSQL and emptied by notification (`storage/pg_lookups.py`): they hit,
and a change committed on another replica is seen by the next read all the same."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2

from plansmith.v1 import (
    ops_service_pb2,
    ops_service_pb2_grpc,
    plan_pb2,
    plan_service_pb2_grpc,
    task_pb2,
)
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import Running
from plansmith_server.storage.pg_lookups import RememberedLookups
from tests.conftest import wait_for

ROUNDS = 100


def _rename_task(task_id: str, title: str) -> pb.UpdateTaskRequest:
    return pb.UpdateTaskRequest(
        task=task_pb2.Task(id=task_id, title=title),
        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
    )


def _rename_plan(plan_id: str, name: str) -> pb.UpdatePlanRequest:
    return pb.UpdatePlanRequest(
        plan=plan_pb2.Plan(id=plan_id, name=name),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]),
    )


@pytest.fixture
async def two(pg_dsn, replica):
    """Two replicas on one new database, and a PlanService stub for each."""
    async with replica(pg_dsn) as a, replica(pg_dsn) as b:
        async with (
            grpc.aio.insecure_channel(a.address) as ca,
            grpc.aio.insecure_channel(b.address) as cb,
        ):
            yield (
                (a, b),
                (
                    plan_service_pb2_grpc.PlanServiceStub(ca),
                    plan_service_pb2_grpc.PlanServiceStub(cb),
                ),
            )


def _hits(running: Running) -> int:
    return running.store.caches()["lookups"].hits


async def _listening(running: Running) -> None:
    async def live() -> bool:
        return running.store.remembers_lookups

    await wait_for(live)


async def test_a_replica_answers_lookups_read_again_from_memory(two):
    """One replica: a task, a plan and a plan's size read again are answered from memory
    (the hit count moves; the status report lists the cache), and its own writes are
    seen by its next read."""
    (ra, _), (a, _) = two
    await _listening(ra)
    plan = (await a.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (
        await a.CreateTask(pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="t")))
    ).task
    lookups = ra.store.caches()["lookups"]
    before = lookups.hits
    for _ in range(5):
        assert (await a.GetTask(pb.GetTaskRequest(task_id=task.id))).task == task
        assert (await a.GetPlan(pb.GetPlanRequest(plan_id=plan.id))).plan.name == "P"
        listed = await a.ListTasks(pb.ListTasksRequest(plan_id=plan.id))
        assert [t.title for t in listed.tasks] == ["t"]
    # The first round read each of the three; the next four found them (a notification
    # of the writes above heard meanwhile may empty it once more).
    assert lookups.hits - before >= 8
    async with grpc.aio.insecure_channel(ra.address) as ch:
        ops = ops_service_pb2_grpc.OpsServiceStub(ch)
        status = await ops.GetServiceStatus(ops_service_pb2.GetServiceStatusRequest())
    reported = {c.name: c for c in status.caches}["lookups"]
    assert reported.hits >= lookups.hits - 1 and reported.capacity == 10_000
    for i in range(10):
        await a.UpdateTask(_rename_task(task.id, f"t{i}"))
        assert (await a.GetTask(pb.GetTaskRequest(task_id=task.id))).task.title == f"t{i}"


class Told:
    """The commits replica B's listener has been told of, to tell whether B's read was
    one the notification could not have reached yet."""

    def __init__(self, running: Running) -> None:
        self.store = running.store
        self.pairs: set[tuple[str, int]] = set()
        running.store.subscribe_commits(self.pairs.update)
        self.fresh = self.late = self.bound = 0

    def delivered(self, plan_id: str, revision: int) -> bool:
        """Whether B knows of the commit, or has unread input: it must not answer from
        before it."""
        return (plan_id, revision) in self.pairs or not self.store.remembers_lookups

    async def check(self, read, expected, plan_id: str, revision: int, what: str) -> None:
        """`read()` at once gives `expected`, unless it came before the notification
        reached B; then it does once B has heard."""
        delivered = self.delivered(plan_id, revision)
        got = await read()
        if got == expected:
            self.fresh += 1
            self.bound += delivered
            return
        assert not delivered, f"{what}: {got!r} from memory although B had been told"
        self.late += 1

        async def heard() -> bool:
            return (plan_id, revision) in self.pairs

        await wait_for(heard)
        assert await read() == expected, what


def _answer(call):
    async def read():
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    return read


async def test_a_change_on_one_replica_is_seen_by_the_next_read_on_the_other(two):
    """Round after round: B reads (and remembers), A changes, B reads again at once and
    sees the change, unless PostgreSQL had not delivered the notification to B's
    listening socket yet (the window docs/storage.md describes): such a read is
    counted, and B's next read after it hears sees the change. A read after the
    notification reached B is never answered from before it."""
    (_, rb), (a, b) = two
    await _listening(rb)
    told = Told(rb)
    plan = (await a.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    made = await a.CreateTask(pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="t")))
    task, revision = made.task, made.plan_revision
    get_task = _answer(lambda: b.GetTask(pb.GetTaskRequest(task_id=task.id)))
    hits = _hits(rb)
    for i in range(ROUNDS):
        assert await get_task() == pb.GetTaskResponse(task=task)
        assert await get_task() == pb.GetTaskResponse(task=task)
        done = await a.UpdateTask(_rename_task(task.id, f"t{i}"))
        task, revision = done.task, done.plan_revision
        await told.check(get_task, pb.GetTaskResponse(task=task), plan.id, revision, f"task {i}")
    get_plan = _answer(lambda: b.GetPlan(pb.GetPlanRequest(plan_id=plan.id)))
    list_tasks = _answer(lambda: b.ListTasks(pb.ListTasksRequest(plan_id=plan.id, page_size=100)))
    for i in range(ROUNDS // 4):
        await get_plan()
        await get_plan()
        updated = (await a.UpdatePlan(_rename_plan(plan.id, f"P{i}"))).plan
        revision = updated.revision
        await told.check(get_plan, pb.GetPlanResponse(plan=updated), plan.id, revision, f"plan {i}")
        # A plan's size (ListTasks): a task created on A is listed by B.
        await list_tasks()
        await list_tasks()
        made = await a.CreateTask(
            pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title=f"n{i}"))
        )
        revision = made.plan_revision

        async def listed():
            return (await list_tasks()).total_size

        await told.check(listed, i + 2, plan.id, revision, f"list {i}")
    for i in range(ROUNDS // 4):
        made = await a.CreateTask(
            pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title=f"d{i}"))
        )
        get_made = _answer(lambda t=made.task.id: b.GetTask(pb.GetTaskRequest(task_id=t)))
        await get_made()
        await get_made()
        gone = await a.DeleteTask(pb.DeleteTaskRequest(task_id=made.task.id))
        revision = gone.plan_revision
        await told.check(get_made, grpc.StatusCode.NOT_FOUND, plan.id, revision, f"delete {i}")
    await get_plan()
    await get_plan()
    await a.DeletePlan(pb.DeletePlanRequest(plan_id=plan.id))
    await told.check(get_plan, grpc.StatusCode.NOT_FOUND, plan.id, revision + 1, "plan deleted")
    # B's reads between A's writes were answered from memory: the cache was in play; and
    # reads the notification had reached were checked.
    assert _hits(rb) - hits >= ROUNDS
    assert told.bound >= 1, (told.fresh, told.late)


async def _quiet_rename(running: Running, task_id: str, title: str) -> None:
    """A write transaction that changes a task but appends no change record (no
    mutation does today; a store-level write can)."""
    task = await running.store.lookup(lambda tx: tx.get_task(task_id))
    changed = replace(task, title=title, version=task.version + 1)
    await running.store.write(lambda tx: tx.update_task(changed, dependencies=False))


async def test_a_write_without_change_records_is_heard_by_the_other_replica(two):
    """Such a write still sends a notification, and B's lookups are emptied by it."""
    (ra, rb), (a, b) = two
    await _listening(rb)
    told = Told(rb)
    plan = (await a.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    made = await a.CreateTask(pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="t")))

    async def created() -> bool:
        return (plan.id, made.plan_revision) in told.pairs

    await wait_for(created)
    hits = _hits(rb)
    for i in range(20):
        heard = rb.store.notifications_heard
        await b.GetTask(pb.GetTaskRequest(task_id=made.task.id))
        await b.GetTask(pb.GetTaskRequest(task_id=made.task.id))
        await _quiet_rename(ra, made.task.id, f"quiet{i}")

        async def quiet_heard(before: int = heard) -> bool:
            return rb.store.notifications_heard > before

        # B's next read after hearing of it (an immediate one may precede the delivery:
        # see the test above) sees it.
        await wait_for(quiet_heard)
        got = (await b.GetTask(pb.GetTaskRequest(task_id=made.task.id))).task
        assert got.title == f"quiet{i}"
    assert _hits(rb) > hits


async def test_while_the_listener_is_down_lookups_read_the_database(two, pg_dsn):
    """B's LISTEN connection killed: A's writes are seen by B's next read (no
    notification can reach B: it reads the database), also once B listens again but
    has not caught up yet (held here by a lock on the change log); once it has, its
    lookups are answered from memory again and still see A's writes."""
    (ra, rb), (a, b) = two
    await _listening(rb)
    plan = (await a.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (
        await a.CreateTask(pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="t")))
    ).task

    async def hits_move() -> bool:
        before = _hits(rb)
        await b.GetTask(pb.GetTaskRequest(task_id=task.id))
        await b.GetTask(pb.GetTaskRequest(task_id=task.id))
        return _hits(rb) > before

    await wait_for(hits_move)  # remembered before the kill

    old_pid = rb.store.listener_pid
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        # The change log locked: B's catch-up after it listens again waits for it (A's
        # writes below append nothing to it).
        await conn.execute("BEGIN")
        await conn.execute("LOCK TABLE plan_changes IN ACCESS EXCLUSIVE MODE")
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as killer:
            cur = await killer.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE pid = %s AND application_name LIKE '%%listener'",
                (old_pid,),
            )
            assert await cur.fetchall() == [(True,)]
        for i in range(10):  # not listening, then listening but not caught up
            assert not rb.store.remembers_lookups
            await _quiet_rename(ra, task.id, f"down{i}")
            got = (await b.GetTask(pb.GetTaskRequest(task_id=task.id))).task
            assert got.title == f"down{i}", f"round {i}"
            await asyncio.sleep(0.02)

        async def relistening() -> bool:
            return rb.store.listener_pid not in (None, old_pid)

        await wait_for(relistening)
        await _quiet_rename(ra, task.id, "caught up")
        assert not rb.store.remembers_lookups
        assert (await b.GetTask(pb.GetTaskRequest(task_id=task.id))).task.title == "caught up"
        await conn.execute("COMMIT")

    await wait_for(hits_move)  # answered from memory again
    told = Told(rb)
    for j in range(20):
        await b.GetTask(pb.GetTaskRequest(task_id=task.id))
        done = await a.UpdateTask(_rename_task(task.id, f"up{j}"))
        get_task = _answer(lambda: b.GetTask(pb.GetTaskRequest(task_id=task.id)))
        await told.check(
            get_task, pb.GetTaskResponse(task=done.task), plan.id, done.plan_revision, f"up {j}"
        )


def test_an_answer_read_across_an_invalidation_is_not_remembered():
    """A lookup that read before a commit and returns after its notification was heard
    would remember what the commit changed: it is dropped."""
    lookups = RememberedLookups(10)
    left, right = socket.socketpair()
    try:
        lookups.listening(left.fileno(), 60.0)
        recorded = lookups.recorder()
        assert recorded is not None
        recorded.put(("task", "tsk_1"), "old")
        lookups.heard()  # a commit heard while the read was on its way
        lookups.remember(recorded)
        assert lookups.task("tsk_1") is None
        recorded = lookups.recorder()
        assert recorded is not None
        recorded.put(("task", "tsk_1"), "new")
        lookups.remember(recorded)
        assert lookups.task("tsk_1") == "new"
        # A notification not read yet (waiting in the socket): ask the database.
        right.send(b"N")
        assert not lookups.usable() and lookups.task("tsk_1") is None
        left.recv(1)
        assert lookups.task("tsk_1") == "new"
        lookups.not_listening()
        assert lookups.task("tsk_1") is None and len(lookups.cache) == 0
    finally:
        left.close()
        right.close()


async def test_turned_off_every_lookup_reads_the_database(pg_dsn, replica):
    """`--pg-lookups-size 0`: nothing is remembered, and the status report does not list
    the cache."""
    async with replica(pg_dsn, pg_lookups_size=0) as off:
        async with grpc.aio.insecure_channel(off.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            plan = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
            made = await stub.CreateTask(
                pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="t"))
            )
            for _ in range(5):
                got = await stub.GetTask(pb.GetTaskRequest(task_id=made.task.id))
                assert got.task == made.task
            assert "lookups" not in off.store.caches()
            assert not off.store.remembers_lookups
            assert off.store.remembered_task(made.task.id) is None
            assert off.store.listener_pid is not None  # it still listens (watches, feeds)
