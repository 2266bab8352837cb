"""A cancelled StreamGeneratePlan with `persist` stores nothing, whichever event it was
cancelled after: the caller's presence is checked in the transaction that stores the plan.

To hit the moment the bug lived in, each stream is cancelled while its plan waits in the
storing transaction (another connection holds SQLite's write lock meanwhile): a check made
before the transaction would have passed, and the plan would be stored after the lock is
released."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import date

import grpc
import pytest

from plansmith.v1 import plan_service_pb2 as ps
from plansmith.v1 import plan_service_pb2_grpc, planning_service_pb2_grpc
from plansmith.v1 import planning_service_pb2 as pb
from plansmith_server import planning
from plansmith_server.app import start
from plansmith_server.config import Config
from plansmith_server.domain.planner import EmbeddedPlanner
from tests.api.test_generation import brief
from tests.conftest import wait_for
from tests.planning.scenarios import WEBSITE

METHOD = "/plansmith.v1.PlanningService/StreamGeneratePlan"


class TellingPlanner(EmbeddedPlanner):
    """The embedded planner, telling when it hands over the finished plan."""

    def __init__(self) -> None:
        super().__init__()
        self.finished = asyncio.Event()

    async def generate(self, request, *, today: date) -> AsyncIterator[planning.PlanEvent]:
        async for event in super().generate(request, today=today):
            if isinstance(event, planning.CompletedEvent):
                self.finished.set()
            yield event


@pytest.mark.sqlite_only
async def test_a_stream_cancelled_at_any_event_stores_nothing(db_path):
    planner = TellingPlanner()
    running = await start(Config(listen="127.0.0.1:0", db_path=db_path), planner=planner)
    store = running.store

    def ended() -> int:
        return sum(
            m.total_calls for m in running.telemetry.stats.summary(3600) if m.method == METHOD
        )

    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = planning_service_pb2_grpc.PlanningServiceStub(ch)
            plans = plan_service_pb2_grpc.PlanServiceStub(ch)
            b = brief(WEBSITE)
            count = len(
                [e async for e in stub.StreamGeneratePlan(pb.StreamGeneratePlanRequest(brief=b))]
            )
            for k in range(count - 1):  # every event but the last, `completed`
                planner.finished.clear()
                blocker = sqlite3.connect(db_path, isolation_level=None)
                blocker.execute("BEGIN IMMEDIATE")
                try:
                    call = stub.StreamGeneratePlan(
                        pb.StreamGeneratePlanRequest(brief=b, persist=True, request_id=f"c-{k}")
                    )
                    for _ in range(k + 1):
                        await call.read()
                    await asyncio.wait_for(planner.finished.wait(), 10)

                    async def taken_by_the_writer() -> bool:
                        return not store._pending  # the plan's write is in a running group

                    await wait_for(taken_by_the_writer)
                    call.cancel()

                    async def call_ended(k: int = k) -> bool:
                        return ended() == k + 2

                    await wait_for(call_ended)
                finally:
                    blocker.execute("ROLLBACK")
                    blocker.close()
                await store.write(lambda tx: None)  # queued after the plan's: it is done
                listed = await plans.ListPlans(ps.ListPlansRequest())
                assert listed.total_size == 0, f"cancelled after event {k + 1}: plan stored"
            # The request ids were not used up: the same request, run to its end, stores.
            done = [
                e
                async for e in stub.StreamGeneratePlan(
                    pb.StreamGeneratePlanRequest(brief=b, persist=True, request_id="c-0")
                )
            ]
            assert done[-1].completed.plan.id
            assert (await plans.ListPlans(ps.ListPlansRequest())).total_size == 1
    finally:
        await running.stop(grace=0.5)
