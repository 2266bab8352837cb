"""The execution and replanning methods of both clients against the real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plansmith import PreconditionFailedError
from plansmith.v1 import execution_pb2, task_pb2


async def test_start_fail_apply_complete_and_history(client):
    plan = await client.create_plan(
        "Pipeline",
        agents=[
            {"id": "ann", "capabilities": ["Python"]},
            {"id": "bob", "capabilities": ["Python"], "capacity": 2},
        ],
    )
    assert [a.capacity for a in plan.agents] == [0, 2]
    first = await client.create_task("extract", plan_id=plan.id, estimated_hours=2)
    t = await client.create_task(
        "load", plan_id=plan.id, estimated_hours=2, dependencies=[first.id]
    )
    with pytest.raises(PreconditionFailedError) as e:
        await client.start_task(t.id, "ann")
    assert [v.type for v in e.value.violations] == ["DEPENDENCY_NOT_DONE"]
    started = await client.start_task(first.id, "ann")
    assert started.status == task_pb2.TASK_STATUS_IN_PROGRESS
    dry = await client.report_task_failure(first.id, "connection reset by peer", dry_run=True)
    assert dry.record.state == execution_pb2.REPLAN_STATE_DRY_RUN
    r = await client.report_task_failure(
        first.id, "rate limit", category="RESOURCE_EXHAUSTION", retry_after=1.5
    )
    assert r.record.decision == execution_pb2.REPLAN_DECISION_RETRY
    assert r.record.failure.retry_after.ToMilliseconds() == 1500
    assert (await client.get_task(first.id)).HasField("not_before")
    cleared = await client.update_task(first.id, not_before=None)
    assert not cleared.HasField("not_before")
    away = await client.set_agent_availability(
        plan.id,
        "ann",
        available=False,
        until=datetime.now(UTC) + timedelta(hours=1),
        reason="training",
    )
    assert not away.availability.available and away.availability.HasField("until")
    assert [x.new_agent_id for x in away.records] == ["bob"]
    beat = await client.heartbeat(plan.id, "bob")
    assert beat.availability.available and beat.timeout.seconds == 60
    history = await client.get_replan_records(plan.id, per_page=1)
    assert history.total_size == 2 and len(history.records) == 1
    second = await client.get_replan_records(plan.id, per_page=1, page=2)
    assert second.records[0].trigger == execution_pb2.REPLAN_TRIGGER_AGENT_UNAVAILABLE


async def test_a_proposal_is_applied_through_the_client(client):
    plan = await client.create_plan("Proposals", agents=[{"id": "ann"}])
    await client.update_plan(plan.id, replan_policy={"confidence_threshold": 0.99})
    t = await client.create_task("flaky", plan_id=plan.id, estimated_hours=1)
    await client.start_task(t.id, "ann")
    r = await client.report_task_failure(t.id, "timed out", category="TRANSIENT")
    assert r.record.state == execution_pb2.REPLAN_STATE_PROPOSED
    applied = await client.apply_replan(plan.id, r.record.id, etag=r.task.etag)
    assert applied.record.state == execution_pb2.REPLAN_STATE_APPLIED
    assert (await client.get_task(t.id)).status == task_pb2.TASK_STATUS_TODO
    assert (await client.get_plan(plan.id)).replan_policy.confidence_threshold == 0.99
