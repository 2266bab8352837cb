"""What each transaction method stores and reads back (domain/store.py's docstrings)."""

from __future__ import annotations

from dataclasses import replace

from plansmith_server.domain.models import ChangeRecord, PlanStatus, TaskPriority, TaskStatus
from plansmith_server.domain.store import IdempotencyRecord, PlanQuery, TaskQuery

from .conftest import FULL_PLAN, full_task, plan, task


async def test_a_plan_reads_back_as_written_and_an_unknown_one_is_none(store):
    await store.write(lambda tx: tx.insert_plan(FULL_PLAN))
    assert await store.read(lambda tx: tx.get_plan(FULL_PLAN.id)) == FULL_PLAN
    assert await store.read(lambda tx: tx.get_plan("pln_none")) is None


async def test_update_plan_replaces_every_field(store):
    await store.write(lambda tx: tx.insert_plan(plan()))
    changed = replace(FULL_PLAN, id="pln_0")
    await store.write(lambda tx: tx.update_plan(changed))
    assert await store.read(lambda tx: tx.get_plan("pln_0")) == changed


async def test_a_task_reads_back_as_written_dependencies_in_order(store):
    await store.write(lambda tx: tx.insert_plan(plan()))
    await store.write(lambda tx: tx.insert_tasks([task(3), task(1), task(2)]))
    full = full_task("pln_0", deps=("tsk_3", "tsk_1", "tsk_2"))
    await store.write(lambda tx: tx.insert_tasks([full]))
    assert await store.read(lambda tx: tx.get_task("tsk_full")) == full
    assert await store.read(lambda tx: tx.get_task("tsk_none")) is None


async def test_plan_size_counts_tasks_and_follows_the_revision(store):
    assert await store.read(lambda tx: tx.plan_size("pln_0")) is None
    await store.write(lambda tx: tx.insert_plan(plan()))
    assert await store.read(lambda tx: tx.plan_size("pln_0")) == (1, 0)
    await store.write(lambda tx: tx.insert_tasks([task(1), task(2), task(3)]))
    assert await store.read(lambda tx: tx.plan_size("pln_0")) == (1, 3)
    assert await store.write(lambda tx: tx.bump_revision("pln_0", 5)) == 2
    assert await store.write(lambda tx: tx.bump_revision("pln_0", 6)) == 3
    await store.write(lambda tx: tx.delete_task("tsk_2"))
    assert await store.read(lambda tx: tx.plan_size("pln_0")) == (3, 2)
    assert (await store.read(lambda tx: tx.get_plan("pln_0"))).revision == 3


async def test_list_plans_pages_in_creation_order_with_filters_and_a_total(store):
    def add(tx):
        for i in range(7):
            tx.insert_plan(
                plan(
                    i,
                    project_id="prj_a" if i % 2 else "prj_b",
                    status=PlanStatus.ACTIVE if i < 4 else PlanStatus.DRAFT,
                )
            )

    await store.write(add)
    rows, total = await store.read(lambda tx: tx.list_plans(PlanQuery(limit=3)))
    assert [p.id for _, p in rows] == ["pln_0", "pln_1", "pln_2"] and total == 7
    seqs = [s for s, _ in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    rows2, total2 = await store.read(
        lambda tx: tx.list_plans(PlanQuery(after_seq=seqs[-1], limit=10))
    )
    assert [p.id for _, p in rows2] == ["pln_3", "pln_4", "pln_5", "pln_6"] and total2 == 7
    rows, total = await store.read(
        lambda tx: tx.list_plans(PlanQuery(project_id="prj_a", status=int(PlanStatus.ACTIVE)))
    )
    assert [p.id for _, p in rows] == ["pln_1", "pln_3"] and total == 2


async def test_list_tasks_filters_pages_and_counts(store):
    def add(tx):
        tx.insert_plan(plan(0))
        tx.insert_tasks(
            [
                task(
                    i,
                    status=TaskStatus.DONE if i % 3 == 0 else TaskStatus.NOT_STARTED,
                    assigned_to="a1" if i % 2 else "",
                    priority=TaskPriority.HIGH if i < 5 else TaskPriority.LOW,
                )
                for i in range(10)
            ]
        )

    await store.write(add)
    rows, total = await store.read(lambda tx: tx.list_tasks(TaskQuery("pln_0", limit=4), 10))
    assert [t.id for _, t in rows] == ["tsk_0", "tsk_1", "tsk_2", "tsk_3"] and total == 10
    rows, _ = await store.read(
        lambda tx: tx.list_tasks(TaskQuery("pln_0", after_seq=rows[-1][0], limit=100), 10)
    )
    assert [t.id for _, t in rows] == [f"tsk_{i}" for i in range(4, 10)]
    q = TaskQuery("pln_0", status=int(TaskStatus.DONE), assigned_to="a1", limit=1)
    rows, total = await store.read(lambda tx: tx.list_tasks(q, 10))
    assert [t.id for _, t in rows] == ["tsk_3"] and total == 2  # tsk_3, tsk_9
    q = TaskQuery("pln_0", priority=int(TaskPriority.LOW))
    rows, total = await store.read(lambda tx: tx.list_tasks(q, 10))
    assert [t.id for _, t in rows] == ["tsk_5", "tsk_6", "tsk_7", "tsk_8", "tsk_9"]
    assert total == 5


async def test_list_tasks_of_a_project_spans_its_plans_in_creation_order(store):
    def add(tx):
        tx.insert_plan(plan(1, project_id="prj"))
        tx.insert_plan(plan(2, project_id="prj"))
        tx.insert_plan(plan(3, project_id="other"))
        tx.insert_tasks([task(1, "pln_1")])
        tx.insert_tasks([task(2, "pln_2"), task(3, "pln_3")])
        tx.insert_tasks([task(4, "pln_1", assigned_to="a")])

    await store.write(add)
    rows, total = await store.read(lambda tx: tx.list_tasks(TaskQuery("", project_id="prj"), 0))
    assert [t.id for _, t in rows] == ["tsk_1", "tsk_2", "tsk_4"] and total == 3
    q = TaskQuery("", project_id="prj", assigned_to="a")
    rows, total = await store.read(lambda tx: tx.list_tasks(q, 0))
    assert [t.id for _, t in rows] == ["tsk_4"] and total == 1


async def test_a_plans_tasks_edges_and_parents(store):
    def add(tx):
        tx.insert_plan(plan(0))
        tx.insert_plan(plan(9))
        tx.insert_tasks([task(1), task(2, dependencies=("tsk_1",))])
        tx.insert_tasks([task(3, dependencies=("tsk_2", "tsk_1"), parent_task_id="tsk_1")])
        tx.insert_tasks([task(8, "pln_9")])

    await store.write(add)
    tasks = await store.read(lambda tx: tx.plan_tasks("pln_0"))
    assert [t.id for t in tasks] == ["tsk_1", "tsk_2", "tsk_3"]
    assert await store.read(lambda tx: tx.plan_edges("pln_0")) == {
        "tsk_2": ["tsk_1"],
        "tsk_3": ["tsk_2", "tsk_1"],
    }
    assert await store.read(lambda tx: tx.plan_parents("pln_0")) == {"tsk_3": "tsk_1"}
    found = await store.read(
        lambda tx: tx.existing_task_ids("pln_0", ["tsk_1", "tsk_3", "tsk_8", "tsk_none"])
    )
    assert found == {"tsk_1", "tsk_3"}
    assert await store.read(lambda tx: tx.dependents("tsk_1")) == ["tsk_2", "tsk_3"]
    assert await store.read(lambda tx: tx.children("tsk_1")) == ["tsk_3"]
    assert await store.read(lambda tx: tx.children("tsk_3")) == []
    assert await store.read(lambda tx: tx.plan_tasks("pln_none")) == []


async def test_update_task_rewrites_dependencies_only_when_asked(store):
    def add(tx):
        tx.insert_plan(plan(0))
        tx.insert_tasks([task(1), task(2), task(3, dependencies=("tsk_1",))])

    await store.write(add)
    current = await store.read(lambda tx: tx.get_task("tsk_3"))
    kept = replace(current, title="renamed", dependencies=("tsk_2",), version=2)
    await store.write(lambda tx: tx.update_task(kept, dependencies=False))
    got = await store.read(lambda tx: tx.get_task("tsk_3"))
    assert got.title == "renamed" and got.dependencies == ("tsk_1",)
    moved = replace(kept, dependencies=("tsk_2", "tsk_1"), version=3)
    await store.write(lambda tx: tx.update_task(moved))
    assert await store.read(lambda tx: tx.get_task("tsk_3")) == moved
    assert await store.read(lambda tx: tx.dependents("tsk_2")) == ["tsk_3"]


async def test_delete_task_takes_the_edges_onto_it(store):
    def add(tx):
        tx.insert_plan(plan(0))
        tx.insert_tasks([task(1), task(2), task(3, dependencies=("tsk_1", "tsk_2"))])

    await store.write(add)
    await store.write(lambda tx: tx.delete_task("tsk_1"))
    assert await store.read(lambda tx: tx.get_task("tsk_1")) is None
    assert (await store.read(lambda tx: tx.get_task("tsk_3"))).dependencies == ("tsk_2",)
    assert await store.read(lambda tx: tx.dependents("tsk_1")) == []


async def test_delete_plan_takes_its_tasks_and_keeps_its_change_log(store):
    def add(tx):
        tx.insert_plan(plan(0))
        tx.insert_plan(plan(1))
        tx.insert_tasks([task(1), task(2, dependencies=("tsk_1",)), task(3, "pln_1")])
        tx.append_changes("pln_0", 1, [ChangeRecord("PLAN_CREATED", "plan", "pln_0", {})], 1)

    await store.write(add)
    assert await store.write(lambda tx: tx.delete_plan("pln_0")) == 2
    assert await store.read(lambda tx: tx.get_plan("pln_0")) is None
    assert await store.read(lambda tx: tx.get_task("tsk_1")) is None
    assert await store.read(lambda tx: tx.get_task("tsk_2")) is None
    assert await store.read(lambda tx: tx.plan_size("pln_0")) is None
    assert (await store.read(lambda tx: tx.get_task("tsk_3"))).plan_id == "pln_1"
    assert len(await store.read(lambda tx: tx.changes("pln_0", 0, 10))) == 1


async def test_completed_tasks_are_done_with_hours_newest_first(store):
    def add(tx):
        tx.insert_plan(plan(1, project_id="prj"))
        tx.insert_plan(plan(2, project_id="prj"))
        done = TaskStatus.DONE
        tx.insert_tasks(
            [
                task(1, "pln_1", status=done, actual_hours=2.0),
                task(2, "pln_1", status=done, actual_hours=0.0),  # no hours: not history
                task(3, "pln_1", status=TaskStatus.IN_PROGRESS, actual_hours=1.0),
                task(4, "pln_2", status=done, actual_hours=3.0),
                task(5, "pln_1", status=done, actual_hours=1.5),
            ]
        )

    await store.write(add)
    got = await store.read(lambda tx: tx.completed_tasks(plan_id="pln_1"))
    assert [t.id for t in got] == ["tsk_5", "tsk_1"]
    got = await store.read(lambda tx: tx.completed_tasks(project_id="prj"))
    assert [t.id for t in got] == ["tsk_5", "tsk_4", "tsk_1"]
    got = await store.read(lambda tx: tx.completed_tasks(project_id="prj", limit=2))
    assert [t.id for t in got] == ["tsk_5", "tsk_4"]


async def test_change_log_by_revision_then_in_order_appended(store):
    def add(tx):
        tx.insert_plan(plan(0))
        tx.append_changes(
            "pln_0",
            1,
            [ChangeRecord("PLAN_CREATED", "plan", "pln_0", {"n": 1})],
            10,
        )
        tx.append_changes(
            "pln_0",
            2,
            [
                ChangeRecord("TASK_CREATED", "task", "tsk_b", {"deep": {"list": [1, 2]}}),
                ChangeRecord("TASK_CREATED", "task", "tsk_a", {}),
            ],
            11,
        )
        tx.append_changes("pln_0", 3, [ChangeRecord("TASK_DELETED", "task", "tsk_a", {})], 12)

    await store.write(add)
    log = await store.read(lambda tx: tx.changes("pln_0", 0, 100))
    assert [(r, c.entity_id) for r, c in log] == [
        (1, "pln_0"),
        (2, "tsk_b"),
        (2, "tsk_a"),
        (3, "tsk_a"),
    ]
    assert log[1][1] == ChangeRecord("TASK_CREATED", "task", "tsk_b", {"deep": {"list": [1, 2]}})
    assert [r for r, _ in await store.read(lambda tx: tx.changes("pln_0", 1, 2))] == [2, 2]
    assert await store.read(lambda tx: tx.changes("pln_none", 0, 10)) == []


async def test_idempotency_records_read_back_and_are_purged_by_age(store):
    old = IdempotencyRecord("req-old", "CreatePlan", "fp1", {"a": [1, {"b": None}]}, 100)
    new = IdempotencyRecord("req-new", "DeleteTask", "fp2", {}, 200)

    def add(tx):
        tx.put_idempotency(old)
        tx.put_idempotency(new)

    await store.write(add)
    assert await store.read(lambda tx: tx.get_idempotency("req-old")) == old
    assert await store.read(lambda tx: tx.get_idempotency("req-none")) is None
    assert await store.write(lambda tx: tx.purge_idempotency(150)) == 1
    assert await store.read(lambda tx: tx.get_idempotency("req-old")) is None
    assert await store.purge_idempotency(201) == 1
    assert await store.read(lambda tx: tx.get_idempotency("req-new")) is None


async def test_positions_grow_and_are_not_reused_after_a_delete(store):
    await store.write(lambda tx: tx.insert_plan(plan(0)))
    await store.write(lambda tx: tx.insert_tasks([task(1), task(2)]))
    rows, _ = await store.read(lambda tx: tx.list_tasks(TaskQuery("pln_0"), 2))
    last = rows[-1][0]
    await store.write(lambda tx: tx.delete_task("tsk_2"))
    await store.write(lambda tx: tx.insert_tasks([task(3)]))
    rows, _ = await store.read(lambda tx: tx.list_tasks(TaskQuery("pln_0", after_seq=last), 2))
    assert [t.id for _, t in rows] == ["tsk_3"]
