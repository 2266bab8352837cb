"""Rules of the plan analyses checked on seeded random plans.

Each test states a rule independently of the code under test and checks it on plans
built to hit its corner cases (several in-progress tasks per agent, DONE tasks waiting on
open work, agents missing from the agent list, tasks without estimates, ...).
"""

from __future__ import annotations

import random
import re

import pytest

from plansmith_server.scheduling import (
    PlanTask,
    RiskKind,
    Severity,
    TaskStatus,
    analyze_utilization,
    assess_risk,
    cpm_for_tasks,
    forecast,
    problem_from_tasks,
)
from plansmith_server.scheduling.current_plan import current_plan_problem

T = TaskStatus
SEEDS = range(40)
AGENTS = ("ann", "bob", "cat")


def random_plan(
    seed: int, *, extra_agents: tuple[str | None, ...] = ("dan", None)
) -> list[PlanTask]:
    """A plan of 6-24 tasks; dependencies point to earlier tasks (a DAG)."""
    rng = random.Random(seed)
    n = rng.randint(6, 24)
    statuses = [T.TODO, T.IN_PROGRESS, T.IN_PROGRESS, T.DONE, T.DONE, T.BLOCKED, T.FAILED]
    owners = (*AGENTS, *extra_agents)
    tasks = []
    for i in range(n):
        deps = (
            tuple(sorted({f"t{rng.randrange(i)}" for _ in range(rng.randint(0, 3))})) if i else ()
        )
        est = None if rng.random() < 0.15 else float(rng.randint(1, 12))
        tasks.append(
            PlanTask(
                f"t{i}",
                rng.choice(statuses),
                deps,
                estimate_hours=est,
                remaining_hours=float(rng.randint(0, 6)) if rng.random() < 0.15 else None,
                progress=rng.choice((0.0, 0.25, 0.5, 0.9)),
                assigned_agent=rng.choice(owners),
                pinned=rng.random() < 0.2,
            )
        )
    return tasks


def settled(tasks: list[PlanTask]) -> set[str]:
    """DONE tasks whose dependencies are all settled (recursively)."""
    by_id = {t.id: t for t in tasks}
    memo: dict[str, bool] = {}

    def ok(i: str) -> bool:
        if i not in memo:
            t = by_id[i]
            memo[i] = t.status is T.DONE and all(ok(d) for d in t.dependencies)
        return memo[i]

    return {i for i in by_id if ok(i)}


def expected_started(tasks: list[PlanTask], can_run: set[str] | None) -> set[str]:
    """The "in-progress work starts now" rule: per agent (assigned, and in ``can_run``
    unless that is None), its first IN_PROGRESS task in input order among those whose
    dependencies are all settled; a task with unsettled dependencies does not use up the
    agent's turn."""
    done = settled(tasks)
    busy: set[str] = set()
    out = set()
    for t in tasks:
        g = t.assigned_agent
        if t.status is not T.IN_PROGRESS or g is None or (can_run is not None and g not in can_run):
            continue
        if g not in busy and all(d in done for d in t.dependencies):
            out.add(t.id)
            busy.add(g)
    return out


def fixed_ids(problem) -> set[str]:  # type: ignore[no-untyped-def]
    acts = problem.activities
    assert all(a.fixed_start in (None, 0.0) for a in acts)
    return {a.id for a in acts if a.fixed_start is not None}


def test_in_progress_tasks_fixed_at_zero_follow_one_rule() -> None:
    # The corner cases must actually occur, or the test proves little.
    second_in_line = agent_not_listed = 0
    for seed in SEEDS:
        tasks = random_plan(seed, extra_agents=("dan", None, ""))
        want = expected_started(tasks, set(AGENTS))
        assert fixed_ids(problem_from_tasks(tasks, AGENTS)) == want, seed
        assert fixed_ids(current_plan_problem(tasks, AGENTS)) == expected_started(tasks, None)
        assert fixed_ids(current_plan_problem(tasks)) == expected_started(tasks, None)
        running = [t for t in tasks if t.status is T.IN_PROGRESS and t.assigned_agent]
        agent_not_listed += any(t.id in expected_started(tasks, None) for t in running) and any(
            t.assigned_agent not in AGENTS for t in running
        )
        firsts = {}
        for t in running:
            firsts.setdefault(t.assigned_agent, t.id)
        second_in_line += any(t.id in want and firsts[t.assigned_agent] != t.id for t in running)
    assert second_in_line >= 3 and agent_not_listed >= 3


def test_risk_uses_the_plan_edges_for_forecast_and_chain() -> None:
    for seed in SEEDS[:12]:
        tasks = random_plan(seed)
        rep = assess_risk(tasks, deadline_hours=20, samples=200, seed=seed)
        assert rep.forecast == forecast(tasks, deadline_hours=20, samples=200, seed=seed)
        # Longest chain counted in open tasks (DONE tasks are links worth 0).
        length: dict[str, int] = {}
        for t in tasks:  # dependencies come first
            own = 1 if t.is_open else 0
            length[t.id] = own + max((length[d] for d in t.dependencies), default=0)
        chain = max(length.values(), default=0)
        items = [i for i in rep.items if i.kind is RiskKind.LONG_DEPENDENCY_CHAIN]
        if chain >= 6:
            (item,) = items
            assert re.match(rf"A chain of {chain} dependent open tasks", item.message)
            assert item.severity is (Severity.HIGH if chain >= 10 else Severity.MEDIUM)
        else:
            assert items == []


def chain_plan() -> list[PlanTask]:
    """12 open tasks in a row, with a DONE link and a branch."""
    tasks = [PlanTask("c0", estimate_hours=1)]
    for i in range(1, 14):
        status = T.DONE if i == 5 else T.TODO
        tasks.append(PlanTask(f"c{i}", status, (f"c{i - 1}",), estimate_hours=1))
    tasks.append(PlanTask("side", dependencies=("c2",), estimate_hours=1))
    return tasks


def test_long_chain_counts_open_tasks_only() -> None:
    rep = assess_risk(chain_plan(), samples=100, seed=0)
    (item,) = [i for i in rep.items if i.kind is RiskKind.LONG_DEPENDENCY_CHAIN]
    assert item.message.startswith("A chain of 13 dependent open tasks")
    assert item.severity is Severity.HIGH


@pytest.mark.parametrize("default_estimate", [8.0, 5.0])
def test_overallocations_are_windows_of_remaining_work(default_estimate: float) -> None:
    seen = 0
    for seed in SEEDS:
        tasks = random_plan(seed)
        rep = analyze_utilization(tasks, AGENTS, default_estimate=default_estimate)
        cpm = cpm_for_tasks(tasks, default_estimate=default_estimate)
        es = dict(zip(cpm.ids, cpm.earliest_start.tolist(), strict=True))
        rem = {t.id: t.remaining(default_estimate) for t in tasks}
        agent_of = {t.id: t.assigned_agent for t in tasks}
        for o in rep.overallocations:
            seen += 1
            wins = sorted((es[i], es[i] + rem[i]) for i in o.task_ids)
            assert all(agent_of[i] == o.agent for i in o.task_ids)
            assert o.window_start == min(s for s, _ in wins)
            assert o.window_end == max(e for _, e in wins)
            union, cur_s, cur_e = 0.0, *wins[0]
            for s, e in wins[1:]:
                if s > cur_e:
                    union += cur_e - cur_s
                    cur_s, cur_e = s, e
                else:
                    cur_e = max(cur_e, e)
            union += cur_e - cur_s
            assert o.excess_hours == pytest.approx(sum(rem[i] for i in o.task_ids) - union)
        for a in rep.agents:
            assert a.remaining_hours == pytest.approx(sum(rem[i] for i in a.task_ids))
            assert a.overallocated == any(o.agent == a.agent for o in rep.overallocations)
    assert seen >= 10
