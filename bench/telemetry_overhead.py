"""GetTask throughput with telemetry off and with tracing + metrics on, in one run.

    .venv/bin/python bench/telemetry_overhead.py [--seconds 5] [--concurrency 16] [--rounds 2]

Each mode runs in its own server process; the modes alternate (off, on, sampled, off, ...)
so drift of the machine hits all alike. Prints calls/s per round, the medians and the
ratios to `off`. The aim: at most 15 % fewer calls per second with everything on.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.telemetry.stats import percentile

HERE = Path(__file__).resolve().parent


def start_server(script: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Starts `bench/<script>` and waits for the `ADDRESS host:port` line it prints."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its logs: written, not read (as a deployment would)
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ADDRESS "):
        proc.kill()
        raise RuntimeError(f"bench server {script} did not start: {line!r}")
    return proc, line.split()[1]


def launch(db: str, mode: str) -> tuple[subprocess.Popen[str], str]:
    """A Plansmith server on `db` with telemetry `mode` (see `_serve.py`)."""
    return start_server("_serve.py", db, mode)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile, nearest rank as the server's status report computes it (so a
    client-side p99 printed beside the server's means the same); NaN for no values."""
    return percentile(sorted(values), q) if values else float("nan")


async def load(address: str, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = plan_service_pb2_grpc.PlanServiceStub(ch)
        plan = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="bench")))).plan
        task = (
            await stub.CreateTask(
                pb.CreateTaskRequest(
                    plan_id=plan.id, task=task_pb2.Task(title="bench", description="x" * 300)
                )
            )
        ).task
        req = pb.GetTaskRequest(task_id=task.id)
        for _ in range(200):  # warm-up
            await stub.GetTask(req)
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await stub.GetTask(req)
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(latencies) / (time.perf_counter() - start), latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    modes = ("off", "on", "sampled")
    rates: dict[str, list[float]] = {m: [] for m in modes}
    p99: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in modes:
                proc, address = launch(f"{tmp}/{mode}{r}.db", mode)
                try:
                    rate, lat = asyncio.run(load(address, args.seconds, args.concurrency))
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                rates[mode].append(rate)
                p99[mode].append(pct(lat, 99) * 1000)
                print(f"round {r + 1} {mode:>7}: {rate:8.0f} calls/s  p99 {p99[mode][-1]:.2f} ms")
    off = statistics.median(rates["off"])
    print()
    print("| telemetry | calls/s (median) | p99 ms (median) | ratio to off |")
    print("|---|---|---|---|")
    names = {
        "off": "off",
        "on": "tracing (every trace) + metrics",
        "sampled": "tracing (10 % of traces) + metrics",
    }
    for mode in modes:
        rate = statistics.median(rates[mode])
        p99m = statistics.median(p99[mode])
        print(f"| {names[mode]} | {rate:.0f} | {p99m:.2f} | {rate / off:.3f} |")
    print("\naim: at most 15 % fewer calls/s with everything on (ratio >= 0.85)")


if __name__ == "__main__":
    main()
