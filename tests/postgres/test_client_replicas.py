"""The Python client over two replica processes on one PostgreSQL database: calls are
spread over both (round_robin), and when one is SIGKILLed under load the client carries
on through the other, its breaker closed; no acknowledged write is lost or doubled."""

from __future__ import annotations

import asyncio
import json
import signal

import psycopg

from plansmith import AsyncPlansmithClient, BreakerState
from tests.conftest import wait_for
from tests.test_process import launch


def _served(lines: list[str]) -> int:
    """CreatePlan calls in a replica's access log."""
    count = 0
    for line in lines:
        if line.startswith("{") and "CreatePlan" in line:
            count += json.loads(line).get("rpc_method", "").endswith("/CreatePlan")
    return count


async def test_one_replica_killed_under_load_costs_retries_only(pg_dsn):
    # Statements may wait for the row lock below as long as the calls do.
    args = ("--log-format", "json", "--access-log", "all", "--pg-statement-timeout-ms", "30000")
    a = launch(pg_dsn, *args)
    try:
        b = launch(pg_dsn, *args)
    except BaseException:
        a.stop()
        raise
    try:
        client = AsyncPlansmithClient.connect([a.address, b.address], timeout=20)
        try:
            acknowledged: list[str] = []

            async def create(i: int) -> None:
                plan = await client.create_plan(f"p{i}", request_id=f"load-{i}")
                acknowledged.append(plan.id)

            async def both_served() -> bool:
                return _served(a.lines) > 0 and _served(b.lines) > 0

            # One by one until both took calls (a replica is used once connected; its
            # log is read as it comes), 20 at least, at most 200.
            n = 0
            while n < 200 and (n < 20 or not await both_served()):
                await create(n)
                n += 1
            await wait_for(both_served, within=10)

            # Sixteen updates held up in both replicas by a row lock taken elsewhere:
            # about eight are in flight on A when it is killed, and fail together.
            target = acknowledged[0]
            with psycopg.connect(pg_dsn) as holder:
                holder.execute("SELECT 1 FROM plans WHERE id = %s FOR UPDATE", (target,))
                updates = [
                    asyncio.ensure_future(
                        client.update_plan(target, description=f"u{i}", request_id=f"u-{i}")
                    )
                    for i in range(16)
                ]

                async def held_up() -> bool:
                    with psycopg.connect(pg_dsn) as probe:
                        row = probe.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        ).fetchone()
                    return row is not None and row[0] >= 12

                await wait_for(held_up, within=15)
                a.proc.send_signal(signal.SIGKILL)
                assert await asyncio.to_thread(a.proc.wait, 5) == -signal.SIGKILL
                await asyncio.sleep(0.5)  # A's calls fail and are retried on B
                holder.rollback()
                done = await asyncio.gather(*updates)
            assert {p.description for p in done} <= {f"u{i}" for i in range(16)}
            assert client.breaker is not None and client.breaker.state is BreakerState.CLOSED

            for i in range(n, n + 20):
                await create(i)
            listed = [p async for p in client.iter_plans()]
            assert sorted(p.id for p in listed) == sorted(acknowledged)
            assert len(acknowledged) == n + 20
            assert (await client.get_plan(target)).revision == 1 + 16  # each update once
        finally:
            await client.close()
    finally:
        a.stop()
        b.stop()
