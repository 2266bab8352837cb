"""GeneratePlan's answer for a persisted plan lists the stored tasks, whatever a rerun of
the planner makes of the brief (a retry of a call an older release recorded reruns it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from plansmith_server.api.planning_convert import generated_to_proto
from plansmith_server.domain.generation import Brief, Generated, StoredPlan, planned_task
from plansmith_server.domain.models import Plan
from plansmith_server.planning import PlanRequest, generate_plan

REQUEST = PlanRequest(
    name="Orders DB upgrade",
    description="Upgrade the orders PostgreSQL database from 12 to 15 in production.",
    requirements=("No data loss",),
)


def test_stored_tasks_are_answered_in_plan_order_even_when_the_rerun_differs() -> None:
    plan = generate_plan(REQUEST, now=date(2026, 11, 2))
    assert len(plan.tasks) >= 11
    # The first call stored only 11 tasks (an older planner); the rerun has more.
    stored_tasks = {
        t.id: replace(planned_task(t, "pln_1"), id=f"tsk_{t.id}") for t in plan.tasks[:11]
    }
    stored = StoredPlan(Plan(id="pln_1", project_id="p", name=REQUEST.name), stored_tasks)
    msg = generated_to_proto(Generated(plan, stored), Brief(REQUEST, ()))
    assert [gt.task.id for gt in msg.tasks] == [f"tsk_t{i}" for i in range(1, 12)]
    assert msg.tasks[0].method == plan.tasks[0].source
