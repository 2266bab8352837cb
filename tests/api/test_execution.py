"""Executing a plan through the real server: StartTask, CompleteTask, ReportTaskFailure and
the replanner's decisions, agents' availability, ApplyReplan, ListReplanRecords."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from plansmith.v1 import agent_pb2, execution_pb2, plan_pb2, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from tests.conftest import details_of

ex = execution_pb2
C = ex.FailureCategory
TODO, IN_PROGRESS, BLOCKED, DONE, FAILED = (
    task_pb2.TASK_STATUS_TODO,
    task_pb2.TASK_STATUS_IN_PROGRESS,
    task_pb2.TASK_STATUS_BLOCKED,
    task_pb2.TASK_STATUS_DONE,
    task_pb2.TASK_STATUS_FAILED,
)
AGENTS = [
    agent_pb2.Agent(id="ann", capabilities=["PostgreSQL"]),
    agent_pb2.Agent(id="bob", capabilities=["PostgreSQL"], capacity=2),
    agent_pb2.Agent(id="cy", capabilities=["React"]),
]


async def make_plan(plans, agents=AGENTS, **kw) -> plan_pb2.Plan:
    return (
        await plans.CreatePlan(
            pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P", agents=agents, **kw))
        )
    ).plan


async def add(plans, plan_id: str, **kw) -> task_pb2.Task:
    kw.setdefault("title", "t")
    kw.setdefault("estimated_hours", 4)
    return (
        await plans.CreateTask(pb.CreateTaskRequest(plan_id=plan_id, task=task_pb2.Task(**kw)))
    ).task


async def start(plans, task_id: str, agent: str, **kw) -> ex.StartTaskResponse:
    return await plans.StartTask(ex.StartTaskRequest(task_id=task_id, agent_id=agent, **kw))


async def fail(
    plans, task_id: str, category=0, message="boom", **kw
) -> ex.ReportTaskFailureResponse:
    failure = ex.TaskFailure(category=category, message=message)
    if "retry_after" in kw:
        failure.retry_after.CopyFrom(Duration(seconds=kw.pop("retry_after")))
    return await plans.ReportTaskFailure(
        ex.ReportTaskFailureRequest(task_id=task_id, failure=failure, **kw)
    )


async def get(plans, task_id: str) -> task_pb2.Task:
    return (await plans.GetTask(pb.GetTaskRequest(task_id=task_id))).task


async def records(plans, plan_id: str, **kw) -> list[ex.ReplanRecord]:
    return list(
        (await plans.ListReplanRecords(ex.ListReplanRecordsRequest(plan_id=plan_id, **kw))).records
    )


# ---- StartTask / CompleteTask ---------------------------------------------------------------


async def test_start_names_every_unmet_precondition(plans):
    p = await make_plan(plans)
    dep = await add(plans, p.id, title="dep")
    busy = await add(plans, p.id, title="busy")
    await start(plans, busy.id, "ann")
    t = await add(plans, p.id, dependencies=[dep.id], required_capabilities=["Kubernetes"])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await start(plans, t.id, "ann")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    d = details_of(e.value)
    assert d["ErrorInfo"].reason == "TASK_PRECONDITIONS_UNMET"
    assert [v.type for v in d["PreconditionFailure"].violations] == [
        "DEPENDENCY_NOT_DONE",
        "AGENT_LACKS_CAPABILITY",
        "AGENT_AT_CAPACITY",
    ]
    assert (await get(plans, t.id)).status == TODO  # nothing changed


async def test_start_activates_a_draft_plan_and_complete_finishes_the_task(plans):
    p = await make_plan(plans)
    assert p.status == plan_pb2.PLAN_STATUS_DRAFT
    a = await add(plans, p.id, title="a")
    b = await add(plans, p.id, title="b", dependencies=[a.id])
    r = await start(plans, a.id, "bob", request_id="s-a")
    assert r.task.status == IN_PROGRESS and r.task.assigned_to == "bob"
    plan = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert plan.status == plan_pb2.PLAN_STATUS_ACTIVE and plan.revision == r.plan_revision
    again = await start(plans, a.id, "bob", request_id="s-a")  # the same request: its answer
    assert again == r
    done = await plans.CompleteTask(
        ex.CompleteTaskRequest(task_id=a.id, actual_hours=3.5, outputs={"rows": "42"})
    )
    assert done.task.status == DONE and done.task.actual_hours == 3.5
    assert dict(done.task.outputs) == {"rows": "42"} and done.task.progress == 100
    assert (await start(plans, b.id, "ann")).task.status == IN_PROGRESS  # its dependency is DONE


async def test_complete_needs_a_task_in_progress_and_a_current_etag(plans):
    p = await make_plan(plans)
    t = await add(plans, p.id)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.CompleteTask(ex.CompleteTaskRequest(task_id=t.id))
    assert details_of(e.value)["ErrorInfo"].reason == "TASK_NOT_IN_PROGRESS"
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await start(plans, t.id, "ann", etag="1-stale")
    assert e.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await start(plans, t.id, "nobody")
    assert details_of(e.value)["ErrorInfo"].reason == "AGENT_NOT_FOUND"


# ---- ReportTaskFailure: each category's documented decision ---------------------------------


@pytest.mark.parametrize(
    ("category", "message", "decision"),
    [
        (C.FAILURE_CATEGORY_TRANSIENT, "x", ex.REPLAN_DECISION_RETRY),
        (C.FAILURE_CATEGORY_RESOURCE_EXHAUSTION, "x", ex.REPLAN_DECISION_RETRY),
        (C.FAILURE_CATEGORY_DATA_QUALITY, "x", ex.REPLAN_DECISION_INSERT_RECOVERY_TASKS),
        (C.FAILURE_CATEGORY_SCHEMA_MISMATCH, "x", ex.REPLAN_DECISION_INSERT_RECOVERY_TASKS),
        (C.FAILURE_CATEGORY_DEPENDENCY_MISSING, "x", ex.REPLAN_DECISION_INSERT_RECOVERY_TASKS),
        (C.FAILURE_CATEGORY_PERMISSION, "x", ex.REPLAN_DECISION_REASSIGN),
        (C.FAILURE_CATEGORY_CAPABILITY, "x", ex.REPLAN_DECISION_REASSIGN),
        (C.FAILURE_CATEGORY_UNKNOWN, "x", ex.REPLAN_DECISION_RETRY),
        # Unspecified: classified from the message.
        (0, "connection reset by peer", ex.REPLAN_DECISION_RETRY),
        (0, "403 Forbidden", ex.REPLAN_DECISION_REASSIGN),
    ],
)
async def test_each_category_leads_to_its_documented_decision(plans, category, message, decision):
    p = await make_plan(plans)
    t = await add(plans, p.id, required_capabilities=["PostgreSQL"])
    await start(plans, t.id, "ann")
    r = await fail(plans, t.id, category, message)
    assert r.record.decision == decision
    assert r.record.state == ex.REPLAN_STATE_APPLIED
    assert r.record.applied_revision == r.plan_revision
    assert r.task.status == TODO
    if not category:
        assert "classified from the message" in r.record.reason
    listed = await records(plans, p.id)
    assert [x.id for x in listed] == [r.record.id]


async def test_retry_budget_runs_out_into_reassignment_then_escalation(plans):
    p = await make_plan(plans)
    t = await add(plans, p.id, required_capabilities=["PostgreSQL"])
    seen = []
    agent = "ann"
    for _ in range(5):
        # Backoff would hold the task back: clear it as an operator would (UpdateTask).
        await plans.UpdateTask(
            pb.UpdateTaskRequest(task=task_pb2.Task(id=t.id), update_mask={"paths": ["not_before"]})
        )
        await start(plans, t.id, agent)
        r = await fail(plans, t.id, C.FAILURE_CATEGORY_TRANSIENT, "timeout", retry_after=5)
        seen.append(r.record.decision)
        agent = r.task.assigned_to
    assert seen == [
        ex.REPLAN_DECISION_RETRY,
        ex.REPLAN_DECISION_RETRY,
        ex.REPLAN_DECISION_RETRY,
        ex.REPLAN_DECISION_REASSIGN,
        ex.REPLAN_DECISION_ESCALATE,
    ]
    listed = await records(plans, p.id)
    assert [x.attempt for x in listed] == [1, 2, 3, 4, 5]
    assert listed[3].new_agent_id == "bob"  # the only other agent holding PostgreSQL
    assert (await get(plans, t.id)).status == FAILED
    plan = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert plan.status == plan_pb2.PLAN_STATUS_ON_HOLD
    assert "needs people" in listed[4].reason


async def test_a_retry_waits_for_its_backoff_honouring_retry_after(plans):
    p = await make_plan(plans)
    t = await add(plans, p.id)
    await start(plans, t.id, "ann")
    r = await fail(plans, t.id, C.FAILURE_CATEGORY_TRANSIENT, retry_after=600)
    assert r.task.HasField("not_before")
    wait = r.task.not_before.seconds - r.record.create_time.seconds
    assert 599 <= wait <= 601  # retry_after beats the rule's 30 s backoff
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await start(plans, t.id, "ann")
    violations = details_of(e.value)["PreconditionFailure"].violations
    assert [v.type for v in violations] == ["TASK_NOT_BEFORE"]


async def test_recovery_tasks_are_wired_into_the_dependencies(plans):
    p = await make_plan(plans)
    up = await add(plans, p.id, title="extract")
    await start(plans, up.id, "ann")
    await plans.CompleteTask(ex.CompleteTaskRequest(task_id=up.id))
    t = await add(plans, p.id, title="load", dependencies=[up.id], estimated_hours=8)
    after = await add(plans, p.id, title="report", dependencies=[t.id])
    await start(plans, t.id, "ann")
    r = await fail(plans, t.id, C.FAILURE_CATEGORY_DATA_QUALITY, "312 duplicate ids")
    added = list(r.record.tasks_added)
    assert len(added) == 2
    validate, cleanse = [await get(plans, x) for x in added]
    assert list(validate.dependencies) == [up.id]
    assert list(cleanse.dependencies) == [validate.id]
    assert list(r.task.dependencies) == [up.id, cleanse.id]
    assert "duplicate" in validate.description and validate.assigned_to == "ann"
    assert list((await get(plans, after.id)).dependencies) == [t.id]
    # The failed task now waits for its recovery tasks.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await start(plans, t.id, "ann")
    unmet = details_of(e.value)["PreconditionFailure"].violations
    assert [v.subject for v in unmet] == [f"tasks/{cleanse.id}"]


async def test_reassignment_respects_capabilities_and_pinned_work(plans):
    p = await make_plan(plans)
    pinned = await add(plans, p.id, title="other", assigned_to="bob")
    react = await add(plans, p.id, title="ui", assigned_to="cy", required_capabilities=["React"])
    t = await add(plans, p.id, required_capabilities=["PostgreSQL"])
    await start(plans, t.id, "ann")
    r = await fail(plans, t.id, C.FAILURE_CATEGORY_PERMISSION, "denied")
    assert r.record.decision == ex.REPLAN_DECISION_REASSIGN
    assert r.task.assigned_to == "bob"  # cy lacks PostgreSQL; ann failed it
    assert (await get(plans, pinned.id)).assigned_to == "bob"
    assert (await get(plans, react.id)).assigned_to == "cy"
    assert list(r.record.tasks_changed) == [t.id]


async def test_a_decision_below_the_threshold_is_proposed_then_applied(plans):
    policy = ex.ReplanPolicy(confidence_threshold=0.99)
    p = await make_plan(plans, replan_policy=policy)
    assert p.replan_policy.confidence_threshold == pytest.approx(0.99)
    t = await add(plans, p.id)
    await start(plans, t.id, "ann")
    before = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan.revision
    r = await fail(plans, t.id, C.FAILURE_CATEGORY_TRANSIENT, "timeout")
    assert r.record.state == ex.REPLAN_STATE_PROPOSED
    assert r.record.decision == ex.REPLAN_DECISION_RETRY and r.record.confidence < 0.99
    assert r.task.status == FAILED and r.plan_revision == before + 1
    applied = await plans.ApplyReplan(
        ex.ApplyReplanRequest(plan_id=p.id, record_id=r.record.id, etag=r.task.etag)
    )
    assert applied.record.state == ex.REPLAN_STATE_APPLIED
    assert applied.record.applied_revision == applied.plan_revision == before + 2
    assert (await get(plans, t.id)).status == TODO
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.ApplyReplan(ex.ApplyReplanRequest(plan_id=p.id, record_id=r.record.id))
    assert details_of(e.value)["ErrorInfo"].reason == "REPLAN_NOT_PROPOSED"


async def test_dry_run_decides_without_changing_anything(plans):
    p = await make_plan(plans)
    t = await add(plans, p.id)
    started = await start(plans, t.id, "ann")
    r = await fail(plans, t.id, C.FAILURE_CATEGORY_SCHEMA_MISMATCH, "unknown column", dry_run=True)
    assert r.record.state == ex.REPLAN_STATE_DRY_RUN
    assert r.record.decision == ex.REPLAN_DECISION_INSERT_RECOVERY_TASKS
    assert r.plan_revision == started.plan_revision
    assert await get(plans, t.id) == started.task
    assert await records(plans, p.id) == []


async def test_the_same_report_twice_changes_nothing_more(plans):
    p = await make_plan(plans)
    t = await add(plans, p.id)
    await start(plans, t.id, "ann")
    first = await fail(plans, t.id, C.FAILURE_CATEGORY_DATA_QUALITY, "nulls", request_id="f-1")
    again = await fail(plans, t.id, C.FAILURE_CATEGORY_DATA_QUALITY, "nulls", request_id="f-1")
    assert again == first
    assert len(await records(plans, p.id)) == 1
    assert (await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id))).total_size == 3
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await fail(plans, t.id, C.FAILURE_CATEGORY_TRANSIENT, "other", request_id="f-1")
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_bad_failure_reports_are_invalid_and_change_nothing(plans):
    p = await make_plan(plans)
    t = await add(plans, p.id)
    started = await start(plans, t.id, "ann")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await fail(plans, t.id, 99, "x" * 10_001, retry_after=8 * 86_400)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details_of(e.value)["BadRequest"].field_violations}
    assert fields == {"failure.category", "failure.message", "failure.retry_after"}
    assert await get(plans, t.id) == started.task
    todo = await add(plans, p.id)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await fail(plans, todo.id, C.FAILURE_CATEGORY_TRANSIENT)
    assert details_of(e.value)["ErrorInfo"].reason == "TASK_NOT_IN_PROGRESS"


# ---- agents' availability -------------------------------------------------------------------


async def test_an_unavailable_agents_tasks_are_reassigned_and_it_takes_work_when_back(plans):
    p = await make_plan(plans)
    running = await add(plans, p.id, required_capabilities=["PostgreSQL"])
    queued = await add(plans, p.id, assigned_to="ann", required_capabilities=["PostgreSQL"])
    await start(plans, running.id, "ann")
    r = await plans.SetAgentAvailability(
        ex.SetAgentAvailabilityRequest(
            plan_id=p.id, agent_id="ann", available=False, reason="sick", request_id="away-1"
        )
    )
    assert not r.availability.available and r.availability.reason == "sick"
    assert {x.task_id for x in r.records} == {running.id, queued.id}
    assert all(x.decision == ex.REPLAN_DECISION_REASSIGN for x in r.records)
    assert all(x.trigger == ex.REPLAN_TRIGGER_AGENT_UNAVAILABLE for x in r.records)
    assert all("sick" in x.reason for x in r.records)
    for task_id in (running.id, queued.id):
        moved = await get(plans, task_id)
        assert moved.assigned_to == "bob" and moved.status == TODO
    fresh = await add(plans, p.id)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await start(plans, fresh.id, "ann")
    assert [v.type for v in details_of(e.value)["PreconditionFailure"].violations] == [
        "AGENT_UNAVAILABLE"
    ]
    await plans.SetAgentAvailability(
        ex.SetAgentAvailabilityRequest(plan_id=p.id, agent_id="ann", available=True)
    )
    assert (await start(plans, fresh.id, "ann")).task.assigned_to == "ann"


async def test_heartbeat_reports_the_timeout_and_unknown_agents_are_not_found(plans):
    p = await make_plan(plans)
    r = await plans.Heartbeat(ex.HeartbeatRequest(plan_id=p.id, agent_id="ann"))
    assert r.availability.available and r.availability.HasField("last_heartbeat_time")
    assert r.timeout.seconds == 60
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.Heartbeat(ex.HeartbeatRequest(plan_id=p.id, agent_id="zed"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_replan_records_pages_and_filters(plans):
    p = await make_plan(plans)
    ids = []
    for _ in range(3):
        t = await add(plans, p.id)
        await start(plans, t.id, "ann")
        ids.append((await fail(plans, t.id, C.FAILURE_CATEGORY_TRANSIENT)).record.id)
    page = await plans.ListReplanRecords(ex.ListReplanRecordsRequest(plan_id=p.id, page_size=2))
    assert [x.id for x in page.records] == ids[:2] and page.total_size == 3
    rest = await plans.ListReplanRecords(
        ex.ListReplanRecordsRequest(plan_id=p.id, page_size=2, page_token=page.next_page_token)
    )
    assert [x.id for x in rest.records] == ids[2:] and not rest.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.ListReplanRecords(ex.ListReplanRecordsRequest(plan_id="pln_missing"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_suggestions_leave_out_a_task_waiting_out_its_backoff(plans, channel):
    from plansmith.v1 import planning_service_pb2 as pl
    from plansmith.v1 import planning_service_pb2_grpc

    sched = planning_service_pb2_grpc.PlanningServiceStub(channel)
    p = await make_plan(plans)
    t = await add(plans, p.id, title="flaky", assigned_to="ann")
    other = await add(plans, p.id, title="steady", assigned_to="ann")

    async def suggested() -> list[str]:
        r = await sched.SuggestNextTasks(
            pl.SuggestNextTasksRequest(plan_id=p.id, agent_id="ann", count=5)
        )
        return [s.task_id for s in r.suggestions]

    assert set(await suggested()) == {t.id, other.id}
    await start(plans, t.id, "ann")
    await fail(plans, t.id, C.FAILURE_CATEGORY_TRANSIENT, retry_after=600)
    assert await suggested() == [other.id]
    await plans.UpdateTask(
        pb.UpdateTaskRequest(task=task_pb2.Task(id=t.id), update_mask={"paths": ["not_before"]})
    )
    assert set(await suggested()) == {t.id, other.id}


async def test_a_silent_agent_times_out_and_its_tasks_move_then_a_heartbeat_brings_it_back(
    db_path,
):
    from plansmith.v1 import plan_service_pb2_grpc
    from plansmith_server.app import start as start_server
    from plansmith_server.config import Config
    from tests.conftest import wait_for

    running = await start_server(
        Config(listen="127.0.0.1:0", db_path=db_path, heartbeat_timeout_seconds=0.3)
    )
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            p = await make_plan(stub)
            t = await add(stub, p.id, required_capabilities=["PostgreSQL"])
            beat = await stub.Heartbeat(ex.HeartbeatRequest(plan_id=p.id, agent_id="ann"))
            assert beat.timeout.ToMilliseconds() == 300
            await start(stub, t.id, "ann")

            async def moved() -> bool:
                return (await get(stub, t.id)).assigned_to == "bob"

            await wait_for(moved, within=10)
            [rec] = await records(stub, p.id)
            assert rec.trigger == ex.REPLAN_TRIGGER_AGENT_UNAVAILABLE
            assert "no heartbeat" in rec.reason
            fresh = await add(stub, p.id)
            with pytest.raises(grpc.aio.AioRpcError):
                await start(stub, fresh.id, "ann")
            back = await stub.Heartbeat(ex.HeartbeatRequest(plan_id=p.id, agent_id="ann"))
            assert back.availability.available
            assert (await start(stub, fresh.id, "ann")).task.status == IN_PROGRESS
    finally:
        await running.stop(grace=0.5)


async def test_capability_failure_without_another_agent_proposes_a_redecomposition(plans):
    p = await make_plan(plans)
    t = await add(
        plans,
        p.id,
        title="Migrate the orders database",
        description="Move the orders PostgreSQL database to a new cluster",
        required_capabilities=["React"],
        assigned_to="cy",
        estimated_hours=20,
    )
    after = await add(plans, p.id, title="announce", dependencies=[t.id])
    await start(plans, t.id, "cy")
    r = await fail(plans, t.id, C.FAILURE_CATEGORY_CAPABILITY, "cannot do database work")
    assert r.record.decision == ex.REPLAN_DECISION_REDECOMPOSE
    assert r.record.state == ex.REPLAN_STATE_PROPOSED  # 0.3 is below the default 0.6
    applied = await plans.ApplyReplan(ex.ApplyReplanRequest(plan_id=p.id, record_id=r.record.id))
    subtasks = list(applied.record.tasks_added)
    assert len(subtasks) >= 2
    for s in subtasks:
        assert (await get(plans, s)).parent_task_id == t.id
    # Who waited for the task now waits for the subtasks that finish it.
    deps = set((await get(plans, after.id)).dependencies)
    assert deps and deps <= set(subtasks)
    assert after.id in applied.record.tasks_changed


async def test_bad_policies_capacities_and_availabilities_are_invalid(plans):
    bad_rule = ex.RecoveryRule(
        category=42, ladder=[ex.REPLAN_DECISION_RETRY, ex.REPLAN_DECISION_RETRY], retry_budget=99
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await make_plan(
            plans,
            agents=[agent_pb2.Agent(id="ann", capacity=5000)],
            replan_policy=ex.ReplanPolicy(confidence_threshold=1.5, rules=[bad_rule]),
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details_of(e.value)["BadRequest"].field_violations}
    assert fields == {
        "plan.agents[0].capacity",
        "plan.replan_policy.confidence_threshold",
        "plan.replan_policy.rules[0].category",
        "plan.replan_policy.rules[0].ladder",
        "plan.replan_policy.rules[0].retry_budget",
    }
    p = await make_plan(plans)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.SetAgentAvailability(
            ex.SetAgentAvailabilityRequest(
                plan_id=p.id, agent_id="ann", available=False, until={"seconds": 1}
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.SetAgentAvailability(
            ex.SetAgentAvailabilityRequest(plan_id=p.id, agent_id="zed", available=False)
        )
    assert details_of(e.value)["ErrorInfo"].reason == "AGENT_NOT_FOUND"


async def test_a_plans_own_rule_is_stored_and_decides_first(plans):
    rule = ex.RecoveryRule(
        category=C.FAILURE_CATEGORY_TRANSIENT,
        labels=["tier=gold"],
        ladder=[ex.REPLAN_DECISION_ESCALATE],
    )
    p = await make_plan(plans, replan_policy=ex.ReplanPolicy(rules=[rule]))
    stored = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan.replan_policy
    assert stored.rules[0].labels == ["tier=gold"]
    assert stored.rules[0].retry_backoff.seconds == 30  # the default, spelled out
    gold = await add(plans, p.id, metadata={"tier": "gold"})
    await start(plans, gold.id, "ann")
    r = await fail(plans, gold.id, C.FAILURE_CATEGORY_TRANSIENT, "timeout")
    assert r.record.decision == ex.REPLAN_DECISION_ESCALATE and "plan rule 0" in r.record.reason


async def test_dependents_of_a_failed_task_are_blocked_until_it_completes(plans):
    p = await make_plan(plans)
    a = await add(plans, p.id, title="migrate")
    b = await add(plans, p.id, title="b", dependencies=[a.id])
    c = await add(plans, p.id, title="c", dependencies=[b.id])
    held = await add(plans, p.id, title="held", dependencies=[a.id], status=BLOCKED)
    free = await add(plans, p.id, title="free")
    await start(plans, a.id, "ann")
    r = await fail(plans, a.id, C.FAILURE_CATEGORY_TRANSIENT, "timeout", retry_after=600)
    assert r.record.decision == ex.REPLAN_DECISION_RETRY and r.task.status == TODO
    for t in (b, c):  # direct and transitive, in the decision's own revision
        got = await get(plans, t.id)
        assert got.status == BLOCKED
        assert a.id in got.blocked_reason and "RETRY" in got.blocked_reason
    assert (await get(plans, free.id)).status == TODO
    assert (await get(plans, held.id)).blocked_reason == ""  # the caller's BLOCKED, no reason
    plan = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert plan.revision == r.plan_revision

    await plans.UpdateTask(
        pb.UpdateTaskRequest(task=task_pb2.Task(id=a.id), update_mask={"paths": ["not_before"]})
    )
    await start(plans, a.id, "ann")
    done = await plans.CompleteTask(ex.CompleteTaskRequest(task_id=a.id))
    got_b = await get(plans, b.id)
    assert got_b.status == TODO and got_b.blocked_reason == ""  # all its dependencies done
    assert (await get(plans, c.id)).status == BLOCKED  # b is not done yet
    assert (await get(plans, held.id)).status == BLOCKED  # not the replanner's to lift
    plan = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert plan.revision == done.plan_revision
    await start(plans, b.id, "ann")
    await plans.CompleteTask(ex.CompleteTaskRequest(task_id=b.id))
    assert (await get(plans, c.id)).status == TODO


ESCALATE_AT_ONCE = ex.ReplanPolicy(
    rules=[
        ex.RecoveryRule(category=C.FAILURE_CATEGORY_TRANSIENT, ladder=[ex.REPLAN_DECISION_ESCALATE])
    ]
)


async def test_an_escalated_task_blocks_its_dependents(plans):
    p = await make_plan(plans, replan_policy=ESCALATE_AT_ONCE)
    a = await add(plans, p.id, title="a")
    b = await add(plans, p.id, title="b", dependencies=[a.id])
    await start(plans, a.id, "ann")
    await fail(plans, a.id, C.FAILURE_CATEGORY_TRANSIENT, "timeout")
    got = await get(plans, b.id)
    assert got.status == BLOCKED and a.id in got.blocked_reason


async def test_an_escalation_is_a_risk_of_the_plan_while_it_is_on_hold(plans, channel):
    from plansmith.v1 import generation_pb2, planning_service_pb2_grpc
    from plansmith.v1 import planning_service_pb2 as pl

    sched = planning_service_pb2_grpc.PlanningServiceStub(channel)
    p = await make_plan(plans, replan_policy=ESCALATE_AT_ONCE)
    a = await add(plans, p.id, title="deploy")
    await add(plans, p.id, title="after", dependencies=[a.id])
    await start(plans, a.id, "ann")
    r = await fail(plans, a.id, C.FAILURE_CATEGORY_TRANSIENT, "timeout")

    async def escalations() -> list:
        got = await sched.AnalyzePlan(
            pl.AnalyzePlanRequest(
                plan_id=p.id, analysis_types=[pl.ANALYSIS_TYPE_RISK_ASSESSMENT], seed=1
            )
        )
        return [x for x in got.risk_assessment.risks if x.title == "Escalation"]

    [risk] = await escalations()
    assert r.record.reason in risk.description
    assert list(risk.task_ids) == [a.id] and list(risk.task_titles) == ["deploy"]
    assert risk.severity == generation_pb2.RISK_SEVERITY_CRITICAL
    await plans.UpdatePlan(  # people took it over: the plan runs again
        pb.UpdatePlanRequest(
            plan=plan_pb2.Plan(id=p.id, status=plan_pb2.PLAN_STATUS_ACTIVE),
            update_mask={"paths": ["status"]},
        )
    )
    assert await escalations() == []
