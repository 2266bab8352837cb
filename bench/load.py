"""Load benchmark: Plansmith against a bare grpc.aio echo server, in one run.

    .venv/bin/python bench/load.py [--seconds 3] [--inflight 1,16,64]     (or `make bench`)

Unary calls are driven by h2load (Debian `nghttp2-client`; `make bench` installs it) over
one h2c connection with 1, 16 and 64 streams in flight: a body file holding the 5-byte
gRPC frame prefix and the serialized request, `content-type: application/grpc` and
`te: trailers`. h2load only sees HTTP status 200, so the servers' own counts (the echo
server's counter, Plansmith's per-method status codes from OpsService) confirm that the
calls it counted ended with grpc-status 0. Time to first event of StreamGeneratePlan is
measured by a grpc.aio client against the echo server's stream. Prints calls/s, p50 and
p99, and each rate as a ratio to the echo baseline at the same concurrency; and the CPU
time each server process spent per call, whose ratio to the echo's moves less than the
rates when other processes load the machine.

ListTasks(50) asks for the same page of an unchanged plan, which the server keeps by the
plan's revision; "page not cached" is the same call on a server with that cache off (a
page read after its plan changed).

Both servers run on the same event loop (`--event-loop`, default what `plansmith-server`
picks: uvloop where installed). On uvloop the echo on asyncio's own loop is measured too
(at the highest concurrency), for reference: the ceiling a server on asyncio's loop would
be read against.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from google.protobuf import field_mask_pb2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from telemetry_overhead import launch as launch_plansmith  # noqa: E402
from telemetry_overhead import pct, start_server  # noqa: E402

from plansmith.v1 import (  # noqa: E402
    generation_pb2,
    ops_service_pb2,
    ops_service_pb2_grpc,
    plan_pb2,
    plan_service_pb2,
    plan_service_pb2_grpc,
    planning_service_pb2,
    planning_service_pb2_grpc,
    task_pb2,
)
from plansmith_server import loops  # noqa: E402

TYPICAL_TASK = task_pb2.Task(
    title="Implement the checkout payment API",
    description="Expose POST /checkout/pay backed by the payment provider; idempotent by "
    "order id; emits order-paid events. " * 2,
    priority=task_pb2.TASK_PRIORITY_HIGH,
    estimated_hours=12,
    optimistic_hours=8,
    pessimistic_hours=20,
    required_capabilities=["backend", "python"],
    acceptance_criteria=["p99 under 300 ms", "retries never charge twice"],
    metadata={"team": "payments", "epic": "checkout-v2"},
)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def frame(message) -> bytes:
    data = message.SerializeToString()
    return b"\x00" + len(data).to_bytes(4, "big") + data


def launch_echo() -> tuple[subprocess.Popen[str], str]:
    return start_server("echo_server.py")


def h2load(address: str, path: str, body: bytes, inflight: int, seconds: float, tmp: str) -> dict:
    body_file = os.path.join(tmp, "body.bin")
    log_file = os.path.join(tmp, "h2load.log")
    Path(body_file).write_bytes(body)
    Path(log_file).unlink(missing_ok=True)  # h2load appends
    out = subprocess.run(
        [
            "h2load",
            f"http://{address}{path}",
            "-d",
            body_file,
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            "-c",
            "1",
            "-m",
            str(inflight),
            "-D",
            str(seconds),
            "--warm-up-time",
            "1",
            "--log-file",
            log_file,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    done = re.search(
        r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out
    )
    if not m or not done:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    lat = [
        int(line.split("\t")[2]) / 1000 for line in Path(log_file).read_text().splitlines() if line
    ]
    return {
        "rate": float(m.group(2)),
        "succeeded": int(done.group(2)),
        "failed": int(done.group(3)),
        "p50": pct(lat, 50) if lat else 0.0,
        "p99": pct(lat, 99) if lat else 0.0,
        "logged": len(lat),
    }


async def echo_count(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as ch:
        call = ch.unary_unary(
            "/bench.Echo/Count",
            request_serializer=task_pb2.Task.SerializeToString,
            response_deserializer=task_pb2.Task.FromString,
        )
        return (await call(task_pb2.Task())).progress


async def plansmith_codes(address: str, method: str) -> dict[str, int]:
    async with grpc.aio.insecure_channel(address) as ch:
        s = await ops_service_pb2_grpc.OpsServiceStub(ch).GetServiceStatus(
            ops_service_pb2.GetServiceStatusRequest(window_seconds=3600)
        )
    for m in s.methods:
        if m.method == method:
            return dict(m.total_codes)
    return {}


async def seed(address: str) -> dict:
    async with grpc.aio.insecure_channel(address) as ch:
        plans = plan_service_pb2_grpc.PlanServiceStub(ch)
        plan = (
            await plans.CreatePlan(
                plan_service_pb2.CreatePlanRequest(plan=plan_pb2.Plan(name="bench"))
            )
        ).plan
        tasks = (
            await plans.BatchCreateTasks(
                plan_service_pb2.BatchCreateTasksRequest(
                    plan_id=plan.id,
                    tasks=[
                        task_pb2.Task(
                            title=f"{TYPICAL_TASK.title} {i}",
                            description=TYPICAL_TASK.description,
                            required_capabilities=TYPICAL_TASK.required_capabilities,
                        )
                        for i in range(60)
                    ],
                )
            )
        ).tasks
        sink = (
            await plans.CreatePlan(
                plan_service_pb2.CreatePlanRequest(plan=plan_pb2.Plan(name="writes"))
            )
        ).plan
    brief = generation_pb2.PlanBrief(
        name="Status page",
        description="Build a public status page web application for our API",
        requirements=["Show current incidents", "Email subscribers on updates"],
    )
    return {
        "GetTask": plan_service_pb2.GetTaskRequest(task_id=tasks[0].id),
        "ListTasks(50)": plan_service_pb2.ListTasksRequest(plan_id=plan.id, page_size=50),
        "CreateTask": plan_service_pb2.CreateTaskRequest(plan_id=sink.id, task=TYPICAL_TASK),
        "UpdateTask": plan_service_pb2.UpdateTaskRequest(
            task=task_pb2.Task(id=tasks[1].id, progress=50),
            update_mask=field_mask_pb2.FieldMask(paths=["progress"]),
        ),
        "GeneratePlan(small)": planning_service_pb2.GeneratePlanRequest(brief=brief),
        "_brief": brief,
    }


PATHS = {
    "GetTask": "/plansmith.v1.PlanService/GetTask",
    "ListTasks(50)": "/plansmith.v1.PlanService/ListTasks",
    "CreateTask": "/plansmith.v1.PlanService/CreateTask",
    "UpdateTask": "/plansmith.v1.PlanService/UpdateTask",
    "GeneratePlan(small)": "/plansmith.v1.PlanningService/GeneratePlan",
}


async def first_event_latency(address: str, make_call, inflight: int, seconds: float) -> dict:
    async with grpc.aio.insecure_channel(address) as ch:
        firsts: list[float] = []
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                call = make_call(ch)
                await call.read()
                firsts.append((time.perf_counter() - t0) * 1000)
                call.cancel()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        return {
            "rate": len(firsts) / (time.perf_counter() - start),
            "p50": pct(firsts, 50),
            "p99": pct(firsts, 99),
        }


def echo_run(address: str, inflight: int, seconds: float, tmp: str, pid: int) -> dict:
    """h2load against the echo, checked against its own count of calls served."""
    before = asyncio.run(echo_count(address))
    cpu = cpu_seconds(pid)
    r = h2load(address, "/bench.Echo/Unary", frame(TYPICAL_TASK), inflight, seconds, tmp)
    r["cpu"] = cpu_seconds(pid) - cpu
    served = asyncio.run(echo_count(address)) - before
    assert r["failed"] == 0 and served >= r["succeeded"], (r, served)
    r["cpu_us"] = r["cpu"] / served * 1e6 if served else float("nan")
    return r


def plansmith_run(
    address: str, path: str, body: bytes, inflight: int, seconds: float, tmp: str, pid: int
) -> dict:
    """h2load against Plansmith, checked against the server's count of status codes."""
    before = asyncio.run(plansmith_codes(address, path))
    cpu = cpu_seconds(pid)
    r = h2load(address, path, body, inflight, seconds, tmp)
    r["cpu"] = cpu_seconds(pid) - cpu
    after = asyncio.run(plansmith_codes(address, path))
    ok = after.get("OK", 0) - before.get("OK", 0)
    # h2load drops the connection when time is up: calls then in flight end CANCELLED at
    # the server. Anything else is a failure.
    cancelled = after.get("CANCELLED", 0) - before.get("CANCELLED", 0)
    bad = sum(after.values()) - sum(before.values()) - ok - cancelled
    assert r["failed"] == 0 and bad == 0 and cancelled <= inflight, (path, r, after)
    assert ok >= r["succeeded"], (path, r, after)
    # Every call the server ended (warm-up included) shared the CPU time measured.
    served = sum(after.values()) - sum(before.values())
    r["cpu_us"] = r["cpu"] / served * 1e6 if served else float("nan")
    return r


def uncached_pages(tmp: str, levels: list[int], seconds: float, base: dict) -> list[tuple]:
    """ListTasks(50) on a server with the page cache off: what a page costs when its plan
    changed since it was last read (the main server serves the unchanged page from its
    cache, keyed by the plan's revision)."""
    os.environ["PLANSMITH_PAGE_CACHE_TASKS"] = "0"
    try:
        ps, addr = launch_plansmith(f"{tmp}/uncached.db", "off")
    finally:
        del os.environ["PLANSMITH_PAGE_CACHE_TASKS"]
    rows = []
    try:
        body, path = frame(asyncio.run(seed(addr))["ListTasks(50)"]), PATHS["ListTasks(50)"]
        for n in levels:
            r = plansmith_run(addr, path, body, n, seconds, tmp, ps.pid)
            rows.append(("ListTasks(50), page not cached", n, r, base[n]))
    finally:
        ps.terminate()
        ps.wait(timeout=30)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--inflight", default="1,16,64")
    ap.add_argument(
        "--calls", default="", help="comma-separated subset of the calls (default: all)"
    )
    ap.add_argument("--no-stream", action="store_true", help="skip the first-event measurement")
    ap.add_argument(
        "--event-loop",
        choices=loops.CHOICES,
        default=loops.from_env(),
        help="event loop of both servers (default: PLANSMITH_EVENT_LOOP, else auto)",
    )
    args = ap.parse_args()
    loop_name, _ = loops.factory(args.event_loop)
    os.environ["PLANSMITH_EVENT_LOOP"] = loop_name  # both servers inherit it
    wanted = set(filter(None, args.calls.split(",")))
    unknown = wanted - set(PATHS)
    if unknown:
        sys.exit(f"unknown calls {sorted(unknown)}; known: {', '.join(PATHS)}")
    if not shutil.which("h2load"):
        sys.exit("h2load not found: apt-get install nghttp2-client (make bench does)")
    levels = [int(x) for x in args.inflight.split(",")]
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory() as tmp:
        echo, echo_addr = launch_echo()
        ps, ps_addr = launch_plansmith(f"{tmp}/bench.db", "off")
        try:
            reqs = asyncio.run(seed(ps_addr))
            base: dict[int, dict] = {}
            for n in levels:
                base[n] = r = echo_run(echo_addr, n, args.seconds, tmp, echo.pid)
                rows.append(("echo (unary)", n, r, None))
            for name, path in PATHS.items():
                if wanted and name not in wanted:
                    continue
                for n in levels:
                    r = plansmith_run(
                        ps_addr, path, frame(reqs[name]), n, args.seconds, tmp, ps.pid
                    )
                    rows.append((name, n, r, base[n]))
                if name == "ListTasks(50)":
                    rows += uncached_pages(tmp, levels, args.seconds, base)
            brief = reqs["_brief"]
            for n in [] if args.no_stream else levels:
                echo_stream = asyncio.run(
                    first_event_latency(
                        echo_addr,
                        lambda ch: ch.unary_stream(
                            "/bench.Echo/Stream",
                            request_serializer=task_pb2.Task.SerializeToString,
                            response_deserializer=task_pb2.Task.FromString,
                        )(TYPICAL_TASK),
                        n,
                        args.seconds,
                    )
                )
                first = asyncio.run(
                    first_event_latency(
                        ps_addr,
                        lambda ch: planning_service_pb2_grpc.PlanningServiceStub(
                            ch
                        ).StreamGeneratePlan(
                            planning_service_pb2.StreamGeneratePlanRequest(brief=brief)
                        ),
                        n,
                        args.seconds,
                    )
                )
                rows.append(("echo stream, first message", n, echo_stream, None))
                rows.append(("StreamGeneratePlan, first event", n, first, echo_stream))
        finally:
            for p in (echo, ps):
                p.terminate()
                p.wait(timeout=30)
        if loop_name != "asyncio":
            os.environ["PLANSMITH_EVENT_LOOP"] = "asyncio"
            echo, echo_addr = launch_echo()
            try:  # at the highest concurrency only, to keep make bench within 3 minutes
                n = max(levels)
                r = echo_run(echo_addr, n, args.seconds, tmp, echo.pid)
                rows.append(("(reference) echo on asyncio's loop", n, r, None))
            finally:
                echo.terminate()
                echo.wait(timeout=30)
    print(f"\n{args.seconds:g} s per measurement (+1 s warm-up for h2load); one h2c connection;")
    print(f"both servers on the {loop_name} event loop")
    print(
        "| call | in flight | calls/s | p50 ms | p99 ms | rate / echo | p99 / echo p99 "
        "| server CPU µs/call | echo CPU / CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, r, b in rows:
        ratio = f"{r['rate'] / b['rate']:.2f}" if b else ""
        p99r = f"{r['p99'] / b['p99']:.1f}" if b and b["p99"] else ""
        cells = f"{r['rate']:.0f} | {r['p50']:.2f} | {r['p99']:.2f}"
        cpu = f"{r['cpu_us']:.0f}" if "cpu_us" in r else ""
        cpu_ratio = f"{b['cpu_us'] / r['cpu_us']:.2f}" if b and "cpu_us" in r else ""
        print(f"| {name} | {n} | {cells} | {ratio} | {p99r} | {cpu} | {cpu_ratio} |")
    print("\ntargets at 64 in flight: GetTask >= 0.70, CreateTask >= 0.50,", end=" ")
    print("ListTasks(50) >= 0.40; p99 <= 3x echo")
    print(
        "server CPU µs/call: the server process's CPU time (all threads) over a measurement,"
        " per call it ended;\n'echo CPU / CPU' is the rate ratio the two would have if both"
        " were bound by their CPU alone, which\nother load on the machine disturbs less than"
        " the rates."
    )


if __name__ == "__main__":
    main()
