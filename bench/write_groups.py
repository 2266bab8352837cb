"""What a write group costs: CPU time per write of the domain's CreateTask and UpdateTask
on the SQLite store (a real file, synchronous=FULL), without gRPC, at several numbers of
concurrent writers. Writes queued together commit as one group (one BEGIN, one hop to the
writer thread, one COMMIT and fsync), so the CPU per write falls as groups grow; the
difference between 1 and 64 writers is what each group costs beyond its writes.

    .venv/bin/python bench/write_groups.py [--writes 2048] [--writers 1,4,16,64]

CPU time is the process's (all threads), which other load on the machine disturbs less
than the rates printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import replace

from plansmith_server import loops
from plansmith_server.domain.models import Plan, Task
from plansmith_server.domain.mutations import MutationRunner
from plansmith_server.domain.plans import Plans
from plansmith_server.domain.tasks import Tasks
from plansmith_server.storage.sqlite import SqliteStore

TYPICAL_TASK = Task(
    id="",
    plan_id="",
    title="Implement the checkout payment API",
    description="Expose POST /checkout/pay backed by the payment provider; idempotent by "
    "order id; emits order-paid events. " * 2,
    estimated_hours=12,
    optimistic_hours=8,
    pessimistic_hours=20,
    required_capabilities=("backend", "python"),
    acceptance_criteria=("p99 under 300 ms", "retries never charge twice"),
    metadata={"team": "payments", "epic": "checkout-v2"},
)


async def run(kind: str, writers: int, writes: int, directory: str) -> dict[str, float]:
    store = SqliteStore(f"{directory}/{kind}-{writers}.db")
    await store.open()
    try:
        plans = Plans(MutationRunner(store), max_tasks_per_plan=10**8)
        tasks = Tasks(plans)
        plan = await plans.create_plan(Plan(id="", project_id="", name="bench"))
        target = (await tasks.create_task(plan.id, TYPICAL_TASK)).task
        per_writer = writes // writers

        async def writer() -> None:
            for i in range(per_writer):
                if kind == "CreateTask":
                    await tasks.create_task(plan.id, TYPICAL_TASK)
                else:
                    await tasks.update_task(replace(target, progress=i % 100), ["progress"])

        groups, cpu, wall = store.commit_groups, time.process_time(), time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        done = per_writer * writers
        return {
            "rate": done / (time.perf_counter() - wall),
            "cpu_us": (time.process_time() - cpu) / done * 1e6,
            "per_group": done / max(store.commit_groups - groups, 1),
        }
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--writes", type=int, default=2048)
    ap.add_argument("--writers", default="1,4,16,64")
    args = ap.parse_args()
    levels = [int(x) for x in args.writers.split(",")]
    print("| write | writers | writes/s | writes per group | CPU µs/write |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("CreateTask", "UpdateTask"):
            for n in levels:
                r = loops.run(run(kind, n, args.writes, tmp), loops.from_env())
                cells = f"{r['rate']:.0f} | {r['per_group']:.1f} | {r['cpu_us']:.0f}"
                print(f"| {kind} | {n} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
