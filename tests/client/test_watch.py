"""`watch_plan()`: resumes by itself from the last revision it saw (even across a server
killed with SIGKILL and started again), and surfaces OUT_OF_RANGE as a typed error."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from plansmith import AsyncPlansmithClient, PlansmithClient, RevisionNotRetainedError
from plansmith_server.app import prune_changes_once, start
from plansmith_server.config import Config
from tests.test_process import launch


def revisions(msg) -> list[int]:
    return [r.revision for r in msg.changes.revisions]


async def test_watch_resumes_after_the_server_is_killed_and_restarted(tmp_path: Path) -> None:
    db = str(tmp_path / "db.sqlite")
    server = launch(db)
    port = server.address.rsplit(":", 1)[1]
    try:
        async with AsyncPlansmithClient.connect(server.address) as client:
            plan = await client.create_plan("followed", project_id="p")
            received: list[int] = []
            got = {n: asyncio.Event() for n in (6, 21)}

            async def follow() -> None:
                async with client.watch_plan(plan.id, from_revision=0) as stream:
                    async for msg in stream:
                        received.extend(revisions(msg))
                        for n, ev in got.items():
                            if received and received[-1] >= n:
                                ev.set()
                        if received and received[-1] >= 21:
                            return

            watcher = asyncio.create_task(follow())
            for i in range(5):
                await client.create_task(f"before {i}", plan_id=plan.id)  # revisions 2..6
            await asyncio.wait_for(got[6].wait(), 10)
            server.stop(signal.SIGKILL)  # mid-watch: no goodbye to the watcher
            server = launch(db, "--listen", f"127.0.0.1:{port}")
            for i in range(15):
                await client.create_task(f"after {i}", plan_id=plan.id)  # revisions 7..21
            await asyncio.wait_for(got[21].wait(), 30)
            await asyncio.wait_for(watcher, 5)
            assert received == list(range(1, 22))  # every revision, exactly once
    finally:
        server.stop()


async def test_a_revision_no_longer_retained_is_a_typed_error(db_path: str) -> None:
    running = await start(
        Config(
            listen="127.0.0.1:0",
            db_path=db_path,
            change_retention_hours=0,
            change_retention_revisions=2,
        )
    )
    try:
        async with AsyncPlansmithClient.connect(running.address) as client:
            plan = await client.create_plan("short memory", project_id="p")
            for i in range(4):
                await client.create_task(f"t{i}", plan_id=plan.id)  # revisions 2..5
            await prune_changes_once(running)
            with pytest.raises(RevisionNotRetainedError) as err:
                async with client.watch_plan(plan.id, from_revision=1) as stream:
                    async for _ in stream:
                        pass
            assert err.value.oldest_retained_revision == 4
            async with client.watch_plan(plan.id, from_revision=3) as stream:
                async for msg in stream:
                    assert revisions(msg) == [4, 5]
                    break
    finally:
        await running.stop(grace=0.5)


async def test_the_sync_client_watches_too(server) -> None:
    def run() -> list[int]:
        with PlansmithClient.connect(server.address) as client:
            plan = client.create_plan("sync", project_id="p")
            client.create_task("a", plan_id=plan.id)
            with client.watch_plan(plan.id, from_revision=0) as stream:
                for msg in stream:
                    return revisions(msg)
        return []

    assert await asyncio.to_thread(run) == [1, 2]
