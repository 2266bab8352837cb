"""Structural checks of a generated plan (used by tests and usable as a server guard)."""

from __future__ import annotations

from collections.abc import Sequence

from plansmith_server.graph import find_cycle, write_cycle

from .capabilities import agent_can_do
from .library import MethodLibrary, load_library
from .plan import GeneratedPlan
from .request import AgentSpec

__all__ = ["validate_plan"]


def validate_plan(
    plan: GeneratedPlan,
    agents: Sequence[AgentSpec] = (),
    requirements: Sequence[str] | None = None,
    library: MethodLibrary | None = None,
) -> list[str]:
    """List the problems of a plan (empty list = valid).

    Checks: unique ids and titles; dependencies reference existing tasks and form no
    cycle; estimates positive with ``optimistic <= estimate <= pessimistic``; every
    assigned agent exists and holds the task's required capabilities (normalized, with
    the capability hierarchy); every requirement is served by at least one task, and
    requirement indexes are in range; capability-gap tasks are unassigned; the
    library's ``[[ordering]]`` rules hold (every task tagged with an ordering's
    ``after`` tag waits, directly or not, for every task tagged with its ``before``
    tag).

    Args:
        plan: The plan to check.
        agents: The agents the plan could use.
        requirements: The requirements to check coverage of (default: the plan's
            objectives).
        library: Whose orderings to check (default: the packaged library).
    """
    problems: list[str] = []
    reqs = list(plan.objectives if requirements is None else requirements)
    ids = [t.id for t in plan.tasks]
    if len(set(ids)) != len(ids):
        problems.append("task ids are not unique")
    titles = [t.title for t in plan.tasks]
    for title in sorted({t for t in titles if titles.count(t) > 1}):
        problems.append(f"duplicate task title '{title}'")
    known = set(ids)
    agents_by_id = {a.id: a for a in agents}
    for task in plan.tasks:
        for dep in task.dependencies:
            if dep not in known:
                problems.append(f"{task.id} depends on unknown task '{dep}'")
            if dep == task.id:
                problems.append(f"{task.id} depends on itself")
        if not task.estimated_hours > 0:
            problems.append(f"{task.id} has a non-positive estimate ({task.estimated_hours})")
        if not (task.optimistic_hours <= task.estimated_hours <= task.pessimistic_hours):
            problems.append(
                f"{task.id} estimate range is not ordered: {task.optimistic_hours} <= "
                f"{task.estimated_hours} <= {task.pessimistic_hours} fails"
            )
        if task.optimistic_hours <= 0:
            problems.append(f"{task.id} has a non-positive optimistic estimate")
        if task.assigned_to:
            agent = agents_by_id.get(task.assigned_to)
            if agent is None:
                problems.append(f"{task.id} is assigned to unknown agent '{task.assigned_to}'")
            elif not agent_can_do(agent.capabilities, task.required_capabilities):
                problems.append(
                    f"{task.id} is assigned to '{agent.id}', who lacks "
                    f"{', '.join(task.required_capabilities)}"
                )
        for index in task.requirement_indexes:
            if not 0 <= index < len(reqs):
                problems.append(f"{task.id} refers to requirement index {index}, out of range")
    deps = {t.id: [d for d in t.dependencies if d != t.id] for t in plan.tasks}
    cycle = find_cycle(deps, lambda task_id: [d for d in deps[task_id] if d in deps])
    if cycle:
        problems.append(f"dependency cycle: {write_cycle(cycle)}")
    served = {i for t in plan.tasks for i in t.requirement_indexes}
    for i, requirement in enumerate(reqs):
        if i not in served:
            problems.append(f"requirement {i} ('{requirement}') is not covered by any task")
    gap_tasks = {tid for gap in plan.capability_gaps for tid in gap.task_ids}
    for task in plan.tasks:
        if task.id in gap_tasks and task.assigned_to:
            problems.append(
                f"{task.id} is listed as a capability gap but assigned to '{task.assigned_to}'"
            )
    if not cycle:
        lib = library if library is not None else load_library()
        problems.extend(_ordering_problems(plan, lib))
    return problems


def _ordering_problems(plan: GeneratedPlan, library: MethodLibrary) -> list[str]:
    by_id = {t.id: t for t in plan.tasks}
    ancestors: dict[str, set[str]] = {}

    def ancestors_of(task_id: str) -> set[str]:
        if task_id not in ancestors:
            seen: set[str] = set()
            stack = [d for d in by_id[task_id].dependencies if d in by_id]
            while stack:
                d = stack.pop()
                if d not in seen:
                    seen.add(d)
                    stack.extend(x for x in by_id[d].dependencies if x in by_id)
            ancestors[task_id] = seen
        return ancestors[task_id]

    problems = []
    for ordering in library.orderings:
        first = [t for t in plan.tasks if set(t.tags) & set(ordering.before)]
        then = [t for t in plan.tasks if set(t.tags) & set(ordering.after)]
        for b in then:
            for a in first:
                if a.id != b.id and a.id not in ancestors_of(b.id):
                    problems.append(
                        f"{b.id} ('{b.title}') does not wait for {a.id} ('{a.title}'): "
                        f"ordering {ordering.name} ({ordering.description})"
                    )
    return problems
