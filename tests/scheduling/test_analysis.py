"""Utilization, current-plan critical chain, risk items, suggestions."""

from __future__ import annotations

import pytest

from plansmith_server.scheduling import (
    PlanTask,
    Priority,
    RiskKind,
    Severity,
    TaskStatus,
    analyze_utilization,
    assess_risk,
    schedule_current_plan,
    suggest_next_tasks,
    validate_schedule,
)
from plansmith_server.scheduling.current_plan import current_plan_problem

T = TaskStatus


def overallocated_plan() -> list[PlanTask]:
    # ann has two 4 h tasks that can both start now, plus a dependent 2 h task;
    # bob has one 3 h task. cat can do "gap" but is not available.
    return [
        PlanTask("a1", estimate_hours=4, assigned_agent="ann"),
        PlanTask("a2", estimate_hours=4, assigned_agent="ann"),
        PlanTask("a3", dependencies=("a1",), estimate_hours=2, assigned_agent="ann"),
        PlanTask("b1", estimate_hours=3, assigned_agent="bob"),
        PlanTask("free", estimate_hours=1),
        PlanTask("gap", estimate_hours=1, eligible_agents=frozenset({"cat"})),
        PlanTask("old", T.DONE, estimate_hours=5, assigned_agent="bob"),
    ]


def test_utilization_with_known_overallocation() -> None:
    rep = analyze_utilization(overallocated_plan(), ["ann", "bob"])
    ann, bob = rep.agents
    assert ann.agent == "ann" and ann.remaining_hours == 10 and ann.assigned_hours == 10
    assert bob.remaining_hours == 3 and bob.assigned_hours == 8  # done task counts
    assert rep.span_hours == 10  # ann works 10 h back to back
    assert ann.utilization == pytest.approx(1.0) and ann.idle_hours == 0
    assert bob.utilization == pytest.approx(0.3) and bob.idle_hours == 7
    assert ann.overallocated and not bob.overallocated
    (over,) = rep.overallocations
    # a1, a2 both [0,4); a3 [4,6) touches but does not overlap.
    assert over.agent == "ann" and set(over.task_ids) == {"a1", "a2"}
    assert over.excess_hours == 4 and over.window_start == 0 and over.window_end == 4
    assert rep.unassigned_task_ids == ("free", "gap")
    assert [g.task_id for g in rep.capability_gaps] == ["gap"]
    assert rep.cpm_duration_hours == 6


def test_current_plan_critical_chain_is_resource_aware() -> None:
    tasks = overallocated_plan()
    r = schedule_current_plan(tasks, ["ann", "bob"])
    assert validate_schedule(current_plan_problem(tasks, ["ann", "bob"]), r) == []
    assert r.makespan == 10
    # Order among ann's tasks: a1, a2 (input order at equal priority), then a3; the chain
    # runs through ann's tasks only because she does one at a time.
    assert r.critical_chain == ("a1", "a2", "a3")


def test_current_plan_respects_priority() -> None:
    tasks = [
        PlanTask("low", estimate_hours=2, assigned_agent="ann", priority=Priority.LOW),
        PlanTask("high", estimate_hours=2, assigned_agent="ann", priority=Priority.HIGH),
    ]
    got = schedule_current_plan(tasks).by_id()
    assert got["high"].start == 0 and got["low"].start == 2


def test_risk_items_and_score() -> None:
    tasks = [
        PlanTask("d", T.DONE, estimate_hours=2),
        PlanTask(
            "run",
            T.IN_PROGRESS,
            ("d",),
            estimate_hours=4,
            actual_hours=7,
            progress=0.5,
            assigned_agent="ann",
        ),
        PlanTask("fail", T.FAILED, ("run",), estimate_hours=3, assigned_agent="ann"),
        PlanTask("blk", T.BLOCKED, estimate_hours=1, assigned_agent="bob"),
        PlanTask("noest", T.TODO, ("fail",)),
    ]
    rep = assess_risk(tasks, deadline_hours=5, samples=2000, seed=1)
    kinds = {i.kind: i for i in rep.items}
    assert kinds[RiskKind.OVERRUN].task_ids == ("run",)
    assert kinds[RiskKind.OVERRUN].severity is Severity.HIGH  # 175 % of the estimate
    assert kinds[RiskKind.FAILED_TASK].severity is Severity.CRITICAL  # on the critical path
    assert kinds[RiskKind.BLOCKED_TASK].severity is Severity.MEDIUM
    assert kinds[RiskKind.MISSING_ESTIMATE].task_ids == ("noest",)
    assert kinds[RiskKind.UNASSIGNED_WORK].task_ids == ("noest",)
    # ann holds 5 of the 13 critical hours (noest's 8 h are unassigned): under half.
    assert RiskKind.AGENT_CONCENTRATION not in kinds
    # 2 + 3 + 8 = 13 h of dependent work > 5 h deadline.
    assert kinds[RiskKind.INFEASIBLE_DEADLINE].severity is Severity.CRITICAL
    assert rep.cpm_duration_hours == 13
    assert rep.forecast.probability_meet_deadline == 0.0
    assert rep.score == 100 and rep.level is Severity.CRITICAL
    assert rep.items[0].severity is Severity.CRITICAL


def test_long_chain_and_low_risk_plan() -> None:
    chain = [PlanTask("t0", estimate_hours=1, assigned_agent="a")]
    chain += [
        PlanTask(f"t{i}", dependencies=(f"t{i - 1}",), estimate_hours=1, assigned_agent="a")
        for i in range(1, 10)
    ]
    rep = assess_risk(chain, samples=1000, seed=0)
    long = [i for i in rep.items if i.kind is RiskKind.LONG_DEPENDENCY_CHAIN]
    assert long and long[0].severity is Severity.HIGH  # 10 tasks in a row
    conc = [i for i in rep.items if i.kind is RiskKind.AGENT_CONCENTRATION]
    assert conc and conc[0].agent == "a" and conc[0].severity is Severity.HIGH
    calm = assess_risk(
        [PlanTask("x", estimate_hours=2, assigned_agent="a")],
        deadline_hours=10,
        samples=1000,
        seed=0,
    )
    assert calm.items == () and calm.score == 0 and calm.level is Severity.LOW
    assert calm.forecast.probability_meet_deadline == 1.0


def test_suggestions_obvious_plan() -> None:
    tasks = [
        PlanTask("done", T.DONE, estimate_hours=1),
        # Critical: heads a long chain; unassigned, ann can do it.
        PlanTask("crit", T.TODO, ("done",), estimate_hours=2, priority=Priority.MEDIUM),
        PlanTask("c2", T.TODO, ("crit",), estimate_hours=8),
        PlanTask("c3", T.TODO, ("c2",), estimate_hours=6),
        # Ann's own task, low priority, off the critical path: still first (own first).
        PlanTask("mine", T.TODO, estimate_hours=1, assigned_agent="ann", priority=Priority.LOW),
        # Unassigned, high priority, not critical.
        PlanTask("hi", T.TODO, estimate_hours=3, priority=Priority.HIGH),
        # Not for ann: someone else's, needs a capability she lacks, not ready, running.
        PlanTask("bobs", T.TODO, estimate_hours=1, assigned_agent="bob"),
        PlanTask("cap", T.TODO, estimate_hours=1, eligible_agents=frozenset({"bob"})),
        PlanTask("wait", T.TODO, ("hi",), estimate_hours=1),
        PlanTask("run", T.IN_PROGRESS, estimate_hours=1, assigned_agent="ann"),
    ]
    s = suggest_next_tasks(tasks, "ann", count=5)
    assert [x.task_id for x in s] == ["mine", "crit", "hi"]
    crit = s[1]
    assert crit.critical and crit.unblocks_count == 2 and crit.unblocks_hours == 14
    assert "On the critical path" in crit.reason and "unblocks 2 tasks (14.0 h)" in crit.reason
    assert s[0].assigned_to_agent and "Assigned to you" in s[0].reason
    assert s[0].score > s[1].score > s[2].score
    assert suggest_next_tasks(tasks, "ann", count=1)[0].task_id == "mine"
    assert next(x.task_id for x in suggest_next_tasks(tasks, "bob", count=5)) == "bobs"


def test_a_critical_path_passed_in_gives_the_same_analyses() -> None:
    """AnalyzePlan computes the critical path and the current-plan schedule once and
    hands them to each analysis: the reports must equal those computed alone."""
    from plansmith_server.scheduling import cpm_for_tasks

    tasks, agents = overallocated_plan(), ["ann", "bob", "cat"]
    cpm = cpm_for_tasks(tasks)
    current = schedule_current_plan(tasks, agents)
    assert analyze_utilization(tasks, agents, cpm=cpm, schedule=current) == (
        analyze_utilization(tasks, agents)
    )
    risk = assess_risk(tasks, deadline_hours=6, samples=500, seed=3, cpm=cpm)
    assert risk == assess_risk(tasks, deadline_hours=6, samples=500, seed=3)
    for agent in agents:
        assert suggest_next_tasks(tasks, agent, 5, cpm=cpm) == suggest_next_tasks(tasks, agent, 5)
