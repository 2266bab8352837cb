"""Rejection of vague and malformed requests."""

from __future__ import annotations

import pytest

from plansmith_server.errors import InvalidArgumentError
from plansmith_server.planning import (
    REASON_INVALID_PLAN_REQUEST,
    REASON_TASK_DESCRIPTION_TOO_VAGUE,
    AgentSpec,
    PlanningInputError,
    PlanRequest,
    generate_plan,
)


@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("Release", "Deploy the thing"),
        ("Stuff", "Fix stuff"),
        ("Work", "Make it work asap"),
        ("Task", "Do the project"),
        ("x", "Deploy the thing"),
    ],
)
def test_vague_requests_are_rejected(name: str, description: str) -> None:
    with pytest.raises(PlanningInputError) as info:
        generate_plan(PlanRequest(name=name, description=description))
    error = info.value
    assert error.reason == REASON_TASK_DESCRIPTION_TOO_VAGUE
    assert error.hint
    assert error.field_violations[0][0] == "description"
    assert isinstance(error, InvalidArgumentError) and error.code == "INVALID_ARGUMENT"


def test_vague_description_with_requirements_is_fine() -> None:
    plan = generate_plan(
        PlanRequest(name="Release", description="Deploy the thing", requirements=["Website launch"])
    )
    assert plan.tasks


def test_all_violations_reported_at_once() -> None:
    request = PlanRequest(
        name=" ",
        description="",
        requirements=["ok", "  "],
        constraints=[""],
        available_agents=[
            AgentSpec("a1", capabilities=["React", " "]),
            AgentSpec("a1"),
            AgentSpec(""),
        ],
        context={"team_size": "many", "backup_required": "perhaps"},
    )
    with pytest.raises(PlanningInputError) as info:
        generate_plan(request)
    error = info.value
    assert error.reason == REASON_INVALID_PLAN_REQUEST
    fields = [f for f, _ in error.field_violations]
    assert fields == [
        "name",
        "description",
        "requirements[1]",
        "constraints[0]",
        "available_agents[0].capabilities[1]",
        "available_agents[1].id",
        "available_agents[2].id",
        "context.backup_required",
        "context.team_size",
    ]
    assert "duplicate agent id 'a1'" in dict(error.field_violations)["available_agents[1].id"]
    assert len(error.violations) == len(fields)
