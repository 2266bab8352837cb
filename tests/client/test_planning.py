"""The planning methods of both clients, against the real server, in the issue's style:
plain dicts and lowercase names where a caller would write them, `context` carrying a
`request_id` that becomes the call's `x-request-id`."""

from __future__ import annotations

import pytest

from plansmith import ResourceNotFoundError, ValidationError
from plansmith.v1 import analysis_pb2, planning_service_pb2

GENERATE = "GeneratePlan"

AGENTS = [
    {"id": "dana", "name": "Dana", "capabilities": ["UI design", "Figma"]},
    {"id": "finn", "name": "Finn", "capabilities": ["React", "TypeScript", "frontend"]},
    {"id": "bea", "name": "Bea", "capabilities": ["Python", "PostgreSQL", "backend"]},
]


async def test_generate_plan_with_dicts_and_a_request_id_in_context(client, faults):
    plan = await client.generate_plan(
        project_id="web",
        name="Company website",
        description="Build a new marketing website with a blog and a contact form.",
        requirements=["Responsive design", "Blog managed through a CMS", "Contact form"],
        constraints=["Must use React for the frontend", "Launch within 6 weeks"],
        available_agents=AGENTS,
        context={"environment": "production", "request_id": "web-plan-1"},
        persist=True,
    )
    assert plan.plan.id.startswith("pln_")
    assert plan.tasks and all(g.task.id.startswith("tsk_") for g in plan.tasks)
    react = [g.task for g in plan.tasks if "react" in g.task.required_capabilities]
    assert react and {t.assigned_to for t in react} == {"finn"}
    assert plan.context_used["environment"] == "production"
    sent = faults.metadata[GENERATE][-1]
    assert sent["x-request-id"] == "web-plan-1"
    stored = await client.get_tasks(plan_id=plan.plan.id, per_page=1000)
    assert len(stored.tasks) == len(plan.tasks)


async def test_decompose_estimate_optimize_analyze_suggest(client):
    plan = await client.create_plan(
        "API",
        agents=[
            {"id": "bea", "capabilities": ["backend"]},
            {"id": "cat", "capabilities": ["backend"]},
        ],
    )
    api = await client.create_task(
        plan_id=plan.id,
        title="Build REST API for orders",
        description="Backend API service with PostgreSQL storage",
        estimated_hours=40,
        priority="high",
        required_capabilities=["backend"],
    )
    sub = await client.decompose_task(
        task_id=api.id,
        decomposition_level="detailed",
        persist=True,
        context={"request_id": "dec-1"},
    )
    assert 7 <= len(sub.subtasks) <= 12
    assert round(sum(t.estimated_hours for t in sub.subtasks), 2) == 40

    estimate = await client.estimate_task_duration(
        task_description="Build REST endpoint for invoices", context={"plan_id": plan.id}
    )
    assert estimate.low_hours <= estimate.estimate_hours <= estimate.high_hours
    assert estimate.estimation_method != planning_service_pb2.ESTIMATION_METHOD_UNSPECIFIED

    opt = await client.optimize_plan(
        plan_id=plan.id,
        optimization_goals=["minimize_duration", "balance_workload"],
        constraints=["maintain_dependencies", "respect_agent_capabilities"],
        time_limit=5,
        apply=True,
    )
    assert opt.duration_after_hours <= opt.duration_before_hours
    assert opt.plan_revision > 0
    assert opt.solver.kind != analysis_pb2.SOLVER_KIND_UNSPECIFIED

    analysis = await client.analyze_plan(
        plan_id=plan.id,
        analysis_types=["critical_path", "risk_assessment"],
        monte_carlo_samples=2000,
    )
    assert analysis.critical_path.duration_hours > 0
    assert analysis.HasField("risk_assessment")
    assert not analysis.HasField("resource_utilization")

    first = min(opt.schedule, key=lambda s: s.start_offset_hours)
    suggestions = await client.suggest_next_tasks(plan_id=plan.id, agent_id=first.agent_id, count=2)
    assert 1 <= len(suggestions) <= 2 and suggestions[0].reason

    with pytest.raises(ResourceNotFoundError) as e:
        await client.suggest_next_tasks(plan_id=plan.id, agent_id="nobody")
    assert e.value.reason == "AGENT_NOT_FOUND"


async def test_vague_generation_is_a_validation_error_with_the_reason(client):
    with pytest.raises(ValidationError) as e:
        await client.generate_plan(name="Release", description="Deploy the thing")
    assert e.value.reason == "TASK_DESCRIPTION_TOO_VAGUE"
    assert e.value.error_metadata["hint"]
