"""`plansmith tasks start|done|fail` against a real server process."""

from __future__ import annotations


def test_tasks_start_done_fail(cli):
    plan_id = cli("plans", "create", "Run", "--agent", "ann:python", "--agent", "bob:python", "-q")
    plan_id = plan_id.stdout.strip()
    a = cli("tasks", "add", plan_id, "Extract", "--estimate", "2", "-q").stdout.strip()
    b = cli("tasks", "add", plan_id, "Load", "--depends-on", a, "-q").stdout.strip()
    refused = cli("tasks", "start", b, "--agent", "ann", code=1)
    assert f"tasks/{a}: dependency {a!r} is TODO, not DONE" in refused.stderr
    started = cli.json("tasks", "start", a, "--agent", "ann")["task"]
    assert started["status"] == "TASK_STATUS_IN_PROGRESS" and started["assignedTo"] == "ann"
    dry = cli.json("tasks", "fail", a, "connection reset by peer", "--dry-run")["record"]
    assert dry["decision"] == "REPLAN_DECISION_RETRY" and dry["state"] == "REPLAN_STATE_DRY_RUN"
    shown = cli("tasks", "fail", a, "403 Forbidden", columns=200).stdout
    assert "REASSIGN" in shown and "bob" in shown and "PERMISSION" in shown
    cli("tasks", "start", a, "--agent", "bob")
    done = cli.json("tasks", "done", a, "--actual", "1.5", "--output", "rows=42")["task"]
    assert done["status"] == "TASK_STATUS_DONE" and done["outputs"] == {"rows": "42"}
    assert cli.json("tasks", "start", b, "--agent", "ann")["task"]["status"].endswith("PROGRESS")
    cli("tasks", "done", a, "--output", "novalue", code=2)
