"""Both clients list tasks across the plans of a project (`project_id`)."""

from __future__ import annotations

import pytest

from plansmith import ValidationError


async def test_an_agents_tasks_across_the_plans_of_a_project(client):
    agents = ["ann", "bob"]
    site = await client.create_plan("Site", project_id="web", agents=agents)
    shop = await client.create_plan("Shop", project_id="web", agents=agents)
    infra = await client.create_plan("Infra", project_id="ops", agents=agents)
    ids = []
    for plan, title, who, priority in [
        (site, "s1", "ann", "HIGH"),
        (shop, "h1", "ann", "LOW"),
        (infra, "o1", "ann", "HIGH"),
        (site, "s2", "bob", "HIGH"),
        (shop, "h2", "ann", "HIGH"),
    ]:
        t = await client.create_task(title, plan_id=plan.id, assigned_to=who, priority=priority)
        ids.append(t.id)

    anns = await client.get_tasks(project_id="web", assigned_to="ann", per_page=2)
    assert [t.title for t in anns.tasks] == ["s1", "h1"] and anns.total_size == 3
    second = await client.get_tasks(project_id="web", assigned_to="ann", per_page=2, page=2)
    assert [t.title for t in second.tasks] == ["h2"]
    high = await client.collect("iter_tasks", project_id="web", priority="HIGH", per_page=1)
    assert [t.title for t in high] == ["s1", "s2", "h2"]
    with pytest.raises(ValidationError):
        await client.get_tasks()
    with pytest.raises(ValidationError):
        await client.get_tasks(site.id, project_id="web")
