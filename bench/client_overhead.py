"""Client overhead: the same GetTask load through the raw stub and through the full client.

    .venv/bin/python bench/client_overhead.py [--seconds 2] [--rounds 3] [--concurrency 16]
                                              [--max-calls 20000] [--inproc]

Starts a server (a `plansmith-server` subprocess on 127.0.0.1, port picked free, database
in a temporary folder; or in this process with `--inproc`), creates one task, then runs
rounds alternating raw / full: each round keeps `concurrency` GetTask calls in flight for
`seconds` or until `max-calls`. "raw" is the generated stub on a bare grpc.aio channel;
"full" is `AsyncPlansmithClient.get_task` with every interceptor on (metadata with request
id and trace propagation, retry, circuit breaker, error mapping). Prints the median rate
of each and the ratio full/raw; the client should keep at least 90 % of the raw rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc

from plansmith import AsyncPlansmithClient
from plansmith.v1 import plan_pb2, plan_service_pb2, plan_service_pb2_grpc, task_pb2
from plansmith_server import loops


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _server(inproc: bool, folder: str) -> AsyncIterator[str]:
    db = str(Path(folder) / "bench.db")
    if inproc:
        from plansmith_server.app import start
        from plansmith_server.config import Config

        running = await start(Config(listen="127.0.0.1:0", db_path=db, log_level="WARNING"))
        try:
            yield running.address
        finally:
            await running.stop(0.5)
        return
    address = f"127.0.0.1:{_free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "plansmith_server",
        "--listen",
        address,
        "--db",
        db,
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        async with grpc.aio.insecure_channel(address) as ch:
            await asyncio.wait_for(ch.channel_ready(), 15)
        yield address
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def _load(
    call: Callable[[], Awaitable[object]], seconds: float, concurrency: int, max_calls: int
) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while done < max_calls and time.perf_counter() < stop_at:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=2.0, help="length of each round")
    p.add_argument("--rounds", type=int, default=3, help="rounds of each kind")
    p.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    p.add_argument("--max-calls", type=int, default=20000, help="calls per round at most")
    p.add_argument("--inproc", action="store_true", help="run the server in this process")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        async with _server(args.inproc, folder) as address:
            async with grpc.aio.insecure_channel(address) as raw_channel:
                stub = plan_service_pb2_grpc.PlanServiceStub(raw_channel)
                plan = (
                    await stub.CreatePlan(
                        plan_service_pb2.CreatePlanRequest(plan=plan_pb2.Plan(name="bench"))
                    )
                ).plan
                task = (
                    await stub.CreateTask(
                        plan_service_pb2.CreateTaskRequest(
                            plan_id=plan.id, task=task_pb2.Task(title="t")
                        )
                    )
                ).task
                request = plan_service_pb2.GetTaskRequest(task_id=task.id)
                async with AsyncPlansmithClient.connect(address) as client:

                    async def raw() -> object:
                        return await stub.GetTask(request, timeout=30)

                    async def full() -> object:
                        return await client.get_task(task.id)

                    # warm up both paths (connections, caches)
                    await _load(raw, 0.3, args.concurrency, 500)
                    await _load(full, 0.3, args.concurrency, 500)
                    rates: dict[str, list[float]] = {"raw": [], "full": []}
                    for _ in range(args.rounds):
                        for name, fn in (("raw", raw), ("full", full)):
                            rate = await _load(fn, args.seconds, args.concurrency, args.max_calls)
                            rates[name].append(rate)
                            print(f"  {name:<4} {rate:8.0f} calls/s", flush=True)
                    stats = client.retry_stats.snapshot() if client.retry_stats else {}

    raw_rate = statistics.median(rates["raw"])
    full_rate = statistics.median(rates["full"])
    where = "in-process" if args.inproc else "subprocess"
    print(f"server: {where}; {args.concurrency} in flight; median of {args.rounds} rounds")
    print(f"raw stub:    {raw_rate:8.0f} GetTask/s")
    print(f"full client: {full_rate:8.0f} GetTask/s")
    print(f"ratio full/raw: {full_rate / raw_rate:.3f}  (target >= 0.90)")
    print(f"client retries during the run: {stats.get('retries', 0)}")


if __name__ == "__main__":
    # The client (and an --inproc server) on the loop the server would pick.
    loops.run(main(), loops.from_env())
