"""PlanningService generation, decomposition and estimation through the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import grpc
import pytest
from google.protobuf import struct_pb2

from plansmith.v1 import (
    agent_pb2,
    generation_pb2,
    plan_pb2,
    plan_service_pb2_grpc,
    planning_service_pb2_grpc,
    task_pb2,
)
from plansmith.v1 import plan_service_pb2 as ps
from plansmith.v1 import planning_service_pb2 as pb
from plansmith_server import planning
from plansmith_server.app import start
from plansmith_server.config import Config
from plansmith_server.domain.planner import EmbeddedPlanner
from tests.conftest import details_of
from tests.planning.scenarios import SCENARIOS


def brief(req: planning.PlanRequest) -> generation_pb2.PlanBrief:
    ctx = struct_pb2.Struct()
    ctx.update(dict(req.context))
    return generation_pb2.PlanBrief(
        project_id=req.project_id,
        name=req.name,
        description=req.description,
        requirements=list(req.requirements),
        constraints=list(req.constraints),
        available_agents=[
            agent_pb2.Agent(id=a.id, name=a.name, capabilities=list(a.capabilities))
            for a in req.available_agents
        ],
        context=ctx,
    )


@pytest.fixture
def planner_stub(channel):
    return planning_service_pb2_grpc.PlanningServiceStub(channel)


def check_plan(result: generation_pb2.GeneratedPlan, b: generation_pb2.PlanBrief) -> None:
    """The validator's rules, on the wire format: what a caller can rely on."""
    tasks = [g.task for g in result.tasks]
    ids = [t.id for t in tasks]
    assert len(ids) == len(set(ids)) and all(ids)
    titles = [t.title for t in tasks]
    assert len(titles) == len(set(titles)), "titles must be unique"
    position = {t: i for i, t in enumerate(ids)}
    for t in tasks:
        for d in t.dependencies:
            assert d in position, f"dangling dependency {d}"
            assert position[d] < position[t.id], "tasks come in dependency order (acyclic)"
        assert 0 < t.optimistic_hours <= t.estimated_hours <= t.pessimistic_hours
    caps = {a.id: list(a.capabilities) for a in b.available_agents}
    for t in tasks:
        if t.assigned_to:
            assert planning.agent_can_do(caps[t.assigned_to], t.required_capabilities), t.title
    gap_tasks = {g.task_id for g in result.capability_gaps}
    for t in tasks:
        if t.id in gap_tasks:
            assert not t.assigned_to, "work nobody can do is never given to an unfit agent"
    covered = {c.requirement_index for c in result.explanation.coverage if c.task_ids}
    assert covered == set(range(len(b.requirements)))
    for g in result.tasks:
        for i in g.requirement_indexes:
            assert 0 <= i < len(b.requirements)
    assert 0 <= result.confidence <= 1
    assert result.estimated_duration_hours > 0


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_generate_plan_is_valid_for_every_scenario(planner_stub, name):
    b = brief(SCENARIOS[name])
    r = await planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=b))
    check_plan(r.result, b)
    assert r.result.plan.id == "" and r.result.tasks[0].task.id == "t1"


async def test_generation_is_deterministic(planner_stub):
    b = brief(SCENARIOS["website"])
    a = await planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=b))
    c = await planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=b))
    assert a == c


async def test_website_with_react_constraint(planner_stub):
    from tests.planning.scenarios import WEBSITE

    b = brief(WEBSITE)
    r = (await planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=b))).result
    check_plan(r, b)
    react = [g.task for g in r.tasks if "react" in g.task.required_capabilities]
    assert react and all(t.assigned_to == "frontend" for t in react)
    assert any(g.task.assigned_to == "designer" for g in r.tasks)
    assert r.deadline_hours == 6 * 5 * 8
    assert any("production" in rule for rule in r.explanation.applied_rules)


async def test_stream_yields_progress_then_exactly_the_unary_result(planner_stub):
    from tests.planning.scenarios import PG_MIGRATION

    b = brief(PG_MIGRATION)
    events = [
        e async for e in planner_stub.StreamGeneratePlan(pb.StreamGeneratePlanRequest(brief=b))
    ]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert kinds.count("completed") == 1
    phases = [e.progress.phase for e in events if e.WhichOneof("event") == "progress"]
    assert phases == [
        generation_pb2.PLANNING_PHASE_ANALYZING,
        generation_pb2.PLANNING_PHASE_DECOMPOSING,
        generation_pb2.PLANNING_PHASE_ASSIGNING,
        generation_pb2.PLANNING_PHASE_SCHEDULING,
        generation_pb2.PLANNING_PHASE_ASSESSING,
    ]
    proposed = [e.task_proposed.task.id for e in events if e.WhichOneof("event") == "task_proposed"]
    unary = (await planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=b))).result
    assert events[-1].completed == unary
    assert proposed == [g.task.id for g in unary.tasks]


async def test_vague_requests_are_invalid_with_a_reason_and_a_hint(planner_stub):
    b = generation_pb2.PlanBrief(name="x", description="Deploy the thing")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=b))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = details_of(e.value)["ErrorInfo"]
    assert info.reason == "TASK_DESCRIPTION_TOO_VAGUE"
    assert info.metadata["hint"]
    call = planner_stub.StreamGeneratePlan(pb.StreamGeneratePlanRequest(brief=b))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for _ in call:
            raise AssertionError("no event may precede the error")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_bad_briefs_report_every_violation(planner_stub):
    b = generation_pb2.PlanBrief(
        name="",
        description="",
        available_agents=[agent_pb2.Agent(id="a"), agent_pb2.Agent(id="a")],
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=b, request_id="x" * 300))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details_of(e.value)["BadRequest"].field_violations}
    assert "request_id" in fields


@pytest.mark.parametrize(
    "context, path",
    [
        ({"team_size": float("inf")}, "brief.context.team_size"),
        ({"team": {"sizes": [3, float("nan")]}}, "brief.context.team.sizes[1]"),
    ],
)
async def test_context_numbers_without_a_json_form_are_invalid(plans, planner_stub, context, path):
    b = brief(SCENARIOS["website"])
    b.context.Clear()
    b.context.update(context)
    for call in (
        planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=b, persist=True)),
        planner_stub.StreamGeneratePlan(pb.StreamGeneratePlanRequest(brief=b, persist=True)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            if isinstance(call, grpc.aio.UnaryStreamCall):
                async for _ in call:
                    raise AssertionError("no event may precede the error")
            else:
                await call
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
        (v,) = details_of(e.value)["BadRequest"].field_violations
        assert v.field == path and "finite" in v.description
    assert (await plans.ListPlans(ps.ListPlansRequest())).total_size == 0


@pytest.mark.parametrize(
    "constraint", ["within 99999999999 days", "within 3000000 days", f"within {'9' * 400} weeks"]
)
async def test_a_deadline_too_far_away_is_a_warning_not_a_failure(planner_stub, constraint):
    b = brief(SCENARIOS["website"])
    del b.constraints[:]
    b.constraints.append(constraint)
    r = (await planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=b))).result
    assert r.deadline_hours == 0
    assert any(
        w.code == "CONSTRAINT_NOT_UNDERSTOOD" and "at most 100 years ahead" in w.message
        for w in r.warnings
    )


async def test_persisted_plan_reads_back_equal_and_is_idempotent(plans, planner_stub):
    from tests.planning.scenarios import ECOMMERCE_RELEASE

    b = brief(ECOMMERCE_RELEASE)
    req = pb.GeneratePlanRequest(brief=b, persist=True, request_id="gen-1")
    r = (await planner_stub.GeneratePlan(req)).result
    assert r.plan.id.startswith("pln_")
    stored = await plans.ListTasks(ps.ListTasksRequest(plan_id=r.plan.id, page_size=1000))
    assert list(stored.tasks) == [g.task for g in r.tasks]
    assert all(t.id.startswith("tsk_") for t in stored.tasks)
    got = (await plans.GetPlan(ps.GetPlanRequest(plan_id=r.plan.id))).plan
    assert got == r.plan
    again = (await planner_stub.GeneratePlan(req)).result
    assert again == r
    streamed = [
        e
        async for e in planner_stub.StreamGeneratePlan(
            pb.StreamGeneratePlanRequest(brief=b, persist=True, request_id="gen-1")
        )
    ]
    assert streamed[-1].completed == r  # a retry through the stream: still one plan
    assert (await plans.ListPlans(ps.ListPlansRequest())).total_size == 1


class GatedPlanner(EmbeddedPlanner):
    """The embedded planner, held after its first event until released (or cancelled)."""

    def __init__(self) -> None:
        super().__init__()
        self.first_sent = asyncio.Event()
        self.release = asyncio.Event()
        self.closed = asyncio.Event()

    async def generate(self, request, *, today: date) -> AsyncIterator[planning.PlanEvent]:
        try:
            first = True
            async for event in super().generate(request, today=today):
                yield event
                if first:
                    first = False
                    self.first_sent.set()
                    await self.release.wait()
        finally:
            self.closed.set()


async def test_cancelling_the_stream_stops_the_work_and_persists_nothing(db_path):
    from tests.planning.scenarios import WEBSITE

    gated = GatedPlanner()
    running = await start(Config(listen="127.0.0.1:0", db_path=db_path), planner=gated)
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = planning_service_pb2_grpc.PlanningServiceStub(ch)
            call = stub.StreamGeneratePlan(
                pb.StreamGeneratePlanRequest(brief=brief(WEBSITE), persist=True)
            )
            first = await call.read()
            assert first.WhichOneof("event") == "started"
            await asyncio.wait_for(gated.first_sent.wait(), 10)
            call.cancel()
            await asyncio.wait_for(gated.closed.wait(), 10)  # the server stopped the planner
            listed = await plan_service_pb2_grpc.PlanServiceStub(ch).ListPlans(
                ps.ListPlansRequest()
            )
            assert listed.total_size == 0
    finally:
        await running.stop(grace=0.5)


async def add_task(plans, plan_id, **kw):
    return (
        await plans.CreateTask(ps.CreateTaskRequest(plan_id=plan_id, task=task_pb2.Task(**kw)))
    ).task


async def test_decompose_persists_children_sums_and_rewires(plans, planner_stub):
    p = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    before = await add_task(plans, p.id, title="Gather requirements", estimated_hours=4)
    parent = await add_task(
        plans,
        p.id,
        title="Build REST API for orders",
        description="Backend API service with authentication and PostgreSQL storage",
        estimated_hours=40,
        dependencies=[before.id],
        assigned_to="bea",
    )
    after = await add_task(plans, p.id, title="Launch", dependencies=[parent.id])
    r = await planner_stub.DecomposeTask(
        pb.DecomposeTaskRequest(
            task_id=parent.id, level=pb.DECOMPOSITION_LEVEL_STANDARD, persist=True, request_id="d-1"
        )
    )
    assert 4 <= len(r.subtasks) <= 6
    assert round(sum(t.estimated_hours for t in r.subtasks), 2) == 40
    assert all(t.parent_task_id == parent.id and t.id.startswith("tsk_") for t in r.subtasks)
    child_ids = {t.id for t in r.subtasks}
    roots = [t for t in r.subtasks if not set(t.dependencies) & child_ids]
    assert roots and all(before.id in t.dependencies for t in roots)
    assert list(r.rewired_task_ids) == [after.id]
    rewired = (await plans.GetTask(ps.GetTaskRequest(task_id=after.id))).task
    assert parent.id not in rewired.dependencies
    assert set(rewired.dependencies) <= child_ids and rewired.dependencies
    assert r.plan_revision == 5
    again = await planner_stub.DecomposeTask(
        pb.DecomposeTaskRequest(
            task_id=parent.id, level=pb.DECOMPOSITION_LEVEL_STANDARD, persist=True, request_id="d-1"
        )
    )
    assert again == r  # a retry returns the first result
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await planner_stub.DecomposeTask(pb.DecomposeTaskRequest(task_id=parent.id))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(e.value)["ErrorInfo"].reason == "TASK_ALREADY_DECOMPOSED"


@pytest.mark.parametrize(
    ("level", "low", "high"),
    [
        (pb.DECOMPOSITION_LEVEL_SUMMARY, 2, 3),
        (pb.DECOMPOSITION_LEVEL_STANDARD, 4, 6),
        (pb.DECOMPOSITION_LEVEL_DETAILED, 7, 12),
    ],
)
async def test_decompose_free_description_by_level(planner_stub, level, low, high):
    r = await planner_stub.DecomposeTask(
        pb.DecomposeTaskRequest(
            description="Set up a CI/CD pipeline for the payments service",
            level=level,
            estimated_hours=30,
        )
    )
    assert low <= len(r.subtasks) <= high
    assert round(sum(t.estimated_hours for t in r.subtasks), 2) == 30
    assert [t.id for t in r.subtasks] == [f"s{i}" for i in range(1, len(r.subtasks) + 1)]


async def test_decompose_errors(plans, planner_stub):
    p = (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    done = await add_task(plans, p.id, title="Write docs", status=task_pb2.TASK_STATUS_DONE)
    cases = [
        (pb.DecomposeTaskRequest(task_id=done.id), grpc.StatusCode.FAILED_PRECONDITION),
        (pb.DecomposeTaskRequest(task_id="tsk_none"), grpc.StatusCode.NOT_FOUND),
        (pb.DecomposeTaskRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (
            pb.DecomposeTaskRequest(description="Build an API", persist=True),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.DecomposeTaskRequest(description="Build an API", level=9),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for req, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await planner_stub.DecomposeTask(req)
        assert e.value.code() == code, req
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await planner_stub.DecomposeTask(pb.DecomposeTaskRequest(task_id=done.id))
    assert details_of(e.value)["ErrorInfo"].reason == "TASK_DONE"


async def test_estimate_uses_history_and_agent_pace(plans, planner_stub):
    p = (
        await plans.CreatePlan(
            ps.CreatePlanRequest(
                plan=plan_pb2.Plan(
                    name="P",
                    project_id="shop",
                    agents=[agent_pb2.Agent(id="ann", capabilities=["backend"])],
                )
            )
        )
    ).plan
    for i in range(6):
        await add_task(
            plans,
            p.id,
            title=f"Build REST endpoint for orders v{i}",
            estimated_hours=8,
            actual_hours=12,
            status=task_pb2.TASK_STATUS_DONE,
            assigned_to="ann",
        )
    r = await planner_stub.EstimateTaskDuration(
        pb.EstimateTaskDurationRequest(
            task_description="Build REST endpoint for invoices", agent_id="ann", plan_id=p.id
        )
    )
    assert r.method.startswith("history")
    assert r.similar_task_ids
    assert r.low_hours <= r.estimate_hours <= r.high_hours
    assert 0 < r.confidence <= 1
    lib = await planner_stub.EstimateTaskDuration(
        pb.EstimateTaskDurationRequest(task_description="Build REST endpoint for invoices")
    )
    assert lib.method in ("library", "default") and not lib.similar_task_ids
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await planner_stub.EstimateTaskDuration(
            pb.EstimateTaskDurationRequest(task_description="x y z", agent_id="zed", plan_id=p.id)
        )
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(e.value)["ErrorInfo"].reason == "AGENT_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await planner_stub.EstimateTaskDuration(pb.EstimateTaskDurationRequest())
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unstored_tasks_carry_no_stored_fields(planner_stub):
    from tests.planning.scenarios import WEBSITE

    r = (await planner_stub.GeneratePlan(pb.GeneratePlanRequest(brief=brief(WEBSITE)))).result
    for g in r.tasks:
        assert not g.task.HasField("create_time") and not g.task.etag
        assert g.task.HasField("schedule")  # the proposed schedule is real information
    d = await planner_stub.DecomposeTask(pb.DecomposeTaskRequest(description="Build an API"))
    assert all(not t.HasField("create_time") and not t.etag for t in d.subtasks)


async def test_streams_cancelled_after_their_first_event_end_cancelled_not_failed(db_path):
    """Consumers that stop reading (cancel) are routine; the server must record them as
    CANCELLED, never fail while cleaning up the call (UNKNOWN)."""
    from tests.conftest import wait_for
    from tests.planning.scenarios import WEBSITE

    running = await start(Config(listen="127.0.0.1:0", db_path=db_path))
    method = "/plansmith.v1.PlanningService/StreamGeneratePlan"

    def codes() -> dict[str, int]:
        for m in running.telemetry.stats.summary(3600):
            if m.method == method:
                return m.total_codes
        return {}

    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = planning_service_pb2_grpc.PlanningServiceStub(ch)

            async def read_one_then_cancel() -> None:
                call = stub.StreamGeneratePlan(pb.StreamGeneratePlanRequest(brief=brief(WEBSITE)))
                await call.read()
                call.cancel()

            await asyncio.gather(*(read_one_then_cancel() for _ in range(20)))

            async def all_recorded() -> bool:
                return sum(codes().values()) == 20

            await wait_for(all_recorded)
        assert set(codes()) <= {"CANCELLED", "OK"}, codes()
    finally:
        await running.stop(grace=0.5)
