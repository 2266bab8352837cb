"""PlanService plans: CRUD, validation, etags, idempotency, paging, the change log."""

from __future__ import annotations

import asyncio
import base64
import json
import math

import grpc
import pytest
from google.protobuf import field_mask_pb2

from plansmith.v1 import agent_pb2, plan_pb2, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from tests.conftest import details_of


def new_plan(**kw) -> plan_pb2.Plan:
    kw.setdefault("name", "Launch")
    return plan_pb2.Plan(**kw)


async def create(plans, **kw) -> plan_pb2.Plan:
    return (await plans.CreatePlan(pb.CreatePlanRequest(plan=new_plan(**kw)))).plan


async def test_create_get_roundtrip(plans):
    agents = [agent_pb2.Agent(id="ann", name="Ann", capabilities=["React"])]
    p = await create(
        plans,
        project_id="web",
        description="New site",
        objectives=["ship"],
        constraints=["within 2 weeks"],
        metadata={"team": "a"},
        agents=agents,
    )
    assert p.id.startswith("pln_")
    assert p.status == plan_pb2.PLAN_STATUS_DRAFT
    assert p.revision == 1 and p.etag
    assert p.create_time.seconds > 0 and p.create_time == p.update_time
    got = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert got == p


async def test_create_reports_every_violation_at_once(plans):
    bad = plan_pb2.Plan(
        name="  ",
        description="x" * 10_001,
        objectives=["ok", ""],
        metadata={"k": "v" * 2000},
        status=99,
        agents=[agent_pb2.Agent(id="a"), agent_pb2.Agent(id="a"), agent_pb2.Agent(id="")],
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.CreatePlan(pb.CreatePlanRequest(plan=bad))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    d = details_of(e.value)
    fields = {v.field for v in d["BadRequest"].field_violations}
    assert {
        "plan.name",
        "plan.description",
        "plan.objectives[1]",
        "plan.metadata['k']",
        "plan.status",
        "plan.agents[1].id",
        "plan.agents[2].id",
    } <= fields
    assert d["ErrorInfo"].reason == "INVALID_ARGUMENT"
    assert d["ErrorInfo"].domain == "plansmith.dev"
    listed = await plans.ListPlans(pb.ListPlansRequest())
    assert listed.total_size == 0  # nothing was created


async def test_get_missing_is_not_found_with_resource_info(plans):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.GetPlan(pb.GetPlanRequest(plan_id="pln_nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    d = details_of(e.value)
    assert d["ResourceInfo"].resource_name == "pln_nope"
    assert d["ResourceInfo"].resource_type == "plansmith.dev/plan"
    assert d["ErrorInfo"].reason == "PLAN_NOT_FOUND"


async def test_get_with_empty_id_is_invalid(plans):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.GetPlan(pb.GetPlanRequest())
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(e.value)["BadRequest"].field_violations[0].field == "plan_id"


async def test_update_changes_only_masked_fields(plans):
    p = await create(plans, description="old", objectives=["a"])
    r = await plans.UpdatePlan(
        pb.UpdatePlanRequest(
            plan=plan_pb2.Plan(id=p.id, name="Renamed", description="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
    )
    assert r.plan.name == "Renamed"
    assert r.plan.description == "old"
    assert list(r.plan.objectives) == ["a"]
    assert r.plan.etag != p.etag
    assert r.plan.revision == 2


async def test_update_with_empty_mask_uses_populated_fields(plans):
    p = await create(plans, description="old")
    r = await plans.UpdatePlan(
        pb.UpdatePlanRequest(plan=plan_pb2.Plan(id=p.id, status=plan_pb2.PLAN_STATUS_ACTIVE))
    )
    assert r.plan.status == plan_pb2.PLAN_STATUS_ACTIVE
    assert r.plan.name == "Launch" and r.plan.description == "old"


async def test_update_rejects_unknown_and_immutable_mask_paths(plans):
    p = await create(plans)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.UpdatePlan(
            pb.UpdatePlanRequest(
                plan=plan_pb2.Plan(id=p.id, name="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["name", "revision", "bogus"]),
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    texts = [v.description for v in details_of(e.value)["BadRequest"].field_violations]
    assert any("'revision'" in t for t in texts) and any("'bogus'" in t for t in texts)
    again = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert again == p


async def test_stale_etag_is_aborted_and_changes_nothing(plans):
    p = await create(plans)
    mask = field_mask_pb2.FieldMask(paths=["name"])
    await plans.UpdatePlan(
        pb.UpdatePlanRequest(plan=plan_pb2.Plan(id=p.id, name="B", etag=p.etag), update_mask=mask)
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.UpdatePlan(
            pb.UpdatePlanRequest(
                plan=plan_pb2.Plan(id=p.id, name="C", etag=p.etag), update_mask=mask
            )
        )
    assert e.value.code() == grpc.StatusCode.ABORTED
    assert details_of(e.value)["ErrorInfo"].reason == "ETAG_MISMATCH"
    with pytest.raises(grpc.aio.AioRpcError) as e2:
        await plans.DeletePlan(pb.DeletePlanRequest(plan_id=p.id, etag=p.etag))
    assert e2.value.code() == grpc.StatusCode.ABORTED
    got = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert got.name == "B"


async def test_task_changes_do_not_stale_the_plan_etag_but_bump_revision(plans):
    p = await create(plans)
    await plans.CreateTask(pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="t")))
    got = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert got.etag == p.etag
    assert got.revision == p.revision + 1


async def test_removing_an_agent_with_assigned_tasks_is_refused(plans):
    p = await create(plans, agents=[agent_pb2.Agent(id="ann"), agent_pb2.Agent(id="bob")])
    await plans.CreateTask(
        pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="t", assigned_to="bob"))
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.UpdatePlan(
            pb.UpdatePlanRequest(
                plan=plan_pb2.Plan(id=p.id, agents=[agent_pb2.Agent(id="ann")]),
                update_mask=field_mask_pb2.FieldMask(paths=["agents"]),
            )
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    d = details_of(e.value)
    assert d["ErrorInfo"].reason == "AGENT_IN_USE"
    assert d["PreconditionFailure"].violations[0].description == "assigned to 'bob'"


async def test_create_is_idempotent_by_request_id(plans):
    req = pb.CreatePlanRequest(plan=new_plan(project_id="idem"), request_id="req-1")
    first = (await plans.CreatePlan(req)).plan
    second = (await plans.CreatePlan(req)).plan
    assert first == second
    listed = await plans.ListPlans(pb.ListPlansRequest(project_id="idem"))
    assert listed.total_size == 1


async def test_request_id_reused_for_another_request_is_refused(plans):
    await plans.CreatePlan(pb.CreatePlanRequest(plan=new_plan(), request_id="req-2"))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.CreatePlan(
            pb.CreatePlanRequest(plan=new_plan(name="Other"), request_id="req-2")
        )
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info = details_of(e.value)["ErrorInfo"]
    assert info.reason == "IDEMPOTENCY_KEY_REUSED"
    assert info.metadata["first_method"] == "CreatePlan"
    assert (await plans.ListPlans(pb.ListPlansRequest())).total_size == 1


async def test_update_retry_with_same_request_id_is_not_an_etag_conflict(plans):
    p = await create(plans)
    req = pb.UpdatePlanRequest(
        plan=plan_pb2.Plan(id=p.id, name="B", etag=p.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        request_id="upd-1",
    )
    a = (await plans.UpdatePlan(req)).plan
    b = (await plans.UpdatePlan(req)).plan  # a retry after a lost response
    assert a == b and a.revision == 2


async def test_delete_plan_removes_its_tasks(plans):
    p = await create(plans)
    t = await plans.CreateTask(pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="t")))
    r = await plans.DeletePlan(pb.DeletePlanRequest(plan_id=p.id))
    assert r.deleted_task_count == 1
    for call in (
        plans.GetPlan(pb.GetPlanRequest(plan_id=p.id)),
        plans.GetTask(pb.GetTaskRequest(task_id=t.task.id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_filters_and_pages(plans):
    for i in range(7):
        await create(
            plans,
            name=f"p{i}",
            project_id="a" if i % 2 == 0 else "b",
            status=plan_pb2.PLAN_STATUS_ACTIVE if i < 3 else plan_pb2.PLAN_STATUS_DRAFT,
        )
    r = await plans.ListPlans(pb.ListPlansRequest(project_id="a", page_size=2))
    names = [p.name for p in r.plans]
    assert r.total_size == 4
    while r.next_page_token:
        r = await plans.ListPlans(
            pb.ListPlansRequest(project_id="a", page_size=2, page_token=r.next_page_token)
        )
        names += [p.name for p in r.plans]
    assert names == ["p0", "p2", "p4", "p6"]
    r = await plans.ListPlans(pb.ListPlansRequest(status=plan_pb2.PLAN_STATUS_ACTIVE))
    assert [p.name for p in r.plans] == ["p0", "p1", "p2"]
    assert r.next_page_token == ""


async def test_changing_filters_between_pages_is_invalid(plans):
    for i in range(3):
        await create(plans, name=f"p{i}", project_id="a")
    r = await plans.ListPlans(pb.ListPlansRequest(project_id="a", page_size=1))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.ListPlans(
            pb.ListPlansRequest(project_id="b", page_size=1, page_token=r.next_page_token)
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(e.value)["ErrorInfo"].reason == "PAGE_TOKEN_INVALID"
    for token in ("garbage", "eyJhIjotMX0", "!!!"):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await plans.ListPlans(pb.ListPlansRequest(page_token=token))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_tampered_page_tokens_are_invalid_not_internal(plans):
    for i in range(3):
        await create(plans, name=f"p{i}")
    r = await plans.ListPlans(pb.ListPlansRequest(page_size=1))
    issued = json.loads(base64.urlsafe_b64decode(r.next_page_token + "=="))

    def token(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()

    for tampered in (
        token({**issued, "a": 2**63}),  # past SQLite's integers
        token({**issued, "a": 2**70}),
        token({**issued, "a": -1}),
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),  # past the JSON parser's recursion
        "A" * 5_000,
    ):
        for call in (
            plans.ListPlans(pb.ListPlansRequest(page_size=1, page_token=tampered)),
            plans.ListTasks(pb.ListTasksRequest(plan_id=r.plans[0].id, page_token=tampered)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await call
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, tampered[:40]
            assert details_of(e.value)["ErrorInfo"].reason == "PAGE_TOKEN_INVALID"
    # The largest position a token may hold is still a position: past the end, no plans.
    last = await plans.ListPlans(pb.ListPlansRequest(page_token=token({**issued, "a": 2**63 - 1})))
    assert list(last.plans) == [] and last.next_page_token == ""


async def test_page_size_bounds(plans):
    await create(plans)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.ListPlans(pb.ListPlansRequest(page_size=-1))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    r = await plans.ListPlans(pb.ListPlansRequest(page_size=1_000_000))
    assert len(r.plans) == 1


async def test_paging_while_others_insert_never_repeats_or_skips(plans):
    for i in range(30):
        await create(plans, name=f"seed{i}", project_id="busy")
    stop = asyncio.Event()

    async def writer() -> None:
        i = 0
        while not stop.is_set() and i < 200:
            await create(plans, name=f"new{i}", project_id="busy")
            i += 1

    task = asyncio.create_task(writer())
    seen: list[str] = []
    token = ""
    try:
        while True:
            r = await plans.ListPlans(
                pb.ListPlansRequest(project_id="busy", page_size=4, page_token=token)
            )
            seen += [p.name for p in r.plans]
            token = r.next_page_token
            if not token or len(seen) > 400:
                break
    finally:
        stop.set()
        await task
    assert len(seen) == len(set(seen)), "an item came twice"
    assert seen[:30] == [f"seed{i}" for i in range(30)], "a seed item was skipped"
    news = [int(n[3:]) for n in seen if n.startswith("new")]
    assert news == sorted(news), "creation order broken"


async def test_change_log_records_every_mutation(server, plans):
    p = await create(plans)
    t = (
        await plans.CreateTask(pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="t")))
    ).task
    await plans.UpdateTask(
        pb.UpdateTaskRequest(
            task=task_pb2.Task(id=t.id, progress=50),
            update_mask=field_mask_pb2.FieldMask(paths=["progress"]),
        )
    )
    await plans.DeleteTask(pb.DeleteTaskRequest(task_id=t.id))
    await plans.DeletePlan(pb.DeletePlanRequest(plan_id=p.id))
    log = await server.store.read(lambda tx: tx.changes(p.id, 0, 100))
    assert [(rev, c.kind) for rev, c in log] == [
        (1, "PLAN_CREATED"),
        (2, "TASK_CREATED"),
        (3, "TASK_UPDATED"),
        (4, "TASK_DELETED"),
        (5, "PLAN_DELETED"),
    ]
    assert log[2][1].snapshot["progress"] == 50


@pytest.mark.parametrize("hours", [math.nan, math.inf, -1.0, 1e9])
async def test_bad_hours_are_rejected(plans, hours):
    p = await create(plans)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.CreateTask(
            pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="t", estimated_hours=hours))
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(e.value)["BadRequest"].field_violations[0].field == "task.estimated_hours"
