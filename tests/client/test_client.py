"""The ergonomic layer against the real server; every test runs on both clients."""

from __future__ import annotations

import pytest

from plansmith import (
    ConflictError,
    EtagMismatchError,
    IdempotencyKeyReusedError,
    PreconditionFailedError,
    ResourceNotFoundError,
    ValidationError,
)
from plansmith.v1 import plan_pb2, task_pb2


async def test_plan_lifecycle(client):
    plan = await client.create_plan(
        "Launch",
        project_id="web",
        description="Ship it",
        objectives=["go live"],
        metadata={"team": "a"},
        agents=["alice", {"id": "bob", "capabilities": ["k8s"]}],
    )
    assert isinstance(plan, plan_pb2.Plan)
    assert plan.id.startswith("pln_")
    assert plan.status == plan_pb2.PLAN_STATUS_DRAFT
    assert [a.id for a in plan.agents] == ["alice", "bob"]

    got = await client.get_plan(plan.id)
    assert got == plan

    updated = await client.update_plan(plan.id, status="ACTIVE", description="")
    assert updated.status == plan_pb2.PLAN_STATUS_ACTIVE
    assert updated.description == ""  # named in the mask: cleared
    assert updated.name == "Launch"  # not named: kept
    assert list(updated.objectives) == ["go live"]

    deleted = await client.delete_plan(plan.id)
    assert deleted.plan_id == plan.id
    with pytest.raises(ResourceNotFoundError):
        await client.get_plan(plan.id)


async def test_tasks_enums_and_dependencies(client):
    plan = await client.create_plan("P", agents=["alice"])
    a = await client.create_task(
        "design", plan_id=plan.id, priority="HIGH", estimated_hours=4, assigned_to="alice"
    )
    b = await client.create_task(
        "build", plan_id=plan.id, priority=task_pb2.TASK_PRIORITY_LOW, dependencies=[a.id]
    )
    assert a.priority == task_pb2.TASK_PRIORITY_HIGH
    assert b.priority == task_pb2.TASK_PRIORITY_LOW
    assert list(b.dependencies) == [a.id]

    t = await client.update_task(a.id, status="in_progress", progress=40, actual_hours=1.5)
    assert t.status == task_pb2.TASK_STATUS_IN_PROGRESS
    assert (t.progress, t.actual_hours, t.title) == (40, 1.5, "design")
    assert (await client.get_task(a.id)) == t

    batch = await client.batch_create_tasks(
        plan.id,
        [
            {"id": "r1", "title": "test", "dependencies": [b.id]},
            {"id": "r2", "title": "release", "dependencies": ["r1"], "priority": "CRITICAL"},
        ],
    )
    assert [x.title for x in batch] == ["test", "release"]
    assert list(batch[1].dependencies) == [batch[0].id]

    high = await client.get_tasks(plan.id, priority="HIGH")
    assert [x.id for x in high.tasks] == [a.id]

    with pytest.raises(ValueError, match="TaskPriority"):
        await client.create_task("x", plan_id=plan.id, priority="URGENT")


async def test_paging(client):
    plan = await client.create_plan("P")
    ids = [(await client.create_task(f"t{i}", plan_id=plan.id)).id for i in range(5)]

    first = await client.get_tasks(plan.id, per_page=2)
    assert [t.id for t in first.tasks] == ids[:2]
    assert first.total_size == 5 and first.next_page_token
    by_token = await client.get_tasks(plan.id, per_page=2, page=first.next_page_token)
    assert [t.id for t in by_token.tasks] == ids[2:4]
    by_number = await client.get_tasks(plan.id, per_page=2, page=3)
    assert [t.id for t in by_number.tasks] == ids[4:]
    past_end = await client.get_tasks(plan.id, per_page=2, page=9)
    assert list(past_end.tasks) == [] and past_end.total_size == 5

    assert [t.id for t in await client.collect("iter_tasks", plan.id, per_page=2)] == ids
    await client.create_plan("Q", project_id="other")
    names = [p.name for p in await client.collect("iter_plans", per_page=1)]
    assert names == ["P", "Q"]
    only = await client.get_plans(project_id="other")
    assert [p.name for p in only.plans] == ["Q"]


async def test_errors_carry_details(client):
    with pytest.raises(ResourceNotFoundError) as nf:
        await client.get_task("tsk_missing")
    err = nf.value
    assert (err.resource_type, err.resource_id) == ("task", "tsk_missing")
    assert err.reason == "TASK_NOT_FOUND" and err.domain == "plansmith.dev"
    assert err.error_metadata["resource_id"] == "tsk_missing"
    assert len(err.request_id) == 32
    assert err.method == "/plansmith.v1.PlanService/GetTask"
    assert err.code().name == "NOT_FOUND"

    with pytest.raises(ValidationError) as bad:
        await client.create_plan("")
    fields = [v.field for v in bad.value.validation_errors]
    assert any("name" in f for f in fields)

    plan = await client.create_plan("P")
    await client.update_plan(plan.id, name="P2")
    with pytest.raises(EtagMismatchError) as stale:
        await client.update_plan(plan.id, name="P3", etag=plan.etag)
    assert isinstance(stale.value, ConflictError) and stale.value.reason == "ETAG_MISMATCH"

    await client.create_plan("A", request_id="key-1")
    with pytest.raises(IdempotencyKeyReusedError) as reused:
        await client.create_plan("B", request_id="key-1")
    assert isinstance(reused.value, ConflictError)

    a = await client.create_task("a", plan_id=plan.id)
    await client.create_task("b", plan_id=plan.id, dependencies=[a.id])
    with pytest.raises(PreconditionFailedError) as pre:
        await client.delete_task(a.id)
    assert pre.value.reason == "TASK_HAS_DEPENDENTS"
    assert pre.value.violations and pre.value.violations[0].type
    forced = await client.delete_task(a.id, force=True)
    assert len(forced.detached_task_ids) == 1


async def test_same_request_id_returns_first_result(client):
    first = await client.create_plan("Once", request_id="same")
    again = await client.create_plan("Once", request_id="same")
    assert again.id == first.id
    assert (await client.get_plans()).total_size == 1


async def test_update_needs_a_field(client):
    with pytest.raises(ValueError, match="at least one field"):
        await client.update_task("tsk_x")


async def test_raw_stub_is_reachable_and_intercepted(client, faults):
    from plansmith.v1 import plan_service_pb2 as pb

    plan = await client.create_plan("P")
    stub = client.client.plans
    request = pb.GetPlanRequest(plan_id=plan.id)
    if client.is_async:
        response = await stub.GetPlan(request)
    else:
        import asyncio

        response = await asyncio.to_thread(stub.GetPlan, request)
    assert response.plan.id == plan.id
    assert "x-request-id" in faults.metadata["GetPlan"][-1]  # through the interceptors


async def test_create_task_pins_the_agent_with_the_typed_field(client):
    plan = await client.create_plan("Pins", agents=["ann"])
    pinned = await client.create_task("a", plan_id=plan.id, assigned_to="ann", pinned=True)
    assert pinned.pinned and pinned.metadata["plansmith.pinned"] == "true"
    plain = await client.create_task("b", plan_id=plan.id)
    assert not plain.pinned and "plansmith.pinned" not in plain.metadata
