"""`plansmith generate`, `optimize`, `analyze`, `suggest`, `estimate`, `decompose`, `status`
against a real server; the live progress of `generate` under a pseudo-terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect

BIN = Path(sys.executable).parent

BRIEF = """\
name: Shop
description: An online shop with a catalogue and payments
requirements:
  - Product catalogue with search
  - Card payments
agents:
  - {id: alice, capabilities: [backend, api]}
  - bob
"""


def test_generate_from_a_file_then_plan_with_it(cli, tmp_path):
    brief = tmp_path / "brief.yaml"
    brief.write_text(BRIEF)
    plan_id = cli("generate", "--file", str(brief), "--persist", "--request-id", "g1", "-q")
    plan_id = plan_id.stdout.strip()
    again = cli("generate", "--file", str(brief), "--persist", "--request-id", "g1", "-q")
    assert again.stdout.strip() == plan_id and plan_id.startswith("pln_")
    text = cli("generate", "--file", str(brief), "--name", "Other").stdout
    assert "Plan 'Other':" in text and "Not stored" in text
    events = cli("generate", "--file", str(brief), "--json").stdout
    assert '"started"' in events and '"completed"' in events and '"progress"' in events

    opt = cli.json(
        "optimize", plan_id, "--constraint", "MAINTAIN_DEPENDENCIES", "--apply", "--time-limit", "2"
    )
    assert opt["schedule"] and opt["durationAfterHours"] > 0
    chart = cli("gantt", plan_id).stdout
    assert "◆" in chart and "alice" in chart
    analysis = cli("analyze", plan_id, "--samples", "500", "--seed", "7").stdout
    assert "Critical path" in analysis and "P50" in analysis and "P95" in analysis
    assert "Utilization" in analysis
    risk = cli.json("analyze", plan_id, "--type", "RISK_ASSESSMENT", "--samples", "500")
    ra = risk["riskAssessment"]
    assert ra["p50Hours"] <= ra["p80Hours"] <= ra["p95Hours"]
    assert "suggestions" in cli.json("suggest", plan_id, "alice")
    assert cli.json("estimate", "Write the payments API", "--plan", plan_id)["estimateHours"] > 0
    parts = cli.json("decompose", "--description", "Build a login page", "--hours", "8")
    assert len(parts["subtasks"]) >= 2
    assert "Database: healthy" in cli("status").stdout
    assert cli.json("status", "--window", "60")["windowSeconds"] == 60


def test_generate_brief_errors_are_usage_errors(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    assert "not YAML" in cli("generate", "--file", str(bad), code=2).stderr
    bad.write_text("name: X\ndescription: Y\nbudget: 3\n")
    assert "budget" in cli("generate", "--file", str(bad), code=2).stderr
    assert "description" in cli("generate", "--name", "X", code=2).stderr


def test_live_progress_under_a_terminal(server_proc):
    child = pexpect.spawn(
        str(BIN / "plansmith"),
        [
            "--target", server_proc.address,
            "generate", "--name", "Live", "--description", "A web shop with payments",
            "--requirement", "Card payments", "--agent", "alice",
        ],
        env={"TERM": "xterm", "COLUMNS": "100", "LINES": "40", "PATH": str(BIN)},
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 100),
    )  # fmt: skip
    child.expect("Analyzing")
    child.expect("Tasks proposed")
    child.expect("Plan 'Live': ")
    child.expect(pexpect.EOF)
    # The terminal closes before the process has exited: wait for the exit rather than let
    # close() hang up on a process that is still shutting down (slow on a loaded machine).
    child.wait()
    child.close()
    assert child.exitstatus == 0
    screen = child.before
    assert "Not stored" in screen


def test_plain_output_has_no_live_display(cli):
    out = cli("generate", "--name", "Plain", "--description", "A web shop").stdout
    assert "Analyzing" not in out and "\x1b[" not in out
    assert out.startswith("Plan 'Plain':")


def _run_in_pty(server_proc, *args: str, **env: str) -> str:
    child = pexpect.spawn(
        str(BIN / "plansmith"),
        ["--target", server_proc.address, *args],
        env={"TERM": "xterm-256color", "PATH": str(BIN), **env},
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    child.expect(pexpect.EOF)
    # The terminal closes before the process has exited: wait for the exit rather than let
    # close() hang up on a process that is still shutting down (slow on a loaded machine).
    child.wait()
    child.close()
    assert child.exitstatus == 0, child.before
    return child.before


def test_color_on_a_terminal_unless_turned_off(cli, server_proc):
    plan_id = cli("plans", "create", "Colours", "-q").stdout.strip()
    task_id = cli("tasks", "add", plan_id, "Done one", "-q").stdout.strip()
    cli("tasks", "update", task_id, "--status", "DONE")
    colored = _run_in_pty(server_proc, "tasks", "list", plan_id)
    assert "DONE" in colored and "\x1b[32m" in colored  # green
    for plain in (
        _run_in_pty(server_proc, "--no-color", "tasks", "list", plan_id),
        _run_in_pty(server_proc, "tasks", "list", plan_id, NO_COLOR="1"),
    ):
        assert "DONE" in plain and "\x1b[32m" not in plain
