"""The README's command blocks work as written (against a real `plansmith-server`)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from plansmith import PlansmithClient
from tests.test_process import launch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def readme_block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- readme-test: {name} -->\n```sh\n(.*?)```", text, re.S)
    assert m, f"README block {name!r} not found"
    return m.group(1)


def run_block(name: str, address: str) -> subprocess.CompletedProcess[str]:
    script = readme_block(name).replace("localhost:50051", address)
    script = script.replace(".venv/bin/", f"{BIN}/")
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _counts(address: str) -> tuple[int, int]:
    """Plans, and tasks over all plans, on the server at `address`."""
    with PlansmithClient.connect(address) as client:
        plans = list(client.iter_plans())
        return len(plans), sum(client.get_tasks(p.id, per_page=1).total_size for p in plans)


def test_readme_grpcurl_block(tmp_path):
    # Run twice: every write carries a request_id, so the second run answers with the
    # first results (the same plan, its two tasks) instead of writing again.
    sp = launch(str(tmp_path / "db.sqlite"))
    try:
        first = run_block("grpcurl", sp.address)
        out = run_block("grpcurl", sp.address)
        counts = _counts(sp.address)
    finally:
        sp.stop()
    assert first.returncode == 0, first.stdout + first.stderr
    assert out.returncode == 0, out.stdout + out.stderr
    plans = [re.search(r"plan: (pln_\w+)", o.stdout).group(1) for o in (first, out)]
    assert plans[0] == plans[1]
    assert counts == (1, 2)
    assert '"totalSize": 2' in out.stdout
    assert "plansmith.v1.PlanService" in out.stdout
    assert '"status": "SERVING"' in out.stdout
    assert "plan: pln_" in out.stdout
    assert '"title": "Build pages"' in out.stdout
    assert '"nextPageToken"' not in out.stdout  # two tasks fit on a page of two
    assert "PLAN_NOT_FOUND" in out.stderr


def test_readme_watch_block(tmp_path):
    """A watch from 0 replays the plan's three revisions; the resumed one (after 2) gets
    revision 3 only. Run twice: the writes are idempotent, so nothing changes."""
    sp = launch(str(tmp_path / "db.sqlite"))
    try:
        first = run_block("watch", sp.address)
        out = run_block("watch", sp.address)
        counts = _counts(sp.address)
    finally:
        sp.stop()
    for run in (first, out):
        assert run.returncode == 0, run.stdout + run.stderr
    assert counts == (1, 2)
    replay, resumed = out.stdout.split('"currentRevision": "3"')[:2]
    assert re.findall(r'^        "revision": "(\d+)"', replay, re.M) == ["1", "2", "3"]
    assert re.findall(r'^        "revision": "(\d+)"', resumed, re.M) == ["3"]
    assert "PLAN_CHANGE_TYPE_TASK_UPDATED" in resumed
    assert out.stderr.count("DeadlineExceeded") == 2  # each ended by -max-time, no error


def test_readme_planning_block(tmp_path):
    sp = launch(str(tmp_path / "db.sqlite"))
    try:
        out = run_block("planning", sp.address)
        counts = _counts(sp.address)
        again = run_block("planning", sp.address)  # stores nothing more
        assert again.returncode == 0, again.stdout + again.stderr
        assert _counts(sp.address) == counts
    finally:
        sp.stop()
    assert counts[0] == 1
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"completed"' in out.stdout and '"started"' in out.stdout
    assert '"provenOptimal"' in out.stdout or '"durationAfterHours"' in out.stdout
    assert '"p80Hours"' in out.stdout and '"deadlineProbability"' in out.stdout
    assert '"suggestions"' in out.stdout
    assert '"estimateHours"' in out.stdout
    assert out.stdout.count('"subtasks"') == 1


def test_readme_status_block(tmp_path):
    sp = launch(str(tmp_path / "db.sqlite"))
    try:
        out = run_block("status", sp.address)
    finally:
        sp.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Database: healthy" in out.stdout
    assert '"windowSeconds": 60' in out.stdout


def test_readme_port_override_serves_make_run_on_that_port(tmp_path):
    """The line next to the two commands, as written but on a free port and a scratch
    database; make's install step is taken as done (the suite runs from that install)."""
    line = readme_block("listen").strip().splitlines()[0]
    command = line.split("#")[0].strip()
    assert command == "PLANSMITH_LISTEN=127.0.0.1:50052 make run", command
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PLANSMITH_DB": str(tmp_path / "db.sqlite")}
    script = command.replace("50052", str(port)).replace("make run", "make -s -o install run")
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        serving = ""
        while time.monotonic() < deadline and not serving:
            line = proc.stderr.readline()
            if not line:
                break
            if "serving on" in line:
                serving = line
        assert f"serving on 127.0.0.1:{port} " in serving, serving
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            status = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert status.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as in a terminal
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_readme_flows_block(tmp_path):
    # Twice: the request_ids make the second run answer with the first results.
    sp = launch(str(tmp_path / "db.sqlite"))
    try:
        first = run_block("flows", sp.address)
        again = run_block("flows", sp.address)
        with PlansmithClient.connect(sp.address) as client:
            flows = client.get_flows().total_size
            runs = list(client.get_flow_runs().runs)
    finally:
        sp.stop()
    for out in (first, again):
        assert out.returncode == 0, out.stdout + out.stderr
        assert "flow: text-to-sql version 1" in out.stdout
        assert '"planner": "embedded"' in out.stdout
        assert '"replanned": true' in out.stdout
        assert '"nextNode": "validate_sql"' in out.stdout
        assert "node 'a': unknown target 'ghost'" in out.stderr
        assert "node 'lost': unreachable" in out.stderr
    assert re.search(r"run: (run_\w+)", first.stdout).group(1) == re.search(
        r"run: (run_\w+)", again.stdout
    ).group(1)
    assert flows == 1
    assert len(runs) == 1 and list(runs[0].completed_nodes) == ["classify_prompt"]
    assert "has_user_approved" in runs[0].initial_plan.nodes


def test_readme_replanning_block(tmp_path):
    # Twice: the request_ids make the second run answer with the first results.
    sp = launch(str(tmp_path / "db.sqlite"))
    try:
        first = run_block("replanning", sp.address)
        again = run_block("replanning", sp.address)
        counts = _counts(sp.address)
    finally:
        sp.stop()
    assert first.returncode == 0, first.stdout + first.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    assert counts == (1, 3)  # the task and its two recovery tasks, once
    for out in (first, again):
        assert '"decision": "REPLAN_DECISION_INSERT_RECOVERY_TASKS"' in out.stdout
        assert '"category": "FAILURE_CATEGORY_DATA_QUALITY"' in out.stdout
        assert '"state": "REPLAN_STATE_APPLIED"' in out.stdout
        assert out.stdout.count('"totalSize": 1') == 1  # one record in the history
