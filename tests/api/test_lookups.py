"""GetTask, GetPlan and a cached ListTasks page answer from memory while nothing has been
committed, and see every commit at once: this server's, another server's on the same
file, or another program's."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import field_mask_pb2

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as ps
from plansmith_server.app import Running, start
from plansmith_server.config import Config

# SQLite's lookups remembered between commits (the wal-index header); PostgreSQL's,
# emptied by notification, are tested in tests/postgres/test_lookups.py.
pytestmark = pytest.mark.sqlite_only

T = task_pb2.Task


@pytest.fixture
async def two(db_path: str) -> AsyncIterator[tuple[Running, Running]]:
    a = await start(Config(listen="127.0.0.1:0", db_path=db_path))
    b = await start(Config(listen="127.0.0.1:0", db_path=db_path))
    try:
        yield a, b
    finally:
        await b.stop(grace=0.5)
        await a.stop(grace=0.5)


class Statements:
    """The SQL statements a server's event-loop reads run on plans and tasks (not the
    health probe's, which may run at any time)."""

    def __init__(self, running: Running) -> None:
        self.seen: list[str] = []

        def seen(sql: str) -> None:
            if "FROM tasks" in sql or "FROM plans" in sql:
                self.seen.append(sql)

        running.store._inline.set_trace_callback(seen)

    def take(self) -> list[str]:
        out, self.seen = self.seen, []
        return out


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def test_lookups_read_again_run_no_sql_until_something_is_committed(server, plans):
    plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))).task
    sql = Statements(server)
    for _ in range(2):
        await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
        plan = (await plans.GetPlan(ps.GetPlanRequest(plan_id=plan.id))).plan
        await plans.ListTasks(ps.ListTasksRequest(plan_id=plan.id))
    first = sql.take()
    assert first, "the first reads ask the database"
    for _ in range(3):
        assert (await plans.GetTask(ps.GetTaskRequest(task_id=task.id))).task == task
        assert (await plans.GetPlan(ps.GetPlanRequest(plan_id=plan.id))).plan == plan
        assert [
            t.id for t in (await plans.ListTasks(ps.ListTasksRequest(plan_id=plan.id))).tasks
        ] == [task.id]
    assert sql.take() == []

    await plans.UpdateTask(
        ps.UpdateTaskRequest(task=T(id=task.id, title="b"), update_mask=mask("title"))
    )
    assert (await plans.GetTask(ps.GetTaskRequest(task_id=task.id))).task.title == "b"
    assert sql.take(), "a commit sends the next lookup to the database"


async def test_a_deleted_task_is_not_found_at_once(server, plans):
    plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))).task
    for _ in range(2):
        await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
    await plans.DeleteTask(ps.DeleteTaskRequest(task_id=task.id))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unknown_ids_are_not_remembered(server, plans):
    """A not-found answer is not kept: ids that name nothing cannot fill the memory."""
    for i in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await plans.GetTask(ps.GetTaskRequest(task_id=f"tsk_none{i}"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(server.store.lookups) == 0
    # A found one is kept: the store does remember here.
    plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))).task
    await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
    assert len(server.store.lookups) == 1


async def test_writes_by_another_server_on_the_same_file_show_at_once(two):
    a, b = two
    async with (
        grpc.aio.insecure_channel(a.address) as ch_a,
        grpc.aio.insecure_channel(b.address) as ch_b,
    ):
        reader = plan_service_pb2_grpc.PlanServiceStub(ch_a)
        writer = plan_service_pb2_grpc.PlanServiceStub(ch_b)
        plan = (await writer.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
        task = (
            await writer.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))
        ).task

        async def read_twice():
            for _ in range(2):
                t = (await reader.GetTask(ps.GetTaskRequest(task_id=task.id))).task
                p = (await reader.GetPlan(ps.GetPlanRequest(plan_id=plan.id))).plan
                page = await reader.ListTasks(ps.ListTasksRequest(plan_id=plan.id))
            return t, p, [x.title for x in page.tasks]

        plan = (await writer.GetPlan(ps.GetPlanRequest(plan_id=plan.id))).plan
        assert await read_twice() == (task, plan, ["a"])
        await writer.UpdateTask(
            ps.UpdateTaskRequest(task=T(id=task.id, title="b"), update_mask=mask("title"))
        )
        t, _, titles = await read_twice()
        assert (t.title, titles) == ("b", ["b"])
        await writer.UpdatePlan(
            ps.UpdatePlanRequest(plan=plan_pb2.Plan(id=plan.id, name="Q"), update_mask=mask("name"))
        )
        await writer.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="c")))
        _, p, titles = await read_twice()
        assert (p.name, titles) == ("Q", ["b", "c"])


async def test_a_write_by_another_program_shows_at_once(server, plans, db_path):
    plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))).task
    for _ in range(2):
        await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
    code = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute(\"UPDATE tasks SET title = 'from outside', version = version + 1 "
        'WHERE id = ?", (sys.argv[2],)); c.commit()'
    )
    other = await asyncio.create_subprocess_exec(sys.executable, "-c", code, db_path, task.id)
    assert await asyncio.wait_for(other.wait(), 60) == 0
    got = (await plans.GetTask(ps.GetTaskRequest(task_id=task.id))).task
    assert got.title == "from outside"


async def test_without_a_readable_wal_index_every_lookup_asks_the_database(server, plans):
    """Where the header cannot be read (an unknown format, here; a commit being written,
    for a moment) nothing is remembered, and reads stay right."""
    plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))).task
    await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
    server.store._wal_index.usable = False
    sql = Statements(server)
    for _ in range(3):
        assert (await plans.GetTask(ps.GetTaskRequest(task_id=task.id))).task == task
        assert sql.take(), "each lookup reads the database"
    assert len(server.store.lookups) == 0
    await plans.UpdateTask(
        ps.UpdateTaskRequest(task=T(id=task.id, title="b"), update_mask=mask("title"))
    )
    assert (await plans.GetTask(ps.GetTaskRequest(task_id=task.id))).task.title == "b"
    # Pages: cached by revision all the same, each read asking the revision once.
    pages = server.tasks.task_pages
    before = (pages.hits, pages.misses)
    for _ in range(2):
        listed = await plans.ListTasks(ps.ListTasksRequest(plan_id=plan.id))
        assert [t.title for t in listed.tasks] == ["b"]
        assert len([q for q in sql.take() if "revision, task_count" in q]) == 1
    await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="c")))
    listed = await plans.ListTasks(ps.ListTasksRequest(plan_id=plan.id))
    assert [t.title for t in listed.tasks] == ["b", "c"]
    assert (pages.hits - before[0], pages.misses - before[1]) == (1, 2)


async def test_the_header_is_read_before_the_statements_it_vouches_for(server, plans, db_path):
    """A commit landing between the header's read and the statement: what the statement
    reads is newer than the header says, and must not be remembered as current once the
    header moves (had the header been read after the statement, the older answer would
    be served until the next commit)."""
    import sqlite3

    plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))).task
    store = server.store
    index = store._wal_index
    other = sqlite3.connect(db_path, isolation_level=None)
    commit_next: list[str] = []

    class CommitAfterRead:
        """The store's index; another connection commits right after the next read."""

        usable = True

        def header(self):
            header = index.header()
            if commit_next:
                other.execute(
                    "UPDATE tasks SET title = ?, version = version + 1 WHERE id = ?",
                    (commit_next.pop(), task.id),
                )
            return header

        def close(self):
            index.close()

    def read():
        return store.read(lambda tx: tx.get_task(task.id), snapshot=False)

    store._wal_index = CommitAfterRead()
    try:
        assert (await read()).title == "a"
        # A commit first, so that the next read asks the database (a read finding the
        # header unchanged answers from memory, the commit after it notwithstanding).
        await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="z")))
        commit_next.append("b")
        seen = [(await read()).title, (await read()).title]
        seen.append(store.remembered_task(task.id).title)
        seen.append((await plans.GetTask(ps.GetTaskRequest(task_id=task.id))).task.title)
    finally:
        store._wal_index = index
        other.close()
    # The statement ran after the commit and saw "b"; remembered under the header read
    # before it, it is dropped at the next read, which reads "b" again.
    assert seen == ["b", "b", "b", "b"]


async def test_a_commit_right_after_the_statement_is_seen_by_the_next_lookup(
    server, plans, db_path
):
    """The other side of the race: the statement reads "a", then another connection
    commits "b" before the read is over. Remembered under the header read before the
    statement, "a" is dropped at the next read (remembered under a header read after
    it, "a" would be served until the next commit)."""
    import sqlite3

    plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))).task
    other = sqlite3.connect(db_path, isolation_level=None)

    def read_then_commit(tx):
        found = tx.get_task(task.id)
        other.execute(
            "UPDATE tasks SET title = 'b', version = version + 1 WHERE id = ?", (task.id,)
        )
        return found

    try:
        assert (await server.store.read(read_then_commit, snapshot=False)).title == "a"
    finally:
        other.close()
    assert server.store.remembered_task(task.id) is None
    assert (await plans.GetTask(ps.GetTaskRequest(task_id=task.id))).task.title == "b"


async def test_a_remembered_task_is_not_answered_after_a_commit(server, plans):
    plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))).task
    assert server.store.remembered_task(task.id) is None  # never read: not remembered
    await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
    assert server.store.remembered_task(task.id).title == "a"
    misses = server.store.lookups.misses
    await plans.UpdateTask(
        ps.UpdateTaskRequest(task=T(id=task.id, title="b"), update_mask=mask("title"))
    )
    assert server.store.remembered_task(task.id) is None
    assert (await plans.GetTask(ps.GetTaskRequest(task_id=task.id))).task.title == "b"
    assert server.store.lookups.misses == misses + 1  # the first try counts no miss


async def test_large_tasks_and_plans_weigh_more_in_the_caches(server, plans):
    """The caches are bounded in 4 KiB blocks, not entries: the largest plan the API
    accepts (~1.3 MB of agents) weighs hundreds of typical ones, so a few thousand such
    plans cannot make the server hold gigabytes."""
    from plansmith.v1 import agent_pb2
    from plansmith_server.lru import blocks

    agents = [
        agent_pb2.Agent(id=f"a{i}", capabilities=[f"{j:03d}" + "c" * 97 for j in range(64)])
        for i in range(200)
    ]
    big = (
        await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="Big", agents=agents)))
    ).plan
    task = (
        await plans.CreateTask(
            ps.CreateTaskRequest(plan_id=big.id, task=T(title="t", description="d" * 10_000))
        )
    ).task
    for _ in range(2):
        await plans.GetPlan(ps.GetPlanRequest(plan_id=big.id))
        await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
    lookups, tasks = server.store.lookups, server.store.task_cache
    # 12,800 capabilities of 100 characters, each a str object: ~2 MB, ~500 blocks.
    assert len(lookups) == 2 and 450 < lookups.size < 600
    assert len(tasks) == 1 and tasks.size == 3  # 10,000 characters and a few strings
    assert blocks(0) == blocks(4095) == 1 and blocks(4096) == 2


async def test_get_task_answers_a_remembered_task_without_reading(server, plans):
    """The fast path is taken: with the read path broken, a remembered task is still
    answered; after a commit it is not remembered, and the read path is asked."""
    plan = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    task = (await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="a")))).task
    await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
    asked: list[str] = []

    async def broken(task_id: str):
        asked.append(task_id)
        raise RuntimeError("the read path was taken")

    real = server.tasks.get_task
    server.tasks.get_task = broken
    try:
        assert (await plans.GetTask(ps.GetTaskRequest(task_id=task.id))).task == task
        assert asked == []
        await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan.id, task=T(title="b")))
        with pytest.raises(grpc.aio.AioRpcError):
            await plans.GetTask(ps.GetTaskRequest(task_id=task.id))
        assert asked == [task.id]
    finally:
        server.tasks.get_task = real
