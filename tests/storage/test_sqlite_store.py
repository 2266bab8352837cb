"""The SQLite store on a real file: group commit, failures inside and at COMMIT, caching,
closing. The store is used directly here; the API tests cover it through the server."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from plansmith_server.domain.models import Plan, Task
from plansmith_server.domain.store import TaskQuery
from plansmith_server.errors import NotFoundError, UnavailableError
from plansmith_server.lru import LruCache
from plansmith_server.storage.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path):
    s = SqliteStore(str(tmp_path / "store.db"))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def plan(i: int = 0) -> Plan:
    return Plan(id=f"pln_{i}", project_id="", name=f"plan {i}")


def task(i: int, plan_id: str = "pln_0", **kw) -> Task:
    return Task(id=f"tsk_{i}", plan_id=plan_id, title=f"task {i}", **kw)


async def count_tasks(store: SqliteStore, plan_id: str = "pln_0") -> int:
    size = await store.read(lambda tx: tx.plan_size(plan_id))
    return size[1] if size else None


@pytest.mark.parametrize("bulk", [False, True], ids=["on-loop", "on-thread"])
async def test_concurrent_writes_share_commit_groups(store, bulk):
    await store.write(lambda tx: tx.insert_plan(plan()))
    before = store.commit_groups
    await asyncio.gather(
        *(store.write(lambda tx, i=i: tx.insert_tasks([task(i)]), bulk=bulk) for i in range(200))
    )
    groups = store.commit_groups - before
    assert await count_tasks(store) == 200
    # Queued while the first group committed, the rest go in very few groups.
    assert 1 <= groups <= 10, groups


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_writes_that_reach_the_store_while_the_loop_is_busy_join_the_group(store):
    """A group waits while the event loop has other work (calls on their way to the
    store), so a write that arrives a turn of the loop later still joins it."""
    await store.write(lambda tx: tx.insert_plan(plan()))
    before = store.commit_groups
    loop = asyncio.get_running_loop()
    late: list[asyncio.Task[None]] = []

    def busy_then_write() -> None:
        spin(0.0003)  # a call being handled: the loop is busy this turn
        late.append(loop.create_task(store.write(lambda tx: tx.insert_tasks([task(2)]))))

    first = loop.create_task(store.write(lambda tx: tx.insert_tasks([task(1)])))
    loop.call_soon(spin, 0.0003)
    loop.call_soon(lambda: loop.call_soon(busy_then_write))
    await first
    await late[0]
    assert await count_tasks(store) == 2
    assert store.commit_groups - before == 1


@pytest.mark.parametrize("bulk", [False, True], ids=["on-loop", "on-thread"])
async def test_a_write_that_raises_rolls_back_alone(store, bulk):
    await store.write(lambda tx: tx.insert_plan(plan()))

    def half_then_fail(tx):
        tx.insert_tasks([task(1000)])
        raise NotFoundError("task", "tsk_x")

    results = await asyncio.gather(
        store.write(lambda tx: tx.insert_tasks([task(1)])),
        store.write(half_then_fail, bulk=bulk),
        store.write(lambda tx: tx.insert_tasks([task(2)])),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], NotFoundError)
    ids = await store.read(lambda tx: tx.existing_task_ids("pln_0", ["tsk_1", "tsk_2", "tsk_1000"]))
    assert ids == {"tsk_1", "tsk_2"}


@pytest.mark.parametrize("bulk", [False, True], ids=["on-loop", "on-thread"])
async def test_a_failing_commit_fails_every_write_of_its_group_and_keeps_none(store, bulk):
    """A deferred foreign key is only checked at COMMIT: a real failing COMMIT."""
    await store.write(lambda tx: tx.insert_plan(plan()))

    def dangling_edge(tx):
        tx._c.execute("PRAGMA defer_foreign_keys = ON")
        tx._c.execute(
            "INSERT INTO task_dependencies (plan_id, task_id, depends_on, position) "
            "VALUES ('pln_0', 'tsk_nobody', 'tsk_nothing', 0)"
        )

    results = await asyncio.gather(
        store.write(lambda tx: tx.insert_tasks([task(1)])),
        store.write(dangling_edge, bulk=bulk),
        store.write(lambda tx: tx.insert_tasks([task(2)])),
        return_exceptions=True,
    )
    assert all(isinstance(r, UnavailableError) for r in results), results
    assert "commit failed" in str(results[0])
    assert await count_tasks(store) == 0
    # The store goes on: the next group commits.
    await store.write(lambda tx: tx.insert_tasks([task(3)]))
    assert await count_tasks(store) == 1


@pytest.mark.parametrize("bulk", [False, True], ids=["on-loop", "on-thread"])
async def test_a_write_that_ends_the_transaction_fails_its_whole_group(store, bulk):
    """If SQLite ends the group's transaction (as it does on some I/O errors), writes that
    already ran were rolled back with it: none of them may report success."""
    await store.write(lambda tx: tx.insert_plan(plan()))

    def ends_transaction(tx):
        tx._c.execute("ROLLBACK")

    results = await asyncio.gather(
        store.write(lambda tx: tx.insert_tasks([task(1)])),
        store.write(ends_transaction, bulk=bulk),
        store.write(lambda tx: tx.insert_tasks([task(2)])),
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) for r in results), results
    assert isinstance(results[0], UnavailableError) and isinstance(results[2], UnavailableError)
    assert await count_tasks(store) == 0
    await store.write(lambda tx: tx.insert_tasks([task(3)]))
    assert await count_tasks(store) == 1


@pytest.mark.parametrize("bulk", [False, True], ids=["on-loop", "on-thread"])
async def test_a_group_that_fails_unexpectedly_fails_its_writes_and_the_committer_goes_on(
    store, bulk, caplog
):
    """An error outside any write's own code (here the writer connection closed under the
    group, so even SAVEPOINT fails) answers every write of the group UNAVAILABLE; the
    committer survives, so later writes get an answer too instead of waiting forever."""
    await store.write(lambda tx: tx.insert_plan(plan()))

    def closes_the_connection(tx):
        tx._c.close()

    with caplog.at_level("ERROR", logger="plansmith_server.storage.sqlite"):
        results = await asyncio.gather(
            store.write(lambda tx: tx.insert_tasks([task(1)])),
            store.write(closes_the_connection, bulk=bulk),
            store.write(lambda tx: tx.insert_tasks([task(2)])),
            return_exceptions=True,
        )
    assert [type(r) for r in results] == [UnavailableError] * 3, results
    assert "write group failed" in caplog.text
    later = await asyncio.wait_for(
        asyncio.gather(store.write(lambda tx: tx.insert_tasks([task(3)])), return_exceptions=True),
        timeout=10,
    )
    assert isinstance(later[0], UnavailableError)  # answered, not left waiting
    with sqlite3.connect(store.path) as conn:  # nothing of the failed group was kept
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0


async def test_a_write_cancelled_before_its_group_runs_is_skipped(store):
    await store.write(lambda tx: tx.insert_plan(plan()))
    ran: list[int] = []

    def insert(i):
        def body(tx):
            ran.append(i)
            tx.insert_tasks([task(i)])

        return body

    first = asyncio.ensure_future(store.write(insert(1)))
    second = asyncio.ensure_future(store.write(insert(2)))
    await asyncio.sleep(0)  # both queued; the committer has not taken them yet
    second.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    assert ran == [1]
    assert await count_tasks(store) == 1


async def test_reads_see_a_consistent_snapshot_and_fresh_versions(store):
    await store.write(lambda tx: tx.insert_plan(plan()))
    await store.write(lambda tx: tx.insert_tasks([task(i) for i in range(5)]))

    def first_page(tx):
        return tx.list_tasks(TaskQuery("pln_0", limit=10), tx.plan_size("pln_0")[1])

    page, total = await store.read(first_page)
    assert total == 5 and [t.title for _, t in page] == [f"task {i}" for i in range(5)]
    # An update bumps the version: the cached decoded task is not served any more.
    changed = replace(page[2][1], title="renamed", version=2)
    await store.write(lambda tx: tx.update_task(changed))
    page, _ = await store.read(first_page)
    assert page[2][1].title == "renamed"
    assert (await store.read(lambda tx: tx.get_task("tsk_2"))).title == "renamed"
    assert await store.read(lambda tx: tx.get_task("tsk_missing")) is None


async def test_lookups_without_a_snapshot_see_commits_and_leave_no_transaction(store):
    await store.write(lambda tx: tx.insert_plan(plan()))
    await store.write(lambda tx: tx.insert_tasks([task(1)]))
    assert (await store.read(lambda tx: tx.get_task("tsk_1"), snapshot=False)).version == 1
    old = await store.read(lambda tx: tx.get_task("tsk_1"))
    changed = replace(old, title="renamed", version=2)
    await store.write(lambda tx: tx.update_task(changed))
    assert (await store.read(lambda tx: tx.get_task("tsk_1"), snapshot=False)).title == "renamed"
    assert store._inline is not None and not store._inline.in_transaction
    # Read again with nothing committed since: answered from memory, without SQL.
    statements: list[str] = []
    store._inline.set_trace_callback(statements.append)
    again = await store.read(lambda tx: tx.get_task("tsk_1"), snapshot=False)
    store._inline.set_trace_callback(None)
    assert again.title == "renamed" and statements == []

    def broken(tx):
        tx._one("SELECT * FROM no_such_table")

    with pytest.raises(UnavailableError):  # an SQLite error is the store's, not a bug
        await store.read(broken, snapshot=False)
    await store.close()
    with pytest.raises(UnavailableError):
        await store.read(lambda tx: tx.get_task("tsk_1"), snapshot=False)


async def test_bulk_reads_run_off_the_event_loop_and_agree(store):
    await store.write(lambda tx: tx.insert_plan(plan()))
    await store.write(lambda tx: tx.insert_tasks([task(i) for i in range(50)]))
    import threading

    def tasks_and_thread(tx):
        return tx.plan_tasks("pln_0"), threading.current_thread()

    inline, inline_thread = await store.read(tasks_and_thread)
    bulk, bulk_thread = await store.read(tasks_and_thread, bulk=True)
    assert inline_thread is threading.main_thread()
    assert bulk_thread.name.startswith("plansmith-db-reader")
    assert inline == bulk and len(bulk) == 50


async def test_close_commits_accepted_writes_then_refuses(tmp_path):
    path = str(tmp_path / "close.db")
    s = SqliteStore(path)
    await s.open()
    await s.write(lambda tx: tx.insert_plan(plan()))
    pending = [
        asyncio.ensure_future(s.write(lambda tx, i=i: tx.insert_tasks([task(i)])))
        for i in range(20)
    ]
    await asyncio.sleep(0)
    await s.close()
    assert all(p.done() and p.exception() is None for p in pending)
    with pytest.raises(UnavailableError):
        await s.write(lambda tx: tx.insert_plan(plan(1)))
    with pytest.raises(UnavailableError):
        await s.read(lambda tx: tx.get_plan("pln_0"))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 20


async def test_in_memory_store_reads_and_writes_on_one_connection():
    s = SqliteStore(":memory:")
    await s.open()
    try:
        await s.write(lambda tx: tx.insert_plan(plan()))
        await asyncio.gather(
            *(s.write(lambda tx, i=i: tx.insert_tasks([task(i)])) for i in range(10))
        )
        assert await count_tasks(s) == 10
        assert (await s.read(lambda tx: tx.get_plan("pln_0"))).name == "plan 0"
    finally:
        await s.close()


def test_lru_cache_evicts_the_least_recently_used():
    c: LruCache[str, int] = LruCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # "a" is now the most recent
    c.put("c", 3)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3
    assert len(c) == 2 and c.hits == 3 and c.misses == 1
    with pytest.raises(ValueError):
        LruCache(0)


def test_lru_get_many_counts_and_refreshes_like_get():
    c: LruCache[str, int] = LruCache(3)
    for k, v in (("a", 1), ("b", 2), ("c", 3)):
        c.put(k, v)
    assert c.get_many(["a", "x", "b"]) == [1, None, 2]  # "a", "b" now the most recent
    assert (c.hits, c.misses) == (2, 1)
    c.put("d", 4)  # evicts "c", the least recently used
    assert c.get_many(["c", "a", "b", "d"]) == [None, 1, 2, 4]
    # All present (the path that runs in C): counted and refreshed the same way.
    hits = c.hits
    assert c.get_many(["b", "a"]) == [2, 1]  # now "d" is the least recently used
    assert c.hits == hits + 2
    c.put("e", 5)
    assert c.get("d") is None and c.get_many(["a", "b", "e"]) == [1, 2, 5]
    # Falsy values are values, not misses (only None is).
    z: LruCache[str, int] = LruCache(2)
    z.put("zero", 0)
    assert z.get_many(["zero"]) == [0] and (z.hits, z.misses) == (1, 0)


def test_lru_with_a_weight_keeps_the_sum_of_weights_within_maxsize():
    c: LruCache[str, str] = LruCache(10, weight=len)
    c.put("a", "xxxx")
    c.put("b", "yyyy")
    assert c.get("a") == "xxxx"  # "b" is now the least recently used
    c.put("c", "zzzz")  # 12 > 10: "b" goes
    assert c.get("b") is None and c.get("a") == "xxxx" and c.weight == 8
    c.put("a", "x")  # a replaced value is weighed anew
    assert c.weight == 5 and c.get("a") == "x"
    c.put("big", "w" * 11)  # heavier than the whole cache: not kept, nothing pushed out
    assert c.get("big") is None and len(c) == 2 and c.weight == 5
    c.put("d", "d" * 9)  # 14: the least recently used goes first, until it fits
    assert c.get("c") is None and c.weight == 10 and len(c) == 2
    c.put("e", "ee")  # 12: "a" (1) is not enough, "d" goes too
    assert c.get("a") is None and c.get("d") is None and c.weight == 2 and len(c) == 1


def test_lru_weighs_an_entry_once_when_it_is_put():
    """Eviction and replacement subtract the weight taken at put: a weight function
    that would answer differently later (or cost much) is not asked again."""
    asked: list[str] = []

    def weigh(value: str) -> int:
        asked.append(value)
        return len(value)

    c: LruCache[str, str] = LruCache(10, weight=weigh)
    c.put("a", "xxxx")
    c.put("b", "yyyyyy")
    c.put("a", "zz")  # replaced: its old weight (4) leaves, the new one (2) comes in
    assert c.weight == 8
    c.put("c", "wwwww")  # 13: "b" (6) goes
    assert c.get("b") is None and c.weight == 7
    assert asked == ["xxxx", "yyyyyy", "zz", "wwwww"]
    c.clear()
    assert (len(c), c.weight, c.size) == (0, 0, 0)
    c.put("d", "v" * 10)
    assert c.weight == 10


def test_lru_get_can_leave_a_miss_uncounted():
    c: LruCache[str, int] = LruCache(2)
    assert c.get("a", count_miss=False) is None and c.misses == 0
    c.put("a", 1)
    assert c.get("a", count_miss=False) == 1 and c.hits == 1


@pytest.mark.parametrize("kind", ["task", "plan"])
def test_every_text_field_counts_in_a_models_weight(kind):
    """Each string field, string list, mapping and agent list of Task and Plan adds to
    `approx_bytes` (checked field by field from the dataclass: a field added later
    that holds text is checked too)."""
    import dataclasses
    import typing

    from plansmith_server.domain.models import Agent, Plan, Task

    cls = Task if kind == "task" else Plan
    base = (
        cls(id="x", plan_id="p", title="t") if cls is Task else cls(id="x", project_id="", name="n")
    )
    hints = typing.get_type_hints(cls)
    checked = []
    for f in dataclasses.fields(cls):
        hint = str(hints[f.name])
        big = "y" * 5000
        if hint == "<class 'str'>":
            value = big
        elif "tuple[str" in hint:
            value = (big,)
        elif "Mapping[str, str]" in hint:
            value = {"k": big}
        elif "Agent" in hint:
            value = (Agent(id="a", capabilities=(big,)),)
        else:
            continue
        grown = dataclasses.replace(base, **{f.name: value})
        assert grown.approx_bytes >= base.approx_bytes + 4900, f.name
        checked.append(f.name)
    assert len(checked) >= (10 if cls is Task else 8), checked


async def test_migration_3_backfills_task_counts_and_triggers_keep_them(tmp_path):
    from plansmith_server.storage.migrations import MIGRATIONS, statements

    path = str(tmp_path / "old.db")
    with sqlite3.connect(path, isolation_level=None) as conn:  # a database at version 2
        for version, script in enumerate(MIGRATIONS[:2], start=1):
            for stmt in statements(script):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute(
            "INSERT INTO plans (id, project_id, name, description, objectives, constraints, "
            "metadata, status, agents, create_time, update_time, version, revision) "
            "VALUES ('pln_0', '', 'old', '', '[]', '[]', '{}', 1, '[]', 0, 0, 1, 1)"
        )
        for i in range(3):
            conn.execute(
                "INSERT INTO tasks (id, plan_id, title, description, priority, status, "
                "estimated_hours, actual_hours, progress, assigned_to, required_capabilities, "
                "parent_task_id, metadata, optimistic_hours, pessimistic_hours, "
                "acceptance_criteria, create_time, update_time, version) VALUES "
                f"('tsk_{i}', 'pln_0', 't', '', 2, 1, 0, 0, 0, '', '[]', '', '{{}}', 0, 0, "
                "'[]', 0, 0, 1)"
            )
    s = SqliteStore(path)
    await s.open()
    try:
        assert await count_tasks(s) == 3
        await s.write(lambda tx: tx.insert_tasks([task(10), task(11)]))
        await s.write(lambda tx: tx.delete_task("tsk_0"))
        assert await count_tasks(s) == 4
        with sqlite3.connect(path) as conn:
            real = conn.execute("SELECT count(*) FROM tasks WHERE plan_id = 'pln_0'").fetchone()
            assert real[0] == 4
            assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        await s.close()


def test_migration_statements_keep_trigger_bodies_whole():
    from plansmith_server.storage.migrations import statements

    script = (
        "CREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n"
        "  SELECT 1;\n  SELECT 2;\nEND;\n"
    )
    assert [s.split()[1] for s in statements(script)] == ["TABLE", "TRIGGER"]
    with pytest.raises(ValueError):
        statements("CREATE TABLE b (x")


def test_task_dicts_carry_every_field_and_round_trip():
    import dataclasses

    from plansmith_server.domain.models import Schedule, TaskPriority

    full = task(1, dependencies=("a",), metadata={"k": "v"}, schedule=Schedule(1.0, 2.5))
    full = dataclasses.replace(full, priority=TaskPriority.HIGH, acceptance_criteria=("ok",))
    for t in (full, task(2)):
        d = t.to_dict()
        assert set(d) == {f.name for f in dataclasses.fields(Task)}
        assert Task.from_dict(d) == t


@pytest.mark.parametrize("bulk", [False, True], ids=["on-loop", "on-thread"])
async def test_writes_refused_while_another_process_holds_the_lock_change_nothing(
    tmp_path, monkeypatch, bulk
):
    """BEGIN IMMEDIATE gives up after the busy timeout: UNAVAILABLE (worth a retry),
    nothing written, and the next write after the lock is released succeeds."""
    from plansmith_server.storage import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "_WRITER_BUSY_MS", 50)
    path = str(tmp_path / "locked.db")
    s = SqliteStore(path)
    await s.open()
    try:
        await s.write(lambda tx: tx.insert_plan(plan()))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer (e.g. a second process) holds it
        try:
            with pytest.raises(UnavailableError, match="locked"):
                await s.write(lambda tx: tx.insert_tasks([task(1)]), bulk=bulk)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await count_tasks(s) == 0
        await s.write(lambda tx: tx.insert_tasks([task(2)]), bulk=bulk)
        assert await count_tasks(s) == 1
    finally:
        await s.close()


async def test_a_write_waits_for_another_writers_lock_off_the_event_loop(tmp_path):
    """BEGIN IMMEDIATE is tried on the event loop without waiting; while another process
    holds the write lock, the group waits for it on the writer thread, the loop keeps
    serving reads, and the write commits once the lock is released."""
    path = str(tmp_path / "shared.db")
    s = SqliteStore(path)
    await s.open()
    try:
        await s.write(lambda tx: tx.insert_plan(plan()))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            write = asyncio.create_task(s.write(lambda tx: tx.insert_tasks([task(1)])))
            for _ in range(20):  # the committer takes the write and hands it over
                await asyncio.sleep(0)
            for _ in range(5):
                assert await count_tasks(s) == 0  # reads are served meanwhile
            assert not write.done()
        finally:
            other.execute("ROLLBACK")
            other.close()
        await asyncio.wait_for(write, timeout=10)
        assert await count_tasks(s) == 1
        # The writer's busy timeout is back for the writer thread's waits.
        assert s._writer is not None
        assert s._writer.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        await s.write(lambda tx: tx.insert_tasks([task(2)]))
        assert await count_tasks(s) == 2
    finally:
        await s.close()


async def test_stores_opening_a_new_file_at_once_both_come_up(tmp_path):
    """Migrations take the write lock and read the schema version under it: two servers
    started together on a new file do not both create the tables; nor does switching
    the new file to WAL fail for one of them ("database is locked", seen under load).
    Many fresh files, as the race is a matter of timing."""
    from plansmith_server.storage.migrations import MIGRATIONS

    for i in range(20):
        path = str(tmp_path / f"new-{i}.db")
        stores = [SqliteStore(path), SqliteStore(path), SqliteStore(path)]
        opened = await asyncio.gather(*(s.open() for s in stores), return_exceptions=True)
        try:
            assert [o for o in opened if o is not None] == []
            await stores[0].write(lambda tx: tx.insert_plan(plan()))
            assert all([await s.read(lambda tx: tx.get_plan("pln_0")) for s in stores])
        finally:
            for s in stores:
                await s.close()
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        conn.close()


@pytest.mark.parametrize("bulk", [False, True], ids=["on-loop", "on-thread"])
async def test_the_store_tells_how_long_writes_are_kept_from_the_lock(tmp_path, monkeypatch, bulk):
    """Both ways a group waits for another writer's lock are seen; a write or the probe
    that gets the lock clears it; the probe leaves the lock free."""
    from plansmith_server.storage import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "_WRITER_BUSY_MS", 50)
    path = str(tmp_path / "locked.db")
    s = SqliteStore(path)
    await s.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await s.write(lambda tx: tx.insert_plan(plan()))
        assert await s.write_lock_blocked_for() == 0
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(UnavailableError, match="locked"):
            await s.write(lambda tx: tx.insert_tasks([task(1)]), bulk=bulk)
        assert s.write_lock.waiting == 0 and s.write_lock.since is not None
        first = await s.write_lock_blocked_for()  # the probe cannot get it either
        assert first > 0 and await s.write_lock_blocked_for() >= first
        other.execute("ROLLBACK")
        assert await s.write_lock_blocked_for() == 0  # the probe got it, and let go:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.execute("BEGIN IMMEDIATE")  # a write that gets the lock clears it too
        with pytest.raises(UnavailableError, match="locked"):
            await s.write(lambda tx: tx.insert_tasks([task(2)]), bulk=bulk)
        other.execute("ROLLBACK")
        await s.write(lambda tx: tx.insert_tasks([task(3)]), bulk=bulk)
        assert s.write_lock.since is None
    finally:
        other.close()
        await s.close()


@pytest.mark.parametrize(
    "value",
    [
        ["backend", "python"],
        {"team": "payments", "epic": "checkout-v2", "a": 1},
        {"b": [1, 2.5, None, True], "a": {"z": "é ü \u2603 \n\"'", "y": -0.0}},
        [1e300, float("inf"), float("nan"), 10**20],
    ],
)
def test_json_columns_are_written_as_the_standard_encoder_writes_them(value):
    """The text stored is what release 1 stored (keys sorted, compact, ASCII)."""
    from plansmith_server.storage.sqlite_tx import _dumps

    expected = json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert _dumps(value) == expected
