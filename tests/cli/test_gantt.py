"""`plansmith gantt` on a plan whose schedule is known: terminal rows, SVG, Mermaid."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from plansmith import PlansmithClient
from plansmith.cli.gantt import CRITICAL_MARK, DONE_CHAR, TODO_CHAR

# title: (agent, start, end, depends on, progress). Critical path: Design → API (7 h).
PLAN = {
    "Design": ("alice", 0.0, 4.0, [], 50),
    "Copy": ("bob", 0.0, 1.0, [], 0),
    "Pages": ("alice", 4.0, 6.0, ["Design"], 0),
    "API": ("bob", 4.0, 7.0, ["Design"], 0),
}


@pytest.fixture
def scheduled(server_proc):
    with PlansmithClient.connect(server_proc.address) as client:
        plan = client.create_plan("Known", agents=["alice", "bob"])
        ids: dict[str, str] = {}
        for title, (agent, start, end, deps, progress) in PLAN.items():
            t = client.create_task(
                title,
                plan_id=plan.id,
                estimated_hours=end - start,
                assigned_to=agent,
                dependencies=[ids[d] for d in deps],
            )
            ids[title] = t.id
            client.update_task(t.id, schedule=(start, end), progress=progress)
        client.create_task("Later", plan_id=plan.id, estimated_hours=2)
    return plan.id, ids


def _bar(line: str) -> tuple[int, int, int]:
    """(first column, length, done part) of the bar in a chart row."""
    cells = [i for i, ch in enumerate(line) if ch in (DONE_CHAR, TODO_CHAR)]
    return cells[0], len(cells), line.count(DONE_CHAR)


def test_terminal_chart_rows_order_lengths_and_critical_path(cli, scheduled):
    plan_id, _ = scheduled
    out = cli("gantt", plan_id, columns=120).stdout
    lines = out.splitlines()
    rows = {
        line[2:].split()[0]: line
        for line in lines
        if DONE_CHAR in line or TODO_CHAR in line
        if not line.strip().startswith(CRITICAL_MARK + " critical path")
    }
    assert set(rows) == set(PLAN)
    # Grouped by agent, each agent's tasks by start.
    order = [
        line[2:].split()[0] for line in lines if line[2:].split()[:1] and line in rows.values()
    ]
    assert order == ["Design", "Pages", "Copy", "API"]
    assert lines.index("alice  (2 tasks, 6h)") < lines.index(rows["Design"])
    assert lines.index("bob  (2 tasks, 4h)") < lines.index(rows["Copy"])
    # Lengths proportional to the durations, starts at the scheduled offsets.
    bars = {t: _bar(rows[t]) for t in PLAN}
    unit = bars["Design"][1] / 4.0
    for title, (_, start, end, _, _) in PLAN.items():
        first, length, _ = bars[title]
        assert length == pytest.approx((end - start) * unit, abs=1), title
        assert first - bars["Design"][0] == pytest.approx(start * unit, abs=1), title
    # Shaded by progress: half of Design is done.
    assert bars["Design"][2] == pytest.approx(bars["Design"][1] / 2, abs=1)
    assert bars["API"][2] == 0
    # The critical path is marked, and only it.
    marked = {t for t, line in rows.items() if line.startswith(CRITICAL_MARK)}
    assert marked == {"Design", "API"}
    # The unscheduled task is listed below, with its reason.
    below = out[out.index("Not scheduled (1):") :]
    assert "Later" in below and "no agent assigned" in below and "optimize" in below


def test_svg_bars(cli, scheduled, tmp_path):
    plan_id, ids = scheduled
    path = tmp_path / "plan.svg"
    cli("gantt", plan_id, "--svg", str(path))
    root = ET.parse(path).getroot()
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    bars = {
        r.get("data-task-id"): r
        for r in root.iterfind(".//s:rect", ns)
        if "bar" in (r.get("class") or "").split()
    }
    assert set(bars) == set(ids.values())
    width = {t: float(bars[ids[t]].get("width")) for t in PLAN}
    x = {t: float(bars[ids[t]].get("x")) for t in PLAN}
    unit = width["Design"] / 4.0
    for title, (_, start, end, _, _) in PLAN.items():
        assert width[title] == pytest.approx((end - start) * unit, rel=1e-3)
        assert x[title] - x["Design"] == pytest.approx(start * unit, rel=1e-3, abs=0.01)
    critical = {t for t in PLAN if "critical" in bars[ids[t]].get("class").split()}
    assert critical == {"Design", "API"}
    progress = [r for r in root.iterfind(".//s:rect", ns) if r.get("class") == "progress"]
    assert [p.get("data-task-id") for p in progress] == [ids["Design"]]
    assert float(progress[0].get("width")) == pytest.approx(width["Design"] / 2, rel=1e-3)
    texts = " ".join(t.text or "" for t in root.iterfind(".//s:text", ns))
    assert "Later" in texts and "Not scheduled" in texts


def test_mermaid(cli, scheduled):
    plan_id, ids = scheduled
    text = cli("gantt", plan_id, "--mermaid").stdout
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "gantt" and "dateFormat X" in lines
    assert lines.index("section alice") < lines.index("section bob")
    design = next(line for line in lines if line.startswith("Design :"))
    assert design == f"Design :crit, {ids['Design']}, 0, 240m"
    api = next(line for line in lines if line.startswith("API :"))
    assert api == f"API :crit, {ids['API']}, 14400, 180m"
    assert next(line for line in lines if line.startswith("Copy :")).endswith(", 0, 60m")


def test_plan_without_schedule_says_how_to_make_one(cli):
    plan_id = cli("plans", "create", "Unscheduled", "-q").stdout.strip()
    cli("tasks", "add", plan_id, "a", "--estimate", "2")
    out = cli("gantt", plan_id).stdout
    assert "no schedule yet" in out and f"plansmith optimize {plan_id} --apply" in out
    assert cli.json("gantt", plan_id)["totalSize"] == 1
