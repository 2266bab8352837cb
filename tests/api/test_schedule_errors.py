"""Error paths of applying a schedule (PlanningService.OptimizePlan with `apply`) through
the real server: every failed request comes back with its status and google.rpc details
and leaves the plan, its tasks and the request_id untouched."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2
from google.rpc import code_pb2, error_details_pb2

from plansmith.v1 import agent_pb2, plan_pb2, planning_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as ps
from plansmith.v1 import planning_service_pb2 as pb
from plansmith_server.api.errors import to_status
from plansmith_server.domain.mutations import Mutation
from plansmith_server.domain.schedules import OPTIMIZATION_CODEC, Schedules
from plansmith_server.errors import EtagMismatchError, NotFoundError
from tests.conftest import details_of

T = task_pb2.Task
ONE_SECOND = duration_pb2.Duration(seconds=1)
AGENTS = [agent_pb2.Agent(id="ann"), agent_pb2.Agent(id="bob")]


@pytest.fixture
def sched(channel):
    return planning_service_pb2_grpc.PlanningServiceStub(channel)


async def make_plan(plans, agents, tasks):
    """Creates a plan with `tasks`; returns its id and the task ids by title."""
    plan = (
        await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P", agents=agents)))
    ).plan
    r = await plans.BatchCreateTasks(ps.BatchCreateTasksRequest(plan_id=plan.id, tasks=tasks))
    return plan.id, {t.title: t.id for t in r.tasks}


async def state(plans, plan_id):
    """The plan and its tasks, to compare before and after a failed request."""
    plan = (await plans.GetPlan(ps.GetPlanRequest(plan_id=plan_id))).plan
    tasks = (await plans.ListTasks(ps.ListTasksRequest(plan_id=plan_id))).tasks
    return plan, sorted(tasks, key=lambda t: t.id)


async def optimize_error(sched, **fields):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await sched.OptimizePlan(pb.OptimizePlanRequest(**fields))
    return e.value


TWO_TASKS = [
    T(id="a", title="a", estimated_hours=3),
    T(id="b", title="b", estimated_hours=2, dependencies=["a"]),
]


async def test_apply_on_a_plan_without_agents_fails_and_changes_nothing(plans, sched):
    pid, _ = await make_plan(plans, [], TWO_TASKS)  # no agents, nothing assigned
    before = await state(plans, pid)
    req = dict(plan_id=pid, apply=True, request_id="no-agents-1", time_limit=ONE_SECOND)
    err = await optimize_error(sched, **req)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = details_of(err)
    assert details["ErrorInfo"].reason == "PLAN_NO_AGENTS"
    [violation] = details["PreconditionFailure"].violations
    assert (violation.type, violation.subject) == ("PLAN_NO_AGENTS", f"plans/{pid}")
    assert await state(plans, pid) == before
    # The request_id was not spent: once the plan has an agent, the same request applies.
    await plans.UpdatePlan(
        ps.UpdatePlanRequest(
            plan=plan_pb2.Plan(id=pid, agents=AGENTS[:1]),
            update_mask=field_mask_pb2.FieldMask(paths=["agents"]),
        )
    )
    r = await sched.OptimizePlan(pb.OptimizePlanRequest(**req))
    assert r.plan_revision == before[0].revision + 2  # agents added, schedule applied
    assert {s.agent_id for s in r.schedule} == {"ann"}


@pytest.mark.parametrize(
    ("goals", "constraints", "violations"),
    [
        ([pb.OPTIMIZATION_GOAL_MINIMIZE_DURATION] * 2, [], {"goals": "lists a goal twice"}),
        ([], [7], {"constraints[0]": "unknown value 7"}),
        (
            [pb.OPTIMIZATION_GOAL_BALANCE_WORKLOAD] * 2,
            [pb.OPTIMIZATION_CONSTRAINT_MAINTAIN_DEPENDENCIES, 0],
            {"goals": "lists a goal twice", "constraints[1]": "unknown value 0"},
        ),
    ],
    ids=["duplicate-goal", "unknown-constraint", "both-at-once"],
)
async def test_apply_with_bad_goals_or_constraints_is_refused_field_by_field(
    plans, sched, goals, constraints, violations
):
    pid, _ = await make_plan(plans, AGENTS, TWO_TASKS)
    before = await state(plans, pid)
    err = await optimize_error(
        sched,
        plan_id=pid,
        goals=goals,
        constraints=constraints,
        apply=True,
        request_id="bad-args-1",
        time_limit=ONE_SECOND,
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = details_of(err)
    assert details["ErrorInfo"].reason == "INVALID_ARGUMENT"
    got = {v.field: v.description for v in details["BadRequest"].field_violations}
    assert set(got) == set(violations)
    for field, text in violations.items():
        assert text in got[field]
    assert await state(plans, pid) == before


async def test_unknown_analysis_types_and_estimate_scope_are_refused_by_field(plans, sched):
    """Numbers the API does not define reach the domain as unrecognized values and are
    refused field by field (0, UNSPECIFIED, is not a part of an analysis)."""
    pid, _ = await make_plan(plans, AGENTS, TWO_TASKS)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sched.AnalyzePlan(
            pb.AnalyzePlanRequest(
                plan_id=pid, analysis_types=[pb.ANALYSIS_TYPE_CRITICAL_PATH, 0, 9]
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = {v.field: v.description for v in details_of(caught.value)["BadRequest"].field_violations}
    assert set(got) == {"analysis_types[1]", "analysis_types[2]"}
    assert "unknown value 9" in got["analysis_types[2]"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sched.EstimateTaskDuration(
            pb.EstimateTaskDurationRequest(task_description="Write the runbook", scope=5)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = {v.field: v.description for v in details_of(caught.value)["BadRequest"].field_violations}
    assert got == {"scope": "unknown value 5; expected PLAN or PROJECT"}
    # A known part alone is answered.
    answer = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(plan_id=pid, analysis_types=[pb.ANALYSIS_TYPE_CRITICAL_PATH])
    )
    assert answer.HasField("critical_path") and not answer.HasField("risk_assessment")


# ---- the plan changes between planning and applying ---------------------------------
#
# OptimizePlan reads the plan, solves (seconds), then writes in one transaction that must
# notice any change in between. The race is made deterministic by driving the domain
# layer of the running server: plan from a snapshot, change the plan through the API,
# then apply the now stale schedule.


async def stale_apply(server, pid, change) -> tuple[EtagMismatchError, int]:
    """Plans `pid`, runs `change()`, applies the stale plan; returns the error and the
    plan revision after `change`."""
    book = Schedules(server.plans)
    snap = await book.snapshot(pid)
    opt = await book.optimize(pid, time_limit=1.0)
    assert opt.result.activities  # a schedule that would change the tasks
    await change()
    m = Mutation(request_id="stale-1", fingerprint="f")
    with pytest.raises(EtagMismatchError) as e:
        await book.apply_optimization(snap, opt, m)
    # Nothing recorded under the request_id: a retry computes afresh.
    assert await server.plans.mutations.replay("OptimizePlan", m, OPTIMIZATION_CODEC) is None
    return e.value, (await book.snapshot(pid)).plan.revision


def assert_aborted(err: EtagMismatchError, resource_type: str, resource_id: str) -> None:
    """What the server sends for `err`: ABORTED with ErrorInfo ETAG_MISMATCH."""
    status = to_status(err)
    assert status.code == code_pb2.ABORTED
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "ETAG_MISMATCH"
    assert info.metadata["resource_type"] == resource_type
    assert info.metadata["resource_id"] == resource_id


async def test_apply_after_a_task_changed_is_aborted_and_writes_nothing(server, plans):
    pid, ids = await make_plan(plans, AGENTS, TWO_TASKS)

    async def change():
        await plans.UpdateTask(
            ps.UpdateTaskRequest(
                task=T(id=ids["b"], title="b renamed"),
                update_mask=field_mask_pb2.FieldMask(paths=["title"]),
            )
        )

    err, revision = await stale_apply(server, pid, change)
    assert (err.resource_type, err.resource_id) == ("task", ids["b"])
    assert_aborted(err, "task", ids["b"])
    plan, tasks = await state(plans, pid)
    assert plan.revision == revision
    assert all(not t.assigned_to and not t.HasField("schedule") for t in tasks)


async def test_apply_after_an_agent_left_the_plan_is_aborted_and_writes_nothing(server, plans):
    pid, _ = await make_plan(plans, AGENTS, TWO_TASKS)

    async def change():  # no task of the snapshot changes, only the plan
        await plans.UpdatePlan(
            ps.UpdatePlanRequest(
                plan=plan_pb2.Plan(id=pid, agents=[agent_pb2.Agent(id="cat")]),
                update_mask=field_mask_pb2.FieldMask(paths=["agents"]),
            )
        )

    err, revision = await stale_apply(server, pid, change)
    assert (err.resource_type, err.resource_id) == ("plan", pid)
    assert_aborted(err, "plan", pid)
    plan, tasks = await state(plans, pid)
    assert plan.revision == revision
    assert [a.id for a in plan.agents] == ["cat"]
    assert all(not t.assigned_to and not t.HasField("schedule") for t in tasks)


async def test_apply_after_a_task_was_added_is_aborted_and_writes_nothing(server, plans):
    pid, _ = await make_plan(plans, AGENTS, TWO_TASKS)

    async def change():
        await plans.CreateTask(
            ps.CreateTaskRequest(plan_id=pid, task=T(title="c", estimated_hours=9))
        )

    err, revision = await stale_apply(server, pid, change)
    assert (err.resource_type, err.resource_id) == ("plan", pid)
    plan, tasks = await state(plans, pid)
    assert plan.revision == revision and len(tasks) == 3
    assert all(not t.assigned_to and not t.HasField("schedule") for t in tasks)


async def test_apply_after_the_plan_was_deleted_is_not_found(server, plans):
    pid, _ = await make_plan(plans, AGENTS, TWO_TASKS)
    book = Schedules(server.plans)
    snap = await book.snapshot(pid)
    opt = await book.optimize(pid, time_limit=1.0)
    await plans.DeletePlan(ps.DeletePlanRequest(plan_id=pid))
    with pytest.raises(NotFoundError) as e:
        await book.apply_optimization(snap, opt)
    assert (e.value.resource_type, e.value.resource_id) == ("plan", pid)


async def test_apply_from_an_unchanged_snapshot_is_written(server, plans):
    """The control for the stale cases above: same steps, no change in between."""
    pid, _ = await make_plan(plans, AGENTS, TWO_TASKS)
    book = Schedules(server.plans)
    snap = await book.snapshot(pid)
    opt = await book.optimize(pid, time_limit=1.0)
    done = await book.apply_optimization(snap, opt)
    plan, tasks = await state(plans, pid)
    assert done.plan_revision == plan.revision == snap.plan.revision + 1
    placed = opt.result.by_id()
    for t in tasks:
        assert t.assigned_to == placed[t.id].agent
        assert t.schedule.end_offset_hours == pytest.approx(placed[t.id].end)


async def test_an_apply_that_changes_nothing_leaves_the_revision_for_others(server, plans):
    """Applying a schedule already applied writes nothing and keeps the revision, so an
    apply computed meanwhile from that revision is not aborted for nothing."""
    pid, _ = await make_plan(plans, AGENTS, TWO_TASKS)
    book = Schedules(server.plans)
    snap = await book.snapshot(pid)
    opt = await book.optimize(pid, time_limit=1.0)
    first = await book.apply_optimization(snap, opt)
    applied = await book.snapshot(pid)  # the revision after the first apply
    again = await book.optimize(pid, time_limit=1.0)  # the same schedule: nothing to write
    other = await book.optimize(pid, time_limit=1.0)  # a concurrent client's, same revision
    assert (await book.apply_optimization(applied, again)).plan_revision == first.plan_revision
    done = await book.apply_optimization(applied, other)  # not aborted
    assert done.plan_revision == first.plan_revision
    plan, _ = await state(plans, pid)
    assert plan.revision == first.plan_revision


# ---- plans whose in-progress work waits on open work --------------------------------


async def test_in_progress_task_after_a_done_task_waiting_on_open_work_is_scheduled(plans, sched):
    """Used to fail with INTERNAL (the task was fixed to start now, after movable work)."""
    pid, ids = await make_plan(
        plans,
        AGENTS,
        [
            T(id="proto", title="proto", estimated_hours=4),
            T(
                id="spec",
                title="spec",
                estimated_hours=1,
                status=task_pb2.TASK_STATUS_DONE,
                dependencies=["proto"],
            ),
            T(
                id="build",
                title="build",
                estimated_hours=3,
                status=task_pb2.TASK_STATUS_IN_PROGRESS,
                assigned_to="bob",
                dependencies=["spec"],
            ),
        ],
    )
    r = await sched.OptimizePlan(pb.OptimizePlanRequest(plan_id=pid, time_limit=ONE_SECOND))
    at = {s.task_id: s for s in r.schedule}
    build, proto = at[ids["build"]], at[ids["proto"]]
    assert build.agent_id == "bob"  # in progress: keeps its agent
    assert build.start_offset_hours == pytest.approx(proto.end_offset_hours) == pytest.approx(4)
    assert r.duration_after_hours == pytest.approx(7)
    a = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(plan_id=pid, analysis_types=[pb.ANALYSIS_TYPE_CRITICAL_PATH])
    )
    assert a.critical_path.duration_hours == pytest.approx(7)
