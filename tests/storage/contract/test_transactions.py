"""How a store runs transactions: atomic writes, errors, serialized writes, lookups,
commit listeners, closing (domain/store.py's `Store`)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest

from plansmith_server.domain.models import ChangeRecord
from plansmith_server.domain.store import IdempotencyRecord, TaskQuery
from plansmith_server.errors import UnavailableError

from .conftest import plan, task

CHANGE = [ChangeRecord("TASK_UPDATED", "task", "tsk_1", {})]


class Boom(Exception):
    pass


async def seeded(store) -> None:
    def add(tx):
        tx.insert_plan(plan(0))
        tx.insert_tasks([task(1), task(2, dependencies=("tsk_1",))])
        tx.append_changes("pln_0", 1, [ChangeRecord("PLAN_CREATED", "plan", "pln_0", {})], 1)

    await store.write(add)


async def test_a_write_that_raises_leaves_nothing_behind_and_its_error_reaches_the_caller(
    store,
):
    await seeded(store)
    before = await store.read(
        lambda tx: (
            tx.get_plan("pln_0"),
            tx.plan_tasks("pln_0"),
            tx.plan_size("pln_0"),
            tx.changes("pln_0", 0, 100),
            tx.plan_edges("pln_0"),
        )
    )

    def everything_then_fail(tx):
        tx.insert_plan(plan(1))
        tx.insert_tasks([task(3), task(4, "pln_1")])
        rev = tx.bump_revision("pln_0", 2)
        t1 = tx.get_task("tsk_1")
        tx.update_task(replace(t1, title="changed", version=2))
        tx.update_plan(replace(tx.get_plan("pln_0"), name="changed"))
        tx.delete_task("tsk_1")  # takes tsk_2's edge onto it
        tx.append_changes("pln_0", rev, CHANGE, 2)
        tx.put_idempotency(IdempotencyRecord("req-1", "M", "fp", {}, 2))
        tx.purge_idempotency(10**18)
        assert tx.get_task("tsk_1") is None  # reads its own writes
        raise Boom("after writing")

    with pytest.raises(Boom):
        await store.write(everything_then_fail)
    after = await store.read(
        lambda tx: (
            tx.get_plan("pln_0"),
            tx.plan_tasks("pln_0"),
            tx.plan_size("pln_0"),
            tx.changes("pln_0", 0, 100),
            tx.plan_edges("pln_0"),
        )
    )
    assert after == before
    assert await store.read(lambda tx: tx.get_plan("pln_1")) is None
    assert await store.read(lambda tx: tx.get_task("tsk_3")) is None
    assert await store.read(lambda tx: tx.get_idempotency("req-1")) is None
    # The store goes on: the same write without the failure commits.
    await store.write(lambda tx: tx.insert_plan(plan(1)))
    assert (await store.read(lambda tx: tx.get_plan("pln_1"))).name == "plan 1"


async def test_a_failed_write_does_not_undo_concurrent_ones(store):
    await store.write(lambda tx: tx.insert_plan(plan(0)))

    def fails(tx):
        tx.insert_tasks([task(99)])
        raise Boom

    results = await asyncio.gather(
        *(store.write(lambda tx, i=i: tx.insert_tasks([task(i)])) for i in range(10)),
        store.write(fails),
        *(store.write(lambda tx, i=i: tx.insert_tasks([task(i)])) for i in range(10, 20)),
        return_exceptions=True,
    )
    assert [type(r) for r in results].count(Boom) == 1
    ids = {t.id for t in await store.read(lambda tx: tx.plan_tasks("pln_0"))}
    assert ids == {f"tsk_{i}" for i in range(20)}


async def test_writes_are_serialized_each_seeing_the_ones_before(store):
    await store.write(lambda tx: tx.insert_plan(plan(0)))

    def bump(tx):
        before = tx.plan_size("pln_0")[0]
        after = tx.bump_revision("pln_0", 1)
        assert after == before + 1
        return after

    revisions = await asyncio.gather(*(store.write(bump) for _ in range(50)))
    assert sorted(revisions) == list(range(2, 52))
    assert (await store.read(lambda tx: tx.plan_size("pln_0")))[0] == 51


async def test_lookup_answers_as_read_and_sees_every_commit(store):
    await seeded(store)
    assert (await store.lookup(lambda tx: tx.get_task("tsk_1"))).title == "task 1"
    assert await store.lookup(lambda tx: tx.plan_size("pln_0")) == (1, 2)
    t1 = await store.read(lambda tx: tx.get_task("tsk_1"))
    await store.write(lambda tx: tx.update_task(replace(t1, title="renamed", version=2)))
    await store.write(lambda tx: tx.bump_revision("pln_0", 2))
    assert (await store.lookup(lambda tx: tx.get_task("tsk_1"))).title == "renamed"
    assert await store.lookup(lambda tx: tx.plan_size("pln_0")) == (2, 2)
    assert await store.lookup(lambda tx: tx.get_task("tsk_none")) is None


async def test_a_remembered_task_is_never_older_than_the_last_commit(store):
    await seeded(store)
    await store.lookup(lambda tx: tx.get_task("tsk_1"))
    got = store.remembered_task("tsk_1")
    assert got is None or got.title == "task 1"
    t1 = await store.read(lambda tx: tx.get_task("tsk_1"))
    await store.write(lambda tx: tx.update_task(replace(t1, title="renamed", version=2)))
    got = store.remembered_task("tsk_1")
    assert got is None or got.title == "renamed"
    await store.write(lambda tx: tx.delete_task("tsk_1"))
    assert store.remembered_task("tsk_1") is None


async def test_commit_listeners_hear_each_committed_revision_once_on_the_loop(store):
    await store.write(lambda tx: tx.insert_plan(plan(0)))
    await store.write(lambda tx: tx.insert_plan(plan(1)))
    heard: list[list[tuple[str, int]]] = []
    threads: set[int] = set()

    def listener(pairs):
        threads.add(threading.get_ident())
        heard.append(pairs)

    unsubscribe = store.subscribe_commits(listener)

    def change(plan_id):
        def fn(tx):
            rev = tx.bump_revision(plan_id, 1)
            tx.append_changes(plan_id, rev, CHANGE, 1)
            return rev

        return fn

    def fails(tx):
        rev = tx.bump_revision("pln_1", 1)
        tx.append_changes("pln_1", rev, CHANGE, 1)
        raise Boom

    def two_plans(tx):
        for p in ("pln_0", "pln_1"):
            change(p)(tx)

    results = await asyncio.gather(
        store.write(change("pln_0")),
        store.write(fails),
        store.write(change("pln_1")),
        store.write(lambda tx: tx.insert_tasks([task(1)])),  # no change records: not heard
        store.write(two_plans),
        return_exceptions=True,
    )
    assert isinstance(results[1], Boom)
    committed = [pair for pairs in heard for pair in pairs]
    assert sorted(committed) == [("pln_0", 2), ("pln_0", 3), ("pln_1", 2), ("pln_1", 3)]
    assert threads == {threading.get_ident()}
    assert all(pairs for pairs in heard)
    # Heard by the time the write's caller resumes: a watcher never misses its own write.
    count = len(committed)
    await store.write(change("pln_0"))
    assert [p for pairs in heard for p in pairs][count:] == [("pln_0", 4)]
    unsubscribe()
    await store.write(change("pln_0"))
    assert [p for pairs in heard for p in pairs][count:] == [("pln_0", 4)]
    unsubscribe()  # twice: harmless


async def test_a_listener_that_raises_affects_neither_the_write_nor_other_listeners(store, caplog):
    await store.write(lambda tx: tx.insert_plan(plan(0)))
    heard = []

    def broken(pairs):
        raise RuntimeError("listener bug")

    store.subscribe_commits(broken)
    store.subscribe_commits(heard.append)

    def change(tx):
        tx.append_changes("pln_0", tx.bump_revision("pln_0", 1), CHANGE, 1)
        return "done"

    with caplog.at_level("ERROR"):
        assert await store.write(change) == "done"
    assert heard == [[("pln_0", 2)]]
    assert "listener bug" in caplog.text
    assert (await store.read(lambda tx: tx.plan_size("pln_0")))[0] == 2


async def test_bulk_hints_change_nothing_of_the_outcome(store):
    await store.write(lambda tx: tx.insert_plan(plan(0)), bulk=True)
    await store.write(lambda tx: tx.insert_tasks([task(i) for i in range(50)]), bulk=True)
    rows, total = await store.read(
        lambda tx: tx.list_tasks(TaskQuery("pln_0", limit=100), 50), bulk=True
    )
    assert total == 50 and len(rows) == 50


async def test_ping_answers_and_a_closed_store_is_unavailable(store):
    await store.ping()
    await store.write(lambda tx: tx.insert_plan(plan(0)))
    await store.close()
    with pytest.raises(UnavailableError):
        await store.read(lambda tx: tx.get_plan("pln_0"))
    with pytest.raises(UnavailableError):
        await store.write(lambda tx: tx.insert_plan(plan(1)))
    with pytest.raises(UnavailableError):
        await store.ping()
