"""Crash loop: SIGKILL a `plansmith-server` under concurrent writes, many times.

    .venv/bin/python bench/crash.py [--cycles 20] [--seed 1]

Each cycle: 8 writers send CreateTask / BatchCreateTasks (each with a request_id) until a
random number of acknowledgements, then the server is killed with SIGKILL mid-load and
restarted on the same file. After each restart: every acknowledged write is present, no
batch is half there, every unanswered request retried with its request_id is applied
exactly once. At the end `PRAGMA integrity_check` must say ok. Prints the totals.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from plansmith.v1 import plan_pb2, plan_service_pb2, plan_service_pb2_grpc  # noqa: E402
from tests.test_durability import Ledger, load_until_killed, verify_and_retry  # noqa: E402
from tests.test_process import launch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    ledger = Ledger()
    in_flight_at_kill = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/crash.db"
        sp = launch(db)

        async def create_plan() -> str:
            async with grpc.aio.insecure_channel(sp.address) as ch:
                stub = plan_service_pb2_grpc.PlanServiceStub(ch)
                req = plan_service_pb2.CreatePlanRequest(plan=plan_pb2.Plan(name="crash"))
                return (await stub.CreatePlan(req)).plan.id

        plan_id = asyncio.run(create_plan())
        for cycle in range(args.cycles):
            asyncio.run(
                load_until_killed(sp.address, sp.proc, plan_id, ledger, rng, rng.randint(10, 200))
            )
            code = sp.stop()
            assert code == -signal.SIGKILL, code
            in_flight_at_kill += len(ledger.unknown)
            sp = launch(db)
            asyncio.run(verify_and_retry(sp.address, plan_id, ledger))
            print(f"cycle {cycle + 1}: {len(ledger.acked)} requests applied so far", flush=True)
        assert sp.stop() == 0
        with sqlite3.connect(db) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    tasks = sum(len(ids) for ids in ledger.acked.values())
    print(
        f"\n{args.cycles} SIGKILLs in {time.monotonic() - start:.0f} s: {len(ledger.acked)} "
        f"requests ({tasks} tasks) all present exactly once; {in_flight_at_kill} were in "
        f"flight at a kill and were retried with their request_id; integrity_check: {integrity}"
    )
    assert integrity == "ok"


if __name__ == "__main__":
    main()
