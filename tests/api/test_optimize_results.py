"""What OptimizePlan and AnalyzePlan say, on real plans through the real server: partial
results are never optimal and say what they cover, the stored schedule agrees with the
answer, the solver and status strings are the documented ones, the time limit bounds the
whole call, and tasks are named by title as well as id."""

from __future__ import annotations

import itertools

import pytest
from google.protobuf import duration_pb2

from plansmith.v1 import agent_pb2, generation_pb2, plan_pb2, planning_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as ps
from plansmith.v1 import planning_service_pb2 as pb

SOLVERS = {"cpsat", "heuristic", "baseline"}
STATUSES = {"OPTIMAL", "FEASIBLE"}


@pytest.fixture
def sched(channel):
    return planning_service_pb2_grpc.PlanningServiceStub(channel)


def website_brief() -> generation_pb2.PlanBrief:
    """The client guide's website plan: nobody of the three holds the backend, QA or
    DevOps capabilities its testing, launch and post-launch work need."""
    b = generation_pb2.PlanBrief(
        project_id="web",
        name="Company website",
        description="Build a marketing website with a blog and a contact form",
        requirements=["Responsive design", "Blog managed through a CMS", "Contact form"],
        constraints=["Must use React for the frontend", "Launch within 6 weeks"],
        available_agents=[
            agent_pb2.Agent(id="dana", name="Dana", capabilities=["UI design", "Figma"]),
            agent_pb2.Agent(id="finn", name="Finn", capabilities=["React", "TypeScript"]),
            agent_pb2.Agent(id="bea", name="Bea", capabilities=["Python", "PostgreSQL"]),
        ],
    )
    b.context.update({"environment": "production"})
    return b


async def stored_website(sched) -> str:
    r = await sched.GeneratePlan(
        pb.GeneratePlanRequest(brief=website_brief(), persist=True, request_id="web-1")
    )
    assert r.result.capability_gaps, "the scenario needs work nobody can do"
    return r.result.plan.id


async def all_tasks(plans, plan_id: str) -> dict[str, task_pb2.Task]:
    r = await plans.ListTasks(ps.ListTasksRequest(plan_id=plan_id, page_size=1000))
    return {t.id: t for t in r.tasks}


async def test_a_plan_with_unschedulable_work_gets_a_partial_result_never_optimal(plans, sched):
    plan_id = await stored_website(sched)
    before = await all_tasks(plans, plan_id)
    r = await sched.OptimizePlan(
        pb.OptimizePlanRequest(
            plan_id=plan_id,
            apply=True,
            request_id="web-opt-1",
            time_limit=duration_pb2.Duration(seconds=2),
        )
    )
    # Work nobody can do is listed, with a reason naming what is missing; it is left out.
    assert r.partial and r.unschedulable
    left_out = {u.task_id: u for u in r.unschedulable}
    missing = {c for u in r.unschedulable for c in u.missing_capabilities}
    assert {"qa", "devops"} <= missing
    for u in r.unschedulable:
        assert u.task_title == before[u.task_id].title
        if u.missing_capabilities:
            assert not u.blocked_by_task_ids
            assert u.reason == "no agent of the plan holds " + ", ".join(u.missing_capabilities)
        else:
            assert u.blocked_by_task_ids and set(u.blocked_by_task_ids) <= set(left_out)
            assert "cannot be scheduled" in u.reason
            assert before[u.blocked_by_task_ids[0]].title in u.reason
    assert not left_out.keys() & {s.task_id for s in r.schedule}
    assert r.unscheduled_hours == pytest.approx(sum(before[t].estimated_hours for t in left_out))
    # Never optimal for the whole plan, and the status strings say the same.
    assert not r.proven_optimal
    assert r.solver.status == "FEASIBLE"
    assert r.solver.solver in SOLVERS
    # The duration is the scheduled tasks' and the stored schedule is the one returned.
    assert r.duration_after_hours == pytest.approx(max(s.end_offset_hours for s in r.schedule))
    assert r.lower_bound_hours <= r.duration_after_hours + 1e-9
    after = await all_tasks(plans, plan_id)
    stored_end = max(t.schedule.end_offset_hours for t in after.values() if t.HasField("schedule"))
    assert stored_end == pytest.approx(r.duration_after_hours)
    for task_id in left_out:
        assert not after[task_id].HasField("schedule")
        assert after[task_id].assigned_to == before[task_id].assigned_to
    # A retry replays the same answer, titles and reasons included.
    again = await sched.OptimizePlan(
        pb.OptimizePlanRequest(
            plan_id=plan_id,
            apply=True,
            request_id="web-opt-1",
            time_limit=duration_pb2.Duration(seconds=2),
        )
    )
    assert list(again.unschedulable) == list(r.unschedulable)
    assert again.partial and again.unscheduled_hours == r.unscheduled_hours
    assert [s.task_title for s in again.schedule] == [s.task_title for s in r.schedule]


async def test_results_name_tasks_by_title(plans, sched):
    plan_id = await stored_website(sched)
    titles = {t.id: t.title for t in (await all_tasks(plans, plan_id)).values()}
    o = await sched.OptimizePlan(
        pb.OptimizePlanRequest(plan_id=plan_id, time_limit=duration_pb2.Duration(seconds=2))
    )
    assert o.schedule and all(s.task_title == titles[s.task_id] for s in o.schedule)
    assert o.critical_chain_titles == [titles[t] for t in o.critical_chain]
    assert all(m.task_title == titles[m.task_id] for m in o.reassignments)
    a = await sched.AnalyzePlan(pb.AnalyzePlanRequest(plan_id=plan_id, seed=1))
    cp, ru, ra = a.critical_path, a.resource_utilization, a.risk_assessment
    assert all(t.task_title == titles[t.task_id] for t in cp.timings)
    assert cp.critical_task_titles == [titles[t] for t in cp.critical_task_ids]
    for chain in [*cp.critical_paths, cp.critical_chain]:
        assert chain.task_titles == [titles[t] for t in chain.task_ids]
    assert ru.unassigned_task_titles == [titles[t] for t in ru.unassigned_task_ids]
    assert ru.capability_gaps
    assert all(g.task_title == titles[g.task_id] for g in ru.capability_gaps)
    assert ra.risks and any(r.task_ids for r in ra.risks)
    for risk in ra.risks:
        assert risk.task_titles == [titles[t] for t in risk.task_ids]
    assert all(d.task_title == titles[d.task_id] for d in [*ra.top_drivers, *ra.criticality])


async def test_generated_plans_name_the_tasks_of_their_risks_and_gaps(sched):
    r = await sched.GeneratePlan(pb.GeneratePlanRequest(brief=website_brief()))
    titles = {t.task.id: t.task.title for t in r.result.tasks}
    assert r.result.capability_gaps and r.result.risks
    assert all(g.task_title == titles[g.task_id] for g in r.result.capability_gaps)
    for risk in r.result.risks:
        assert risk.task_titles == [titles[t] for t in risk.task_ids]


async def make_plan(plans, agents, tasks) -> tuple[str, dict[str, task_pb2.Task]]:
    plan = (
        await plans.CreatePlan(ps.CreatePlanRequest(plan=plan_pb2.Plan(name="P", agents=agents)))
    ).plan
    r = await plans.BatchCreateTasks(ps.BatchCreateTasksRequest(plan_id=plan.id, tasks=tasks))
    return plan.id, {t.title: t for t in r.tasks}


def assert_valid(r: pb.OptimizePlanResponse, tasks: dict[str, task_pb2.Task]) -> None:
    """Dependencies hold and every agent does one task at a time."""
    by_id = {s.task_id: s for s in r.schedule}
    assert set(by_id) == {t.id for t in tasks.values()}
    for t in tasks.values():
        for d in t.dependencies:
            assert by_id[t.id].start_offset_hours >= by_id[d].end_offset_hours - 1e-9
    spans = sorted((s.agent_id, s.start_offset_hours, s.end_offset_hours) for s in r.schedule)
    for (a1, _, e1), (a2, s2, _) in itertools.pairwise(spans):
        assert a1 != a2 or s2 >= e1 - 1e-9


async def test_a_time_limit_too_short_for_a_solver_returns_the_current_plan_truthfully(
    plans, sched
):
    # Everything on ann while bob idles: any solver would do better in a few ms.
    agents = [agent_pb2.Agent(id="ann"), agent_pb2.Agent(id="bob")]
    tasks = [
        task_pb2.Task(
            id=f"t{i}",
            title=f"Task {i}",
            estimated_hours=2 + i % 3,
            assigned_to="ann",
            dependencies=[f"t{i - 2}"] if i >= 2 else [],
        )
        for i in range(60)
    ]
    plan_id, stored = await make_plan(plans, agents, tasks)
    r = await sched.OptimizePlan(
        pb.OptimizePlanRequest(plan_id=plan_id, time_limit=duration_pb2.Duration(nanos=1_000_000))
    )
    # The limit bounds the whole call: reading the plan used it up, so no solver ran and
    # the current plan is the answer, not claimed optimal (half of it could go to bob).
    assert r.solver.solver == "baseline"
    assert "no time left" in r.solver.note
    assert r.solver.status == "FEASIBLE" and not r.proven_optimal
    assert r.duration_after_hours == pytest.approx(r.duration_before_hours)
    assert r.lower_bound_hours < r.duration_after_hours
    assert r.optimality_gap > 0
    assert not r.reassignments
    assert_valid(r, stored)
    # With time, the optimizer moves work to bob.
    r = await sched.OptimizePlan(
        pb.OptimizePlanRequest(plan_id=plan_id, time_limit=duration_pb2.Duration(seconds=2))
    )
    assert r.solver.solver in {"cpsat", "heuristic"}
    assert r.duration_after_hours < r.duration_before_hours
    assert r.reassignments
    assert r.solver.status in STATUSES
    assert (r.solver.status == "OPTIMAL") == r.proven_optimal
    assert_valid(r, stored)


async def test_work_no_single_agent_can_do_is_explained(plans, sched):
    agents = [
        agent_pb2.Agent(id="ann", capabilities=["frontend"]),
        agent_pb2.Agent(id="bob", capabilities=["backend"]),
    ]
    tasks = [
        task_pb2.Task(id="ui", title="Build the UI", estimated_hours=3),
        task_pb2.Task(
            id="full",
            title="Full-stack feature",
            estimated_hours=5,
            required_capabilities=["frontend", "backend"],
        ),
        task_pb2.Task(id="ship", title="Ship it", estimated_hours=1, dependencies=["full"]),
    ]
    plan_id, stored = await make_plan(plans, agents, tasks)
    r = await sched.OptimizePlan(pb.OptimizePlanRequest(plan_id=plan_id))
    full, ship = stored["Full-stack feature"], stored["Ship it"]
    got = {u.task_id: u for u in r.unschedulable}
    assert set(got) == {full.id, ship.id} and r.partial and not r.proven_optimal
    assert not got[full.id].missing_capabilities  # each is held, by different agents
    assert (
        got[full.id].reason == "no single agent of the plan holds all of its required capabilities"
    )
    assert list(got[ship.id].blocked_by_task_ids) == [full.id]
    assert got[ship.id].reason == (
        f"depends on tasks that cannot be scheduled: 'Full-stack feature' ({full.id})"
    )
    assert r.unscheduled_hours == pytest.approx(6)
    assert r.duration_after_hours == pytest.approx(3)
