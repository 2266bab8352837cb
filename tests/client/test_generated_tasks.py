"""The client guide's complete example: a plan is created, a plan is generated for it, and
its tasks are created one by one with their dependencies. GeneratePlan with `plan_id`
proposes ids free in that plan, in dependency order, and CreateTask takes them as the
caller's `task_id` (AIP-133)."""

from __future__ import annotations

import pytest

from plansmith import ConflictError, ResourceNotFoundError, ValidationError

AGENTS = [
    {"id": "agent-123", "name": "UI Designer", "capabilities": ["UI/UX", "HTML", "CSS"]},
    {
        "id": "agent-456",
        "name": "Frontend Developer",
        "capabilities": ["React", "JavaScript", "TypeScript"],
    },
    {"id": "agent-789", "name": "Backend Developer", "capabilities": ["Node.js", "Express"]},
]
REQUIREMENTS = ["Responsive design", "Contact form", "About page", "Services page", "Blog"]


async def _generate_and_create(client, plan) -> list:
    generated = await client.generate_plan(
        project_id="123",
        name=plan.name,
        description=plan.description,
        requirements=REQUIREMENTS,
        available_agents=AGENTS,
        plan_id=plan.id,
    )
    assert len(generated.tasks) > 5
    created = []
    for t in generated.tasks:  # the guide's loop, with the proposed id as task_id
        created.append(
            await client.create_task(
                title=t.task.title,
                description=t.task.description,
                plan_id=plan.id,
                priority=t.task.priority,
                estimated_hours=t.task.estimated_hours,
                dependencies=t.task.dependencies,
                assigned_to=t.task.assigned_to,
                task_id=t.task.id,
            )
        )
    assert [c.id for c in created] == [t.task.id for t in generated.tasks]
    assert [list(c.dependencies) for c in created] == [
        list(t.task.dependencies) for t in generated.tasks
    ]
    return created


async def test_the_guides_loop_creates_every_generated_task(client):
    plan = await client.create_plan(
        name="website-development", description="Develop a company website", project_id="123"
    )
    first = await _generate_and_create(client, plan)
    seen: set[str] = set()
    for task in first:  # dependency order: every dependency was created before
        assert set(task.dependencies) <= seen, task
        seen.add(task.id)
    stem = "tsk_" + plan.id.removeprefix("pln_") + "-t"
    assert [t.id for t in first] == [f"{stem}{n}" for n in range(1, len(first) + 1)]
    # Generating again for the same plan skips the numbers now taken.
    second = await _generate_and_create(client, plan)
    assert not {t.id for t in first} & {t.id for t in second}
    assert second[0].id == f"{stem}{len(first) + 1}"
    page = await client.get_tasks(plan.id, per_page=1)
    assert page.total_size == len(first) + len(second)


async def test_a_chosen_task_id_is_validated_and_unique(client, faults):
    plan = await client.create_plan("P")
    other = await client.create_plan("Q")
    design = await client.create_task("Design", plan_id=plan.id, task_id="design")
    assert design.id == "design"
    build = await client.create_task(
        "Build", plan_id=plan.id, task_id="build-1", dependencies=["design"]
    )
    assert list(build.dependencies) == ["design"]
    assert (await client.get_task("design")).title == "Design"
    for bad in ("Design", "1st", "with space", "x" * 64, "ümlaut"):
        with pytest.raises(ValidationError) as info:
            await client.create_task("t", plan_id=plan.id, task_id=bad)
        assert [v.field for v in info.value.validation_errors] == ["task_id"]
    for plan_id in (plan.id, other.id):  # ids are global: taken in any plan is taken
        with pytest.raises(ConflictError) as info:
            await client.create_task("again", plan_id=plan_id, task_id="design")
        assert info.value.reason == "TASK_ALREADY_EXISTS"
    assert (await client.get_tasks(plan.id)).total_size == 2
    assert (await client.get_tasks(other.id)).total_size == 0
    # A retry of a create with a chosen id (same request_id) returns the first result.
    again = await client.create_task("Test", plan_id=plan.id, task_id="test", request_id="k-1")
    assert (
        await client.create_task("Test", plan_id=plan.id, task_id="test", request_id="k-1") == again
    )


async def test_generating_for_a_plan_that_is_not_there_or_with_persist_is_refused(client):
    with pytest.raises(ResourceNotFoundError):
        await client.generate_plan("W", "Build a website", plan_id="pln_missing")
    plan = await client.create_plan("P")
    with pytest.raises(ValidationError) as info:
        await client.generate_plan("W", "Build a website", plan_id=plan.id, persist=True)
    assert [v.field for v in info.value.validation_errors] == ["plan_id"]
    assert (await client.get_plans()).total_size == 1
