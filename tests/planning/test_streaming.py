"""Streamed generation: event order, equality with one-shot, early stop, input errors."""

from __future__ import annotations

from datetime import date

import pytest

from plansmith_server.planning import (
    PHASES,
    CompletedEvent,
    PhaseEvent,
    PlanningInputError,
    PlanRequest,
    TaskAssignedEvent,
    TaskProposedEvent,
    generate_plan,
    generate_plan_events,
)

from .scenarios import SCENARIOS, WEBSITE

NOW = date(2026, 11, 2)


@pytest.mark.parametrize("name", ["website", "pg_migration", "generic_only", "no_agents"])
def test_stream_ends_with_one_shot_result(name: str) -> None:
    events = list(generate_plan_events(SCENARIOS[name], now=NOW))
    assert (
        isinstance(events[0], PhaseEvent)
        and events[0].phase == "analyzing"
        and events[0].percent == 0
    )
    assert isinstance(events[-1], CompletedEvent)
    assert sum(isinstance(e, CompletedEvent) for e in events) == 1
    assert events[-1].plan == generate_plan(SCENARIOS[name], now=NOW)
    phases = [e.phase for e in events if isinstance(e, PhaseEvent)]
    assert tuple(phases) == PHASES
    percents = [e.percent for e in events]
    assert percents == sorted(percents) and percents[-1] == 100
    plan = events[-1].plan
    proposed = [e.task.id for e in events if isinstance(e, TaskProposedEvent)]
    assigned = {e.task_id: e.agent_id for e in events if isinstance(e, TaskAssignedEvent)}
    assert proposed == [t.id for t in plan.tasks]
    assert assigned == {t.id: t.assigned_to for t in plan.tasks}
    assert {e.kind for e in events} >= {"phase", "task_proposed", "task_assigned", "completed"}


def test_early_stop_leaves_nothing_behind() -> None:
    stream = generate_plan_events(WEBSITE, now=NOW)
    first = next(stream)
    assert first.kind == "phase"
    next(stream)
    stream.close()
    assert generate_plan(WEBSITE, now=NOW) == list(generate_plan_events(WEBSITE, now=NOW))[-1].plan


def test_invalid_request_raises_before_any_event() -> None:
    stream = generate_plan_events(PlanRequest(name="", description="Deploy the thing"))
    with pytest.raises(PlanningInputError):
        next(stream)
