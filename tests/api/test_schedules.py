"""PlanningService optimization, analysis and suggestions through the real server."""

from __future__ import annotations

import itertools

import grpc
import pytest
from google.protobuf import duration_pb2, json_format

from plansmith.v1 import agent_pb2, plan_pb2, planning_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as ps
from plansmith.v1 import planning_service_pb2 as pb
from plansmith_server import planning
from plansmith_server.domain import schedules
from plansmith_server.errors import InvalidArgumentError
from tests.conftest import details_of

T = task_pb2.Task
TODO, DONE = task_pb2.TASK_STATUS_TODO, task_pb2.TASK_STATUS_DONE


@pytest.fixture
def sched(channel):
    return planning_service_pb2_grpc.PlanningServiceStub(channel)


async def make_plan(plans, agents=(), constraints=()):
    return (
        await plans.CreatePlan(
            ps.CreatePlanRequest(
                plan=plan_pb2.Plan(name="P", agents=list(agents), constraints=list(constraints))
            )
        )
    ).plan


async def batch(plans, plan_id, tasks):
    r = await plans.BatchCreateTasks(ps.BatchCreateTasksRequest(plan_id=plan_id, tasks=tasks))
    return {t.title: t for t in r.tasks}


AGENTS = [
    agent_pb2.Agent(id="ann", capabilities=["backend", "Python"]),
    agent_pb2.Agent(id="bob", capabilities=["frontend", "React"]),
    agent_pb2.Agent(id="cat", capabilities=["backend", "frontend"]),
]


async def test_optimize_respects_dependencies_and_capabilities_and_never_does_worse(plans, sched):
    p = await make_plan(plans, AGENTS)
    tasks = await batch(
        plans,
        p.id,
        [
            T(
                id="api",
                title="api",
                estimated_hours=8,
                required_capabilities=["backend"],
                assigned_to="ann",
            ),
            T(
                id="db",
                title="db",
                estimated_hours=6,
                required_capabilities=["backend"],
                assigned_to="ann",
            ),
            T(
                id="ui",
                title="ui",
                estimated_hours=10,
                required_capabilities=["frontend"],
                assigned_to="bob",
            ),
            T(
                id="wire",
                title="wire",
                estimated_hours=4,
                dependencies=["api", "ui"],
                assigned_to="ann",
            ),
            T(id="docs", title="docs", estimated_hours=3, assigned_to="ann"),
        ],
    )
    r = await sched.OptimizePlan(
        pb.OptimizePlanRequest(plan_id=p.id, time_limit=duration_pb2.Duration(seconds=5))
    )
    by_id = {s.task_id: s for s in r.schedule}
    assert set(by_id) == {t.id for t in tasks.values()}
    caps = {a.id: list(a.capabilities) for a in AGENTS}
    for t in tasks.values():
        s = by_id[t.id]
        assert planning.agent_can_do(caps[s.agent_id], t.required_capabilities)
        for d in t.dependencies:
            assert s.start_offset_hours >= by_id[d].end_offset_hours - 1e-9
    per_agent: dict[str, list] = {}
    for s in r.schedule:
        per_agent.setdefault(s.agent_id, []).append((s.start_offset_hours, s.end_offset_hours))
    for spans in per_agent.values():
        spans.sort()
        for (_, e1), (s2, _) in itertools.pairwise(spans):
            assert s2 >= e1 - 1e-9, "an agent does one task at a time"
    assert r.duration_after_hours <= r.duration_before_hours
    assert r.lower_bound_hours <= r.duration_after_hours + 1e-9
    assert r.duration_after_hours == pytest.approx(14)  # ui (10) then wire (4)
    assert r.proven_optimal and r.optimality_gap == 0
    assert r.critical_chain and r.solver.solver
    assert r.plan_revision == 0  # not applied
    untouched = (await plans.GetTask(ps.GetTaskRequest(task_id=tasks["docs"].id))).task
    assert untouched == tasks["docs"]


async def test_optimize_apply_is_atomic_and_idempotent(plans, sched):
    p = await make_plan(plans, AGENTS)
    tasks = await batch(
        plans,
        p.id,
        [
            T(id="a", title="a", estimated_hours=5, required_capabilities=["backend"]),
            T(id="b", title="b", estimated_hours=5, required_capabilities=["backend"]),
            T(id="c", title="c", estimated_hours=2, dependencies=["a", "b"]),
        ],
    )
    req = pb.OptimizePlanRequest(
        plan_id=p.id, apply=True, request_id="opt-1", time_limit=duration_pb2.Duration(seconds=5)
    )
    r = await sched.OptimizePlan(req)
    assert r.plan_revision == 3  # create, batch, one revision for the whole schedule
    listed = (await plans.ListTasks(ps.ListTasksRequest(plan_id=p.id))).tasks
    placed = {s.task_id: s for s in r.schedule}
    for t in listed:
        assert t.assigned_to == placed[t.id].agent_id
        assert t.schedule.start_offset_hours == pytest.approx(placed[t.id].start_offset_hours)
        assert t.schedule.end_offset_hours == pytest.approx(placed[t.id].end_offset_hours)
    assert {placed[tasks["a"].id].agent_id, placed[tasks["b"].id].agent_id} == {"ann", "cat"}
    again = await sched.OptimizePlan(req)
    assert again.plan_revision == r.plan_revision
    assert [s.task_id for s in again.schedule] == [s.task_id for s in r.schedule]
    plan = (await plans.GetPlan(ps.GetPlanRequest(plan_id=p.id))).plan
    assert plan.revision == 3


async def test_optimize_errors(plans, sched):
    empty = await make_plan(plans, AGENTS)
    cases = [
        (pb.OptimizePlanRequest(plan_id="pln_none"), grpc.StatusCode.NOT_FOUND, "PLAN_NOT_FOUND"),
        (
            pb.OptimizePlanRequest(plan_id=empty.id),
            grpc.StatusCode.FAILED_PRECONDITION,
            "PLAN_EMPTY",
        ),
        (
            pb.OptimizePlanRequest(plan_id=empty.id, time_limit=duration_pb2.Duration(seconds=61)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        *(
            # Durations protobuf parses but the type forbids (they once passed as 58.85 s
            # and 0.5 s): nanos out of range, or of the other sign than seconds.
            (
                pb.OptimizePlanRequest(
                    plan_id=empty.id,
                    time_limit=duration_pb2.Duration(seconds=seconds, nanos=nanos),
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_ARGUMENT",
            )
            for seconds, nanos in [(61, -2_147_483_647), (-1, 1_500_000_000), (2, -1)]
        ),
        (
            pb.OptimizePlanRequest(plan_id=empty.id, goals=[7]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        (pb.OptimizePlanRequest(), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    ]
    for req, code, reason in cases:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await sched.OptimizePlan(req)
        assert e.value.code() == code, req
        details = details_of(e.value)
        assert details["ErrorInfo"].reason == reason
        if reason == "PLAN_EMPTY":  # says which plan, like every FAILED_PRECONDITION
            violation = details["PreconditionFailure"].violations[0]
            assert (violation.type, violation.subject) == ("PLAN_EMPTY", f"plans/{empty.id}")


async def test_cpm_hand_checked_with_slack_and_critical_path(plans, sched):
    p = await make_plan(plans)
    t = await batch(
        plans,
        p.id,
        [
            T(id="a", title="a", estimated_hours=4),
            T(id="b", title="b", estimated_hours=2, dependencies=["a"]),
            T(id="c", title="c", estimated_hours=3, dependencies=["a"]),
            T(id="d", title="d", estimated_hours=1, dependencies=["b", "c"]),
            T(id="done", title="done", estimated_hours=9, status=DONE),
        ],
    )
    r = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(plan_id=p.id, analysis_types=[pb.ANALYSIS_TYPE_CRITICAL_PATH])
    )
    cp = r.critical_path
    assert cp.duration_hours == pytest.approx(8)
    timing = {x.task_id: x for x in cp.timings}
    assert timing[t["b"].id].slack_hours == pytest.approx(1)
    assert timing[t["b"].id].latest_start_hours == pytest.approx(5)
    assert timing[t["done"].id].remaining_hours == 0
    assert set(cp.critical_task_ids) == {t["a"].id, t["c"].id, t["d"].id}
    assert [list(c.task_ids) for c in cp.critical_paths] == [[t["a"].id, t["c"].id, t["d"].id]]
    assert not r.HasField("risk_assessment") and not r.HasField("resource_utilization")


async def test_two_critical_paths(plans, sched):
    p = await make_plan(plans)
    t = await batch(
        plans,
        p.id,
        [
            T(id="a", title="a", estimated_hours=2),
            T(id="b", title="b", estimated_hours=3, dependencies=["a"]),
            T(id="c", title="c", estimated_hours=3, dependencies=["a"]),
        ],
    )
    r = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(plan_id=p.id, analysis_types=[pb.ANALYSIS_TYPE_CRITICAL_PATH])
    )
    paths = sorted(list(c.task_ids) for c in r.critical_path.critical_paths)
    assert paths == sorted([[t["a"].id, t["b"].id], [t["a"].id, t["c"].id]])


async def test_utilization_finds_a_known_overallocation(plans, sched):
    p = await make_plan(plans, AGENTS)
    t = await batch(
        plans,
        p.id,
        [
            T(id="x", title="x", estimated_hours=6, assigned_to="ann"),
            T(id="y", title="y", estimated_hours=4, assigned_to="ann"),
            T(id="z", title="z", estimated_hours=2),
            T(id="w", title="w", estimated_hours=2, required_capabilities=["kubernetes"]),
        ],
    )
    r = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(plan_id=p.id, analysis_types=[pb.ANALYSIS_TYPE_RESOURCE_UTILIZATION])
    )
    ru = r.resource_utilization
    ann = next(a for a in ru.agents if a.agent_id == "ann")
    assert ann.remaining_hours == pytest.approx(10)
    assert [sorted(c.task_ids) for c in ann.overlapping_tasks] == [sorted([t["x"].id, t["y"].id])]
    assert set(ru.unassigned_task_ids) == {t["z"].id, t["w"].id}
    gaps = {g.task_id: list(g.missing_capabilities) for g in ru.capability_gaps}
    assert gaps == {t["w"].id: ["kubernetes"]}


async def test_monte_carlo_is_deterministic_per_seed_and_matches_an_analytic_case(plans, sched):
    p = await make_plan(plans)
    # One task, triangular(2, 4, 6): P(duration <= 4) = 0.5 exactly.
    await batch(
        plans, p.id, [T(title="only", estimated_hours=4, optimistic_hours=2, pessimistic_hours=6)]
    )
    req = pb.AnalyzePlanRequest(
        plan_id=p.id,
        analysis_types=[pb.ANALYSIS_TYPE_RISK_ASSESSMENT],
        monte_carlo_samples=20_000,
        deadline_hours=4,
        seed=7,
    )
    a = await sched.AnalyzePlan(req)
    b = await sched.AnalyzePlan(req)
    assert a == b
    ra = a.risk_assessment
    assert ra.samples == 20_000 and ra.seed == 7
    assert ra.deadline_probability == pytest.approx(0.5, abs=0.015)
    assert ra.p50_hours == pytest.approx(4, abs=0.05)
    assert ra.p50_hours <= ra.p80_hours <= ra.p95_hours
    other = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(
            plan_id=p.id, analysis_types=[pb.ANALYSIS_TYPE_RISK_ASSESSMENT], seed=8
        )
    )
    assert other.risk_assessment.p80_hours != ra.p80_hours


async def test_risk_items_and_deadline_from_constraints(plans, sched):
    p = await make_plan(plans, AGENTS, constraints=["within 1 week"])
    await batch(
        plans,
        p.id,
        [
            T(id="a", title="a", estimated_hours=30, assigned_to="ann"),
            T(id="b", title="b", estimated_hours=30, dependencies=["a"], assigned_to="ann"),
            T(id="f", title="f", estimated_hours=2, status=task_pb2.TASK_STATUS_FAILED),
        ],
    )
    r = await sched.AnalyzePlan(pb.AnalyzePlanRequest(plan_id=p.id, monte_carlo_samples=2000))
    ra = r.risk_assessment
    assert ra.deadline_hours == pytest.approx(40)
    assert ra.deadline_probability < 0.05
    titles = " ".join(x.title.lower() for x in ra.risks)
    assert "failed task" in titles and "deadline" in titles
    assert ra.level >= 3 and 0 <= ra.score <= 100
    assert r.HasField("critical_path") and r.HasField("resource_utilization")


async def test_analyze_errors(plans, sched):
    p = await make_plan(plans)
    for req, code in [
        (pb.AnalyzePlanRequest(plan_id="pln_x"), grpc.StatusCode.NOT_FOUND),
        (pb.AnalyzePlanRequest(plan_id=p.id), grpc.StatusCode.FAILED_PRECONDITION),
        (
            pb.AnalyzePlanRequest(plan_id=p.id, monte_carlo_samples=100_001),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (pb.AnalyzePlanRequest(plan_id=p.id, deadline_hours=-1), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.AnalyzePlanRequest(plan_id=p.id, analysis_types=[9]), grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await sched.AnalyzePlan(req)
        assert e.value.code() == code, req


async def test_suggestions_on_an_obvious_plan(plans, sched):
    p = await make_plan(plans, AGENTS)
    t = await batch(
        plans,
        p.id,
        [
            T(id="done", title="done", estimated_hours=1, status=DONE),
            T(
                id="crit",
                title="critical API",
                estimated_hours=8,
                dependencies=["done"],
                priority=task_pb2.TASK_PRIORITY_HIGH,
                assigned_to="ann",
                required_capabilities=["backend"],
            ),
            T(id="after", title="after", estimated_hours=8, dependencies=["crit"]),
            T(
                id="side",
                title="side quest",
                estimated_hours=1,
                priority=task_pb2.TASK_PRIORITY_LOW,
                required_capabilities=["backend"],
            ),
            T(id="ui", title="ui", estimated_hours=2, required_capabilities=["frontend"]),
            T(
                id="blocked",
                title="blocked",
                estimated_hours=2,
                dependencies=["side"],
                assigned_to="ann",
            ),
            T(id="bobs", title="bobs", estimated_hours=2, assigned_to="bob"),
        ],
    )
    r = await sched.SuggestNextTasks(
        pb.SuggestNextTasksRequest(plan_id=p.id, agent_id="ann", count=5)
    )
    ids = [s.task_id for s in r.suggestions]
    assert ids[0] == t["critical API"].id
    assert len(ids) == 2
    assert r.suggestions[0].critical and r.suggestions[0].assigned_to_agent
    assert r.suggestions[0].title == "critical API" and r.suggestions[0].reason
    assert t["side quest"].id in ids
    assert t["after"].id not in ids, "its dependency is not done"
    assert t["ui"].id not in ids, "ann cannot do frontend work"
    assert t["blocked"].id not in ids and t["bobs"].id not in ids and t["done"].id not in ids
    scores = [s.score for s in r.suggestions]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await sched.SuggestNextTasks(pb.SuggestNextTasksRequest(plan_id=p.id, agent_id="zed"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(e.value)["ErrorInfo"].reason == "AGENT_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await sched.SuggestNextTasks(
            pb.SuggestNextTasksRequest(plan_id=p.id, agent_id="ann", count=51)
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_every_planning_rpc_is_served(channel):
    from plansmith.v1 import planning_service_pb2 as mod

    service = mod.DESCRIPTOR.services_by_name["PlanningService"]
    for method in service.methods:
        call = (
            channel.unary_unary(
                f"/{service.full_name}/{method.name}",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
            if not method.server_streaming
            else channel.unary_stream(
                f"/{service.full_name}/{method.name}",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
        )
        try:
            result = call(b"")
            if method.server_streaming:
                async for _ in result:
                    pass
            else:
                await result
        except grpc.aio.AioRpcError as e:
            assert e.code() != grpc.StatusCode.UNIMPLEMENTED, method.name


async def test_any_int64_seed_is_a_seed(plans, sched):
    p = await make_plan(plans)
    await batch(
        plans, p.id, [T(title="only", estimated_hours=4, optimistic_hours=2, pessimistic_hours=6)]
    )

    async def p80(seed: int) -> float:
        r = await sched.AnalyzePlan(
            pb.AnalyzePlanRequest(
                plan_id=p.id,
                analysis_types=[pb.ANALYSIS_TYPE_RISK_ASSESSMENT],
                monte_carlo_samples=500,
                seed=seed,
            )
        )
        assert r.risk_assessment.seed == seed
        return r.risk_assessment.p80_hours

    for seed in (-1, -(2**63)):
        assert await p80(seed) == await p80(seed)
    # -1 is the unsigned pattern 2**64 - 1: another seed than 1
    assert await p80(-1) != await p80(1)


async def test_samples_are_bounded_by_the_plan_size(plans, sched):
    p = await make_plan(plans)
    await batch(plans, p.id, [T(title=f"t{i}", estimated_hours=1) for i in range(250)])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await sched.AnalyzePlan(
            pb.AnalyzePlanRequest(
                plan_id=p.id,
                analysis_types=[pb.ANALYSIS_TYPE_RISK_ASSESSMENT],
                monte_carlo_samples=100_000,
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (v,) = details_of(e.value)["BadRequest"].field_violations
    assert v.field == "monte_carlo_samples"
    assert v.description.startswith("at most 80000 for the 250 tasks to simulate")
    # Not asking for the risk assessment, the samples do not matter.
    r = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(
            plan_id=p.id,
            analysis_types=[pb.ANALYSIS_TYPE_CRITICAL_PATH],
            monte_carlo_samples=100_000,
        )
    )
    assert r.HasField("critical_path") and not r.HasField("risk_assessment")


def test_default_samples_shrink_for_large_plans():
    assert schedules._samples(0, 250) == 10_000
    assert schedules._samples(0, 2_000) == 10_000
    assert schedules._samples(0, 8_000) == 2_500
    assert schedules._samples(0, 100_000) == 1_000  # the floor
    assert schedules._samples(80_000, 250) == 80_000
    # The floor is a bound too: what the default runs, a caller may ask for.
    assert schedules._samples(1_000, 100_000) == 1_000
    with pytest.raises(InvalidArgumentError):
        schedules._samples(1_001, 100_000)


async def test_a_stored_deadline_too_far_away_is_ignored(plans, sched):
    p = await make_plan(plans, constraints=["within 99999999999 days"])
    await batch(plans, p.id, [T(title="a", estimated_hours=3)])
    r = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(
            plan_id=p.id, analysis_types=[pb.ANALYSIS_TYPE_RISK_ASSESSMENT], monte_carlo_samples=500
        )
    )
    assert r.risk_assessment.deadline_hours == 0


async def test_a_dependency_on_a_deep_subtask_tree_reaches_its_leaves(plans, sched):
    # 1,200 tasks, each a subtask of the one before (deeper than Python's recursion
    # limit, which once made every analysis of such a plan INTERNAL), and a task after
    # the root: it waits for the root's work, which is the one leaf at the bottom.
    p = await make_plan(plans, AGENTS)

    async def chain(name: str, n: int, hours: float, top: str) -> list[task_pb2.Task]:
        """n tasks, each a subtask of the one before; the first a subtask of `top`."""
        tasks = [
            T(id=f"{name}{i}", title=f"{name}{i}", estimated_hours=hours, parent_task_id=up)
            for i, up in enumerate([top, *(f"{name}{i}" for i in range(n - 1))])
        ]
        r = await plans.BatchCreateTasks(ps.BatchCreateTasksRequest(plan_id=p.id, tasks=tasks))
        return list(r.tasks)

    first = await chain("n", 1_000, 1, "")
    assert [t.parent_task_id for t in first[1:]] == [t.id for t in first[:-1]]
    leaf = (await chain("m", 200, 2, first[-1].id))[-1].id
    root = first[0].id
    after = (
        await plans.CreateTask(
            ps.CreateTaskRequest(
                plan_id=p.id, task=T(title="after", estimated_hours=3, dependencies=[root])
            )
        )
    ).task
    r = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(plan_id=p.id, analysis_types=[pb.ANALYSIS_TYPE_CRITICAL_PATH])
    )
    assert list(r.critical_path.critical_task_ids) == [leaf, after.id]
    assert r.critical_path.duration_hours == 5
    s = await sched.SuggestNextTasks(pb.SuggestNextTasksRequest(plan_id=p.id, agent_id="ann"))
    assert [x.task_id for x in s.suggestions] == [leaf]


async def test_a_parent_must_be_a_task_of_the_plan_or_an_earlier_one_of_the_batch(plans, sched):
    p = await make_plan(plans)
    other = await make_plan(plans)
    elsewhere = (await batch(plans, other.id, [T(title="x")]))["x"].id
    cases = [
        (ps.CreateTaskRequest(plan_id=p.id, task=T(title="a", parent_task_id="tsk_none")), "task"),
        (ps.CreateTaskRequest(plan_id=p.id, task=T(title="a", parent_task_id=elsewhere)), "task"),
        (ps.CreateTaskRequest(plan_id=p.id, task=T(title="a", parent_task_id="t" * 129)), "task"),
        (
            ps.BatchCreateTasksRequest(
                plan_id=p.id, tasks=[T(id="a", title="a", parent_task_id="a")]
            ),
            "tasks[0]",
        ),
        (
            ps.BatchCreateTasksRequest(
                plan_id=p.id,
                tasks=[T(id="a", title="a", parent_task_id="b"), T(id="b", title="b")],
            ),
            "tasks[0]",
        ),
    ]
    for req, where in cases:
        call = plans.CreateTask if isinstance(req, ps.CreateTaskRequest) else plans.BatchCreateTasks
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call(req)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, req
        fields = [v.field for v in details_of(e.value)["BadRequest"].field_violations]
        assert fields == [f"{where}.parent_task_id"], (req, fields)
    assert (await plans.ListTasks(ps.ListTasksRequest(plan_id=p.id))).total_size == 0
    kept = await batch(plans, p.id, [T(id="a", title="a"), T(title="b", parent_task_id="a")])
    assert kept["b"].parent_task_id == kept["a"].id


async def test_a_plan_whose_summary_dependencies_explode_is_refused_clearly(plans, sched):
    # 1,001 subtasks under one summary and 1,000 tasks waiting for it stand for 1,001,000
    # dependencies (a summary of 5,000 with 5,000 waiting took 35 s and 3 GB to analyze).
    p = await make_plan(plans, AGENTS)
    root = (await batch(plans, p.id, [T(title="root")]))["root"].id
    for first, last in ((0, 501), (501, 1_001)):
        await batch(
            plans,
            p.id,
            [T(title=f"s{i}", estimated_hours=1, parent_task_id=root) for i in range(first, last)],
        )
    await batch(
        plans, p.id, [T(title=f"w{i}", estimated_hours=2, dependencies=[root]) for i in range(999)]
    )
    small = await sched.AnalyzePlan(
        pb.AnalyzePlanRequest(plan_id=p.id, analysis_types=[pb.ANALYSIS_TYPE_CRITICAL_PATH])
    )
    assert small.critical_path.duration_hours == 3  # 1,001 x 999: still within the bound
    await batch(plans, p.id, [T(title="one more", dependencies=[root])])
    for call in (
        sched.AnalyzePlan(pb.AnalyzePlanRequest(plan_id=p.id)),
        sched.OptimizePlan(pb.OptimizePlanRequest(plan_id=p.id)),
        sched.SuggestNextTasks(pb.SuggestNextTasksRequest(plan_id=p.id, agent_id="ann")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = details_of(e.value)["ErrorInfo"]
        assert info.reason == "PLAN_TOO_INTERCONNECTED"
        assert "more than 1,000,000 dependencies" in e.value.details()


README_BRIEF = {
    "name": "Orders DB upgrade",
    "description": "Upgrade the orders PostgreSQL database from 12 to 15 in production",
    "requirements": ["Upgrade PostgreSQL 12 to 15", "No data loss"],
    "constraints": ["within 3 weeks"],
    "available_agents": [
        {"id": "dba", "capabilities": ["DBA", "PostgreSQL"]},
        {"id": "ops", "capabilities": ["DevOps engineer", "Kubernetes"]},
    ],
    "context": {"environment": "production", "backup_required": True, "downtime_allowed": False},
}


async def test_the_readme_plan_forecasts_no_less_than_its_schedule(sched):
    # The README's database plan, stored, optimized and applied: its schedule (each agent
    # one task at a time) at most-likely durations took 88.5 h, and the simulation, which
    # ignored the agents, forecast a median of 77 h. Durations skewed towards their
    # pessimistic ends cannot make the plan as assigned faster than that.
    gen = await sched.GeneratePlan(
        json_format.ParseDict({"brief": README_BRIEF, "persist": True}, pb.GeneratePlanRequest())
    )
    plan_id = gen.result.plan.id
    opt = await sched.OptimizePlan(
        pb.OptimizePlanRequest(
            plan_id=plan_id, time_limit=duration_pb2.Duration(seconds=5), apply=True
        )
    )
    r = await sched.AnalyzePlan(pb.AnalyzePlanRequest(plan_id=plan_id, seed=1))
    schedule = r.critical_path.resource_constrained_duration_hours
    assert schedule == pytest.approx(opt.duration_after_hours)
    assert schedule > r.critical_path.duration_hours  # the agents lengthen this plan
    ra = r.risk_assessment
    assert ra.samples == schedules.DEFAULT_SAMPLES and ra.p50_hours >= schedule
    assert ra.p50_hours <= ra.p80_hours <= ra.p95_hours
