"""`plansmith watch`: the plan's changes, one line each, JSON lines for scripts."""

from __future__ import annotations

import json


def test_watch_shows_each_change_and_stops_after_count(cli) -> None:
    plan_id = cli("plans", "create", "Watched", "--project", "w", "-q").stdout.strip()
    task_id = cli("tasks", "add", plan_id, "Write the runbook", "-q").stdout.strip()
    cli("tasks", "update", task_id, "--status", "IN_PROGRESS", "--progress", "40")
    out = cli("watch", plan_id, "--from", "0", "--count", "3").stdout.splitlines()
    assert out == [
        f'r1 PLAN_CREATED {plan_id} "Watched" DRAFT',
        f'r2 TASK_CREATED {task_id} "Write the runbook" TODO',
        f'r3 TASK_UPDATED {task_id} "Write the runbook" IN_PROGRESS 40%',
    ]
    lines = cli("watch", plan_id, "--from", "1", "--count", "2", "--json").stdout.splitlines()
    revisions = [r["revision"] for line in lines for r in json.loads(line)["changes"]["revisions"]]
    assert revisions == ["2", "3"]


def test_watch_of_a_missing_plan_is_not_found(cli) -> None:
    result = cli("watch", "pln_missing", code=3)
    assert "not found" in result.stderr
