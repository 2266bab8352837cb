"""The store's part of execution: agents' availability and replan records, the new fields
of plans, agents and tasks (each store the same)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from plansmith_server.domain.failures import FailureCategory
from plansmith_server.domain.models import (
    Agent,
    Availability,
    ReplanRecord,
    ReplanState,
    ReplanTrigger,
)
from plansmith_server.domain.policy import RecoveryRule, ReplanDecision, ReplanPolicy

from .conftest import FULL_PLAN, full_task, plan, task


def record(i: int, plan_id: str = "pln_0", task_id: str = "tsk_1", **kw) -> ReplanRecord:
    values = dict(
        id=f"rpl_{i}",
        plan_id=plan_id,
        revision=2,
        task_id=task_id,
        category=1,
        decision=1,
        confidence=0.95,
        reason="why",
        state=ReplanState.APPLIED,
        trigger=ReplanTrigger.TASK_FAILURE,
        create_time=100 + i,
    )
    values.update(kw)
    return ReplanRecord(**values)


async def test_new_fields_of_plans_agents_and_tasks_read_back(store):
    policy = ReplanPolicy(
        0.7,
        (
            RecoveryRule(
                FailureCategory.TRANSIENT, "lib:", ("a=b",), (ReplanDecision.RETRY,), 2, 9.5
            ),
        ),
    )
    p = replace(FULL_PLAN, agents=(Agent("a1", "Ann", ("python",), 3),), replan_policy=policy)
    await store.write(lambda tx: tx.insert_plan(p))
    assert await store.read(lambda tx: tx.get_plan(p.id)) == p
    t = replace(full_task(p.id), not_before=123, outputs={"rows": "42"})
    await store.write(lambda tx: tx.insert_tasks([t]))
    assert await store.read(lambda tx: tx.get_task(t.id)) == t
    cleared = replace(t, not_before=0, outputs={}, version=3)
    await store.write(lambda tx: tx.update_task(cleared, dependencies=False))
    assert await store.read(lambda tx: tx.get_task(t.id)) == cleared


async def test_availability_is_per_plan_and_agent_and_heartbeats_go_stale(store):
    await store.write(lambda tx: tx.insert_plan(plan(0)))
    await store.write(lambda tx: tx.insert_plan(plan(1)))
    ann = Availability("ann", True, 0, "", 50)
    away = Availability("bob", False, 500, "vacation", 10)
    await store.write(lambda tx: tx.put_availability("pln_0", ann))
    await store.write(lambda tx: tx.put_availability("pln_0", away))
    await store.write(lambda tx: tx.put_availability("pln_1", replace(ann, last_heartbeat=20)))
    got = await store.read(lambda tx: tx.agent_availability("pln_0"))
    assert got == {"ann": ann, "bob": away}
    # Only available agents that sent heartbeats, oldest first.
    stale = await store.read(lambda tx: tx.stale_heartbeats(60))
    assert stale == [("pln_1", "ann", 20), ("pln_0", "ann", 50)]
    back = replace(away, available=True, timed_out=False, last_heartbeat=70)
    await store.write(lambda tx: tx.put_availability("pln_0", back))
    assert (await store.read(lambda tx: tx.agent_availability("pln_0")))["bob"] == back
    await store.write(lambda tx: tx.delete_plan("pln_0"))
    assert await store.read(lambda tx: tx.agent_availability("pln_0")) == {}


async def test_replan_records_page_in_order_filter_by_task_and_update(store):
    await store.write(lambda tx: tx.insert_plan(plan(0)))
    await store.write(lambda tx: tx.insert_tasks([task(1), task(2)]))
    failure = {
        "category": 3,
        "message": "dupes",
        "retry_after_s": 0.0,
        "evidence": {},
        "facts_added": [],
        "facts_removed": [],
    }
    records = [
        record(1, failure=failure, tasks_added=("tsk_9",), tasks_changed=("tsk_1",)),
        record(2, task_id="tsk_2", state=ReplanState.PROPOSED),
        record(3, not_before=77, agent_id="ann", new_agent_id="bob", attempt=2),
    ]
    for r in records:
        await store.write(lambda tx, r=r: tx.insert_replan_record(r))
    page, total = await store.read(lambda tx: tx.replan_records("pln_0", "", 0, 2))
    assert [r for _, r in page] == records[:2] and total == 3
    rest, _ = await store.read(lambda tx: tx.replan_records("pln_0", "", page[-1][0], 2))
    assert [r for _, r in rest] == records[2:]
    mine, n = await store.read(lambda tx: tx.replan_records("pln_0", "tsk_1", 0, 10))
    assert [r.id for _, r in mine] == ["rpl_1", "rpl_3"] and n == 2
    assert await store.read(lambda tx: tx.task_replan_records("tsk_2")) == [records[1]]
    applied = replace(records[1], state=ReplanState.APPLIED, applied_revision=5)
    await store.write(lambda tx: tx.update_replan_record(applied))
    assert await store.read(lambda tx: tx.get_replan_record("rpl_2")) == applied
    assert await store.read(lambda tx: tx.get_replan_record("rpl_none")) is None


async def test_a_failed_write_leaves_no_record_or_availability(store):
    await store.write(lambda tx: tx.insert_plan(plan(0)))

    def fail(tx):
        tx.insert_replan_record(record(1))
        tx.put_availability("pln_0", Availability("ann", False))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.write(fail)
    assert await store.read(lambda tx: tx.get_replan_record("rpl_1")) is None
    assert await store.read(lambda tx: tx.agent_availability("pln_0")) == {}
