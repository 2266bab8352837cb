"""DecomposeTask: level sizes, exact sums, ordering, capabilities."""

from __future__ import annotations

import pytest

from plansmith_server.planning import (
    REASON_INVALID_TASK,
    REASON_TASK_DESCRIPTION_TOO_VAGUE,
    DecompositionLevel,
    PlanningInputError,
    TaskToDecompose,
    decompose_task,
)
from plansmith_server.planning.decomposition import LEVEL_RANGES, distribute_hours

TASKS = [
    TaskToDecompose(
        "Upgrade PostgreSQL 12 to 15", "Production orders database", 40.0, ("Postgres",), "HIGH"
    ),
    TaskToDecompose("Add SSO login to the admin portal", "", 13.37, ("backend",)),
    TaskToDecompose("", "Build a React page for the billing dashboard", None, ("React",)),
    TaskToDecompose("Set up CI/CD pipeline", "GitHub Actions for the api repo", 0.07),
    TaskToDecompose("Zero-downtime release of the checkout service", "", 24.5),
    TaskToDecompose("Security review of the payments API", "", 100.0, ("security",)),
]


@pytest.mark.parametrize("level", list(DecompositionLevel))
@pytest.mark.parametrize("task", TASKS, ids=lambda t: (t.title or t.description)[:20])
def test_levels_sums_and_order(task: TaskToDecompose, level: DecompositionLevel) -> None:
    result = decompose_task(task, level)
    low, high = LEVEL_RANGES[level]
    count = len(result.subtasks)
    if task.estimated_hours is not None and task.estimated_hours * 100 < low:
        assert count <= round(task.estimated_hours * 100)
    else:
        assert low <= count <= high
    assert [s.id for s in result.subtasks] == [f"s{i + 1}" for i in range(count)]
    seen: set[str] = set()
    for s in result.subtasks:
        assert set(s.dependencies) <= seen  # ordered by dependencies
        seen.add(s.id)
        assert 0 < s.optimistic_hours <= s.estimated_hours <= s.pessimistic_hours
        assert s.acceptance_criteria
    if task.estimated_hours is not None:
        assert round(sum(s.estimated_hours for s in result.subtasks), 2) == round(
            task.estimated_hours, 2
        )
        assert result.total_hours == round(task.estimated_hours, 2)
    depended = {d for s in result.subtasks for d in s.dependencies}
    assert result.sink_ids == tuple(s.id for s in result.subtasks if s.id not in depended)
    assert all(s.is_sink == (s.id in result.sink_ids) for s in result.subtasks)
    assert result.source_ids and result.sink_ids
    assert len({s.title for s in result.subtasks}) == count


def test_library_method_capabilities_and_technology_inheritance() -> None:
    result = decompose_task(TASKS[0], DecompositionLevel.DETAILED)
    assert result.method.startswith("library:database_migration/")
    assert all("database" in s.required_capabilities for s in result.subtasks)
    assert all("postgresql" in s.required_capabilities for s in result.subtasks)


def test_context_steers_method() -> None:
    result = decompose_task(TASKS[0], "DETAILED", context={"downtime_allowed": False})
    assert result.method == "library:database_migration/replication_cutover"


def test_generic_inherits_parent_capabilities() -> None:
    task = TaskToDecompose("Add a CSV export to the admin portal", "", 13.37, ("backend",))
    result = decompose_task(task, DecompositionLevel.STANDARD)
    assert result.method == "generic"
    assert all(s.required_capabilities == ("backend",) for s in result.subtasks)


def test_deterministic() -> None:
    assert decompose_task(TASKS[4], "STANDARD") == decompose_task(TASKS[4], "STANDARD")


@pytest.mark.parametrize(
    ("total", "weights"),
    [
        (10, [1, 1, 1]),
        (13.37, [5, 1, 1, 7]),
        (0.05, [1, 2]),
        (100, [3.3, 3.3, 3.4]),
        (7.77, [0.1] * 9),
    ],
)
def test_distribute_hours_exact(total: float, weights: list[float]) -> None:
    parts = distribute_hours(total, weights)
    assert len(parts) == len(weights)
    assert round(sum(parts), 2) == round(total, 2)
    assert all(p >= 0.01 for p in parts)


def test_invalid_and_vague_tasks() -> None:
    with pytest.raises(PlanningInputError) as info:
        decompose_task(TaskToDecompose("", "", -3, priority="SOON"))
    assert info.value.reason == REASON_INVALID_TASK
    assert [f for f, _ in info.value.field_violations] == ["title", "estimated_hours", "priority"]
    with pytest.raises(PlanningInputError) as info:
        decompose_task(TaskToDecompose("Fix it"))
    assert info.value.reason == REASON_TASK_DESCRIPTION_TOO_VAGUE
