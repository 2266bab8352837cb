"""Crash safety: a `plansmith-server` killed with SIGKILL under concurrent writes loses
no acknowledged write, never keeps half a batch, never duplicates a retried request, and
leaves an intact database. A few cycles here; `bench/crash.py` runs many."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
from dataclasses import dataclass, field

import grpc

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from tests.test_process import launch

BATCH = 5


@dataclass
class Ledger:
    """What the clients were told, and what they do not know."""

    acked: dict[str, list[str]] = field(default_factory=dict)  # request_id -> task ids
    unknown: dict[str, pb.CreateTaskRequest | pb.BatchCreateTasksRequest] = field(
        default_factory=dict
    )
    counter: int = 0


def new_request(ledger: Ledger, plan_id: str, rng: random.Random):
    ledger.counter += 1
    rid = f"req-{ledger.counter}"
    if rng.random() < 0.5:
        return rid, pb.CreateTaskRequest(
            plan_id=plan_id, task=task_pb2.Task(title=rid, description="x" * 100), request_id=rid
        )
    return rid, pb.BatchCreateTasksRequest(
        plan_id=plan_id,
        tasks=[task_pb2.Task(title=f"{rid}/{k}") for k in range(BATCH)],
        request_id=rid,
    )


async def send(stub, req):
    if isinstance(req, pb.CreateTaskRequest):
        return [(await stub.CreateTask(req, timeout=10)).task.id]
    return [t.id for t in (await stub.BatchCreateTasks(req, timeout=10)).tasks]


async def load_until_killed(address, proc, plan_id, ledger, rng, kill_after):
    """Writers hammer the server; after `kill_after` more acknowledgements it is SIGKILLed
    mid-load. Every request without an answer goes to `ledger.unknown`."""
    target = len(ledger.acked) + kill_after
    killed = asyncio.Event()
    async with grpc.aio.insecure_channel(address) as ch:
        stub = plan_service_pb2_grpc.PlanServiceStub(ch)

        async def writer() -> None:
            while not killed.is_set():
                rid, req = new_request(ledger, plan_id, rng)
                ledger.unknown[rid] = req
                try:
                    ids = await send(stub, req)
                except grpc.aio.AioRpcError as e:
                    assert e.code() in (
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.CANCELLED,
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.UNKNOWN,
                    ), e
                    return
                del ledger.unknown[rid]
                ledger.acked[rid] = ids
                if len(ledger.acked) >= target and not killed.is_set():
                    killed.set()
                    proc.send_signal(signal.SIGKILL)

        await asyncio.gather(*(writer() for _ in range(8)))


async def verify_and_retry(address, plan_id, ledger):
    async with grpc.aio.insecure_channel(address) as ch:
        stub = plan_service_pb2_grpc.PlanServiceStub(ch)
        # Every acknowledged write is there.
        for rid, ids in ledger.acked.items():
            for task_id in ids:
                got = (await stub.GetTask(pb.GetTaskRequest(task_id=task_id))).task
                assert got.title.split("/")[0] == rid
        # Writes whose answer was lost: retried with the same request_id, never twice.
        for rid, req in list(ledger.unknown.items()):
            ledger.acked[rid] = await send(stub, req)
            assert await send(stub, req) == ledger.acked[rid]
            del ledger.unknown[rid]
        tasks = []
        token = ""
        while True:
            r = await stub.ListTasks(
                pb.ListTasksRequest(plan_id=plan_id, page_size=1000, page_token=token)
            )
            tasks += r.tasks
            token = r.next_page_token
            if not token:
                break
        titles = [t.title for t in tasks]
        assert len(titles) == len(set(titles)), "a retried write was applied twice"
        by_request: dict[str, int] = {}
        for title in titles:
            by_request[title.split("/")[0]] = by_request.get(title.split("/")[0], 0) + 1
        for rid, n in by_request.items():
            assert n == len(ledger.acked[rid]), f"{rid}: {n} tasks stored (half a batch?)"
        assert set(by_request) == set(ledger.acked)


def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path):
    db = str(tmp_path / "crash.db")
    rng = random.Random(11)
    ledger = Ledger()
    sp = launch(db)

    async def create_plan() -> str:
        async with grpc.aio.insecure_channel(sp.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            return (
                await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="crash")))
            ).plan.id

    plan_id = asyncio.run(create_plan())
    for _cycle in range(3):
        asyncio.run(
            load_until_killed(sp.address, sp.proc, plan_id, ledger, rng, rng.randint(10, 60))
        )
        assert sp.stop() == -signal.SIGKILL
        sp = launch(db)
        asyncio.run(verify_and_retry(sp.address, plan_id, ledger))
    assert sp.stop() == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(ledger.acked) > 30
