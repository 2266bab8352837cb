"""WatchPlan under a steady write load: many watchers of one plan.

    .venv/bin/python bench/watch.py [--watchers 50] [--rate 200] [--seconds 15]

A `plansmith-server` (its own process, default settings) serves one plan. A writer sends
`--rate` UpdateTask calls a second at a steady pace (open loop, at most 64 in flight) for
`--seconds`, twice: first with no watcher (the baseline: the server's CPU for the writes
alone), then with `--watchers` WatchPlan streams following the plan, spread over two
client processes (one Python process cannot read 10,000 messages a second on top of the
writer here). Prints:

- revisions delivered per second (summed over watchers) and messages per second (a
  message carries several revisions when a watcher lagged);
- delay from commit to delivery, p50 / p99: from the revision's `commit_time` (taken in
  the write's transaction, so it includes the group's COMMIT and fsync) to the moment the
  watcher's process decoded the message (same machine, same clock);
- server CPU per delivered revision: (server CPU with watchers - server CPU of the
  baseline) / revisions delivered;
- the server's RSS before the watchers start, at the end, and its peak (VmHWM);
- that every watcher got every revision exactly once, and the load average.

The target (issue 21): p99 under 100 ms at 200 writes/s with 50 watchers, memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from plansmith.v1 import (  # noqa: E402
    plan_pb2,
    plan_service_pb2,
    plan_service_pb2_grpc,
    task_pb2,
    watch_pb2,
)
from tests.test_process import launch  # noqa: E402

TASKS = 50


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


async def _setup(address: str) -> tuple[str, list[str]]:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = plan_service_pb2_grpc.PlanServiceStub(ch)
        plan = (
            await stub.CreatePlan(
                plan_service_pb2.CreatePlanRequest(plan=plan_pb2.Plan(name="watched"))
            )
        ).plan
        tasks = await stub.BatchCreateTasks(
            plan_service_pb2.BatchCreateTasksRequest(
                plan_id=plan.id, tasks=[task_pb2.Task(title=f"task {i}") for i in range(TASKS)]
            )
        )
        return plan.id, [t.id for t in tasks.tasks]


async def _write(address: str, task_ids: list[str], rate: float, seconds: float) -> int:
    """UpdateTask at a steady pace; returns how many succeeded."""
    done = 0
    limit = asyncio.Semaphore(64)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = plan_service_pb2_grpc.PlanServiceStub(ch)

        async def one(i: int) -> None:
            nonlocal done
            async with limit:
                await stub.UpdateTask(
                    plan_service_pb2.UpdateTaskRequest(
                        task=task_pb2.Task(id=task_ids[i % TASKS], progress=i % 100),
                        update_mask={"paths": ["progress"]},
                    ),
                    timeout=30,
                )
                done += 1

        start = time.monotonic()
        pending = []
        n = int(rate * seconds)
        for i in range(n):
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            pending.append(asyncio.create_task(one(i)))
        await asyncio.gather(*pending)
    return done


def _watchers(address: str, plan_id: str, count: int, from_revision: int, until: int, q) -> None:
    """A client process: `count` watchers from `from_revision` until revision `until`.
    Reports (delays in s, revisions, messages, duplicates-or-gaps) through `q`."""

    async def run() -> tuple[list[float], int, int, int]:
        delays: list[float] = []
        revisions = messages = bad = 0
        async with grpc.aio.insecure_channel(address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            ready = asyncio.Event()
            started = 0

            async def follow() -> None:
                nonlocal revisions, messages, bad, started
                call = stub.WatchPlan(
                    watch_pb2.WatchPlanRequest(plan_id=plan_id, from_revision=from_revision)
                )
                await call.wait_for_connection()
                started += 1
                if started == count:
                    ready.set()
                last = from_revision
                async for msg in call:
                    now = time.time()
                    if msg.WhichOneof("event") != "changes":
                        continue
                    messages += 1
                    for r in msg.changes.revisions:
                        if r.revision != last + 1:
                            bad += 1
                        last = r.revision
                        revisions += 1
                        delays.append(now - r.commit_time.ToNanoseconds() / 1e9)
                    if last >= until:
                        call.cancel()
                        return

            tasks = [asyncio.create_task(follow()) for _ in range(count)]
            await ready.wait()
            q.put(("ready", None))
            await asyncio.gather(*tasks)
        return delays, revisions, messages, bad

    q.put(("done", asyncio.run(run())))


def _percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--watchers", type=int, default=50)
    ap.add_argument("--rate", type=float, default=200.0, help="writes per second")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--processes", type=int, default=2, help="client processes for the watchers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sp = launch(f"{tmp}/watch.db", "--max-watches", "1000")
        pid = sp.proc.pid
        try:
            plan_id, task_ids = asyncio.run(_setup(sp.address))
            writes = int(args.rate * args.seconds)

            # Baseline: the writes alone.
            cpu0 = _cpu_seconds(pid)
            t0 = time.monotonic()
            asyncio.run(_write(sp.address, task_ids, args.rate, args.seconds))
            base_elapsed = time.monotonic() - t0
            base_cpu = _cpu_seconds(pid) - cpu0
            revision = 2 + writes  # create + batch + the baseline's writes

            rss_before = _memory_kib(pid, "VmRSS")
            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            per = [args.watchers // args.processes] * args.processes
            for i in range(args.watchers % args.processes):
                per[i] += 1
            until = revision + writes
            procs = [
                ctx.Process(target=_watchers, args=(sp.address, plan_id, n, revision, until, q))
                for n in per
                if n
            ]
            for p in procs:
                p.start()
            for _ in procs:
                kind, _ = q.get(timeout=120)
                assert kind == "ready"
            cpu1 = _cpu_seconds(pid)
            t1 = time.monotonic()
            done = asyncio.run(_write(sp.address, task_ids, args.rate, args.seconds))
            results = [q.get(timeout=120)[1] for _ in procs]
            elapsed = time.monotonic() - t1
            watch_cpu = _cpu_seconds(pid) - cpu1
            for p in procs:
                p.join(timeout=30)
            rss_after = _memory_kib(pid, "VmRSS")
            rss_peak = _memory_kib(pid, "VmHWM")
        finally:
            sp.stop()
    delays = [d for r in results for d in r[0]]
    revisions = sum(r[1] for r in results)
    messages = sum(r[2] for r in results)
    bad = sum(r[3] for r in results)
    expected = args.watchers * writes
    extra_cpu = watch_cpu - base_cpu * elapsed / base_elapsed
    print(f"watchers {args.watchers}, writes {done} at {args.rate:g}/s for {args.seconds:g}s")
    print(
        f"delivered: {revisions:,} revisions ({revisions / elapsed:,.0f}/s) in {messages:,} "
        f"messages ({messages / elapsed:,.0f}/s); expected {expected:,}; out of order or "
        f"repeated: {bad}"
    )
    print(
        f"commit -> delivery: p50 {statistics.median(delays) * 1000:.1f} ms, "
        f"p99 {_percentile(delays, 99) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms "
        f"(target p99 < 100 ms)"
    )
    print(
        f"server CPU: {base_cpu / base_elapsed * 100:.0f} % of a core for the writes alone, "
        f"{watch_cpu / elapsed * 100:.0f} % with the watchers; "
        f"{extra_cpu / max(revisions, 1) * 1e6:.1f} µs per delivered revision, "
        f"{extra_cpu / max(messages, 1) * 1e6:.1f} µs per message"
    )
    print(
        f"server RSS: {rss_before / 1024:.1f} MiB before the watchers, "
        f"{rss_after / 1024:.1f} MiB after (peak {rss_peak / 1024:.1f} MiB)"
    )
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if revisions != expected or bad:
        sys.exit("not every watcher got every revision exactly once")


if __name__ == "__main__":
    main()
