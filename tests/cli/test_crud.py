"""`plansmith plans|tasks ...` against a real server: JSON output, tables, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from plansmith import PlansmithClient
from plansmith.cli.app import app

BIN = Path(sys.executable).parent


def test_plans_create_list_show_delete(cli):
    made = cli.json("plans", "create", "Launch", "--project", "cli-crud", "--agent", "alice:ui+web")
    plan = made["plan"]
    assert plan["name"] == "Launch" and plan["projectId"] == "cli-crud"
    assert plan["agents"] == [{"id": "alice", "capabilities": ["ui", "web"]}]
    # The same request id twice: one plan.
    for _ in range(2):
        again = cli.json("plans", "create", "Again", "--project", "cli-crud", "--request-id", "k1")
    listed = cli.json("plans", "list", "--project", "cli-crud")
    assert listed["totalSize"] == 2
    assert {p["id"] for p in listed["plans"]} == {plan["id"], again["plan"]["id"]}
    shown = cli.json("plans", "show", plan["id"])
    assert shown == {"plan": plan}
    table = cli("plans", "show", plan["id"]).stdout
    assert "Launch" in table and "alice (ui, web)" in table
    assert plan["id"] in cli("plans", "list", "--project", "cli-crud").stdout
    assert cli("plans", "create", "Q", "--project", "cli-crud", "-q").stdout.startswith("pln_")
    deleted = cli.json("plans", "delete", plan["id"])
    assert deleted["planId"] == plan["id"]
    cli("plans", "show", plan["id"], code=3)


def test_tasks_add_list_show_update(cli, server_proc):
    plan_id = cli("plans", "create", "Tasks", "-q").stdout.strip()
    first = cli.json("tasks", "add", plan_id, "Design", "--estimate", "4", "--priority", "high")
    design = first["task"]
    assert design["priority"] == "TASK_PRIORITY_HIGH" and design["estimatedHours"] == 4
    build = cli.json(
        "tasks", "add", plan_id, "Build", "--depends-on", design["id"], "--assignee", "bob"
    )["task"]
    assert build["dependencies"] == [design["id"]] and build["assignedTo"] == "bob"
    listed = cli.json("tasks", "list", plan_id)
    assert [t["title"] for t in listed["tasks"]] == ["Design", "Build"]
    assert listed["totalSize"] == 2
    assert cli.json("tasks", "list", plan_id, "--assignee", "bob")["totalSize"] == 1
    updated = cli.json(
        "tasks", "update", design["id"], "--status", "in_progress", "--progress", "40"
    )
    assert updated["task"]["status"] == "TASK_STATUS_IN_PROGRESS"
    assert updated["task"]["progress"] == 40
    assert cli.json("tasks", "show", design["id"])["task"]["progress"] == 40
    text = cli("tasks", "list", plan_id, columns=120).stdout
    assert "IN_PROGRESS" in text and "40%" in text
    # Narrow (80 columns, as when piped): full ids, fewer columns.
    narrow = cli("tasks", "list", plan_id, columns=80).stdout
    assert design["id"] in narrow and build["id"] in narrow and "40%" not in narrow
    with PlansmithClient.connect(server_proc.address) as client:
        assert client.get_task(design["id"]).progress == 40


def test_errors_are_one_line_with_the_exit_code(cli):
    missing = cli("plans", "show", "pln_missing", code=3)
    assert missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "NOT_FOUND" in missing.stderr
    assert "Traceback" not in missing.stderr
    # Refused by the client (an unknown status name): a usage error, nothing sent.
    bad = cli("plans", "list", "--status", "WIP", code=2)
    assert bad.stderr.startswith("plansmith: INVALID_ARGUMENT") and "status" in bad.stderr
    # Refused by the server, with its field violation as the hint.
    empty = cli("plans", "create", "", code=2)
    assert empty.stderr.count("\n") == 1 and "plan.name" in empty.stderr
    plan_id = cli("plans", "create", "Deps", "-q").stdout.strip()
    a = cli("tasks", "add", plan_id, "a", "-q").stdout.strip()
    cli("tasks", "add", plan_id, "b", "--depends-on", a)
    cli("tasks", "update", a, code=2)  # nothing to change
    cli("nosuchcommand", code=2)
    cli("tasks", "show", "tsk_missing", code=3)


def test_unavailable_server_exits_4(cli):
    gone = cli.runner.invoke(app, ["--target", "127.0.0.1:1", "--timeout", "1", "plans", "list"])
    assert gone.exit_code == 4, gone.stderr
    assert "UNAVAILABLE" in gone.stderr and "127.0.0.1:1" in gone.stderr
    # PLANSMITH_TARGET names the server when --target does not.
    env = cli.runner.invoke(
        app, ["--timeout", "1", "plans", "list"], env={"PLANSMITH_TARGET": "127.0.0.1:1"}
    )
    assert env.exit_code == 4 and "127.0.0.1:1" in env.stderr
    found = cli.runner.invoke(
        app, ["--json", "plans", "list"], env={"PLANSMITH_TARGET": cli.address}
    )
    assert found.exit_code == 0 and "totalSize" in json.loads(found.stdout)


def test_shell_completion():
    def complete(words: str) -> list[str]:
        out = subprocess.run(
            [str(BIN / "plansmith")],
            env={"_PLANSMITH_COMPLETE": "complete_bash", "COMP_WORDS": words,
                 "COMP_CWORD": str(len(words.split()) - 1), "PATH": str(BIN)},
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return out.stdout.split()

    assert complete("plansmith ta") == ["tasks"]
    assert complete("plansmith tasks u") == ["update"]
    assert "--mermaid" in complete("plansmith gantt --")


def test_every_command_has_help_with_an_example(cli):
    commands = [
        ["plans", "list"], ["plans", "show"], ["plans", "create"], ["plans", "delete"],
        ["tasks", "list"], ["tasks", "show"], ["tasks", "add"], ["tasks", "update"],
        ["generate"], ["optimize"], ["analyze"], ["suggest"], ["estimate"], ["decompose"],
        ["gantt"], ["status"],
    ]  # fmt: skip
    for cmd in commands:
        out = cli(*cmd, "--help").stdout
        assert "Example" in out and "plansmith " + " ".join(cmd) in out, cmd
        assert "--json" in out, cmd
