"""DecomposeTask: level sizes, exact sums, ordering, capabilities."""

from __future__ import annotations

from datetime import date

import pytest

from plansmith_server.planning import (
    REASON_INVALID_TASK,
    REASON_TASK_DESCRIPTION_TOO_VAGUE,
    DecompositionLevel,
    PlanningInputError,
    TaskToDecompose,
    decompose_task,
    generate_plan,
    load_library,
)
from plansmith_server.planning.decomposition import LEVEL_RANGES, distribute_hours

from .scenarios import WEBSITE

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


def _domain_titles(compound: str) -> set[str]:
    lib = load_library()
    names: set[str] = set()
    for method in lib.compounds[compound].methods:
        names |= set(lib.expansion(compound, method.name))
    return {lib.primitives[n].title for n in names}


@pytest.mark.parametrize("level", list(DecompositionLevel))
def test_a_leaf_splits_its_own_work_not_its_domain(level: DecompositionLevel) -> None:
    result = decompose_task(TaskToDecompose("Implement responsive pages", "", 20.0), level)
    assert result.method == "leaf:web_pages"
    others = _domain_titles("web_application") - {load_library().primitives["web_pages"].title}
    for subtask in result.subtasks:
        assert subtask.title not in others
        assert "responsive pages" in subtask.title.lower()
    assert result.total_hours == 20.0


def test_a_leaf_with_library_steps_uses_them_with_the_briefs_specifics() -> None:
    result = decompose_task(
        TaskToDecompose("Execute the MySQL 8.0 upgrade in the maintenance window", "", 12.0)
    )
    assert result.method == "library:dbm_upgrade/steps"
    assert [s.title for s in result.subtasks] == [
        "Announce the window and stop writes",
        "Run the MySQL 8.0 upgrade and update statistics",
        "Repoint applications and reopen traffic",
        "Check error rates and key queries before closing the window",
    ]
    assert [s.dependencies for s in result.subtasks] == [(), ("s1",), ("s2",), ("s3",)]
    assert result.subtasks[1].estimated_hours == 6.0  # weight 3 of 6


def test_a_rendered_plan_title_is_recognized_as_its_leaf() -> None:
    result = decompose_task(TaskToDecompose("Port the 12 nightly cron jobs to Airflow DAGs"))
    assert result.method == "library:jobs_port/steps"


def test_no_task_of_a_generated_plan_re_expands_its_domain() -> None:
    plan = generate_plan(WEBSITE, now=date(2026, 11, 2))
    for task in plan.tasks:
        result = decompose_task(TaskToDecompose(task.title, task.description, task.estimated_hours))
        assert not result.method.startswith("library:web_application"), task.title
