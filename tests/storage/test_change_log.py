"""The change log as WatchPlan uses it: commit listeners told exactly what committed, and
retention over a release-1 database (whose log WatchPlan replays)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc

from plansmith.v1 import plan_service_pb2, plan_service_pb2_grpc, watch_pb2
from plansmith_server.app import start
from plansmith_server.config import Config
from plansmith_server.domain.models import ChangeRecord
from plansmith_server.domain.retention import prune_change_log
from plansmith_server.storage.sqlite import SqliteStore

FIXTURE = Path(__file__).parents[1] / "data" / "release1"


async def test_commit_listeners_get_the_revisions_of_the_writes_that_committed(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "db.sqlite"))
    await store.open()
    told: list[list[tuple[str, int]]] = []
    unsubscribe = store.subscribe_commits(told.append)
    try:

        def append(plan_id: str, revision: int, fail: bool = False):
            def body(tx):
                tx.append_changes(plan_id, revision, [ChangeRecord("X", "plan", plan_id, {})], 1)
                if fail:
                    raise ValueError("rolled back")

            return body

        # One group: two writes commit, the one between them rolls back alone.
        results = await asyncio.gather(
            store.write(append("a", 1)),
            store.write(append("b", 1, fail=True)),
            store.write(append("a", 2)),
            return_exceptions=True,
        )
        assert isinstance(results[1], ValueError)
        assert told == [[("a", 1), ("a", 2)]]
        await store.write(lambda tx: tx.get_plan("a"))  # appends nothing: nobody is told
        await store.write(append("c", 7), bulk=True)  # on the writer thread too
        assert told == [[("a", 1), ("a", 2)], [("c", 7)]]
        unsubscribe()
        await store.write(append("a", 3))
        assert len(told) == 2
    finally:
        await store.close()


async def test_a_release1_log_is_replayed_by_watch_and_pruned_in_batches(tmp_path: Path) -> None:
    db = tmp_path / "plansmith.db"
    shutil.copyfile(FIXTURE / "plansmith.db", db)
    running = await start(
        Config(listen="127.0.0.1:0", db_path=str(db), idempotency_retention_hours=1e6)
    )
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            plans = (await stub.ListPlans(plan_service_pb2.ListPlansRequest())).plans
            assert plans
            for plan in plans:
                call = stub.WatchPlan(watch_pb2.WatchPlanRequest(plan_id=plan.id, from_revision=0))
                msg = await asyncio.wait_for(call.read(), 10)
                call.cancel()
                revisions = msg.changes.revisions
                assert [r.revision for r in revisions] == list(range(1, plan.revision + 1))
                for r in revisions:  # every release-1 entry decodes to its plan or task
                    for c in r.changes:
                        assert c.WhichOneof("entity") in ("plan", "task"), c
            # Keep only each plan's last revision, a few rows per transaction.
            groups = running.store.commit_groups
            pruned = await prune_change_log(
                running.store, older_than=2**62, keep_revisions=1, batch_rows=4
            )
            assert pruned > 0
            assert running.store.commit_groups - groups > pruned // 8
            for plan in plans:
                bounds = await running.store.read(lambda tx, p=plan.id: tx.change_log_bounds(p))
                assert bounds == (plan.revision, plan.revision)
    finally:
        await running.stop(grace=0.5)
