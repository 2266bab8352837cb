"""The access log: by default a line for each call that did not end OK (a line per
successful call costs a busy server a sizeable share of its rate); `--access-log all`
logs every call."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import start
from plansmith_server.config import Config, load


async def _calls(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = plan_service_pb2_grpc.PlanServiceStub(ch)
        plan = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
        await stub.GetPlan(pb.GetPlanRequest(plan_id=plan.id))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetPlan(pb.GetPlanRequest(plan_id="pln_missing"))


@pytest.fixture
async def logged(db_path: str, caplog) -> AsyncIterator:
    async def run(**config: str) -> list[tuple[str, str]]:
        running = await start(Config(listen="127.0.0.1:0", db_path=db_path, **config))
        try:
            with caplog.at_level(logging.INFO, logger="plansmith.access"):
                caplog.clear()
                await _calls(running.address)
        finally:
            await running.stop(grace=0.5)
        return [
            (r.rpc_method.rpartition("/")[2], r.status_code)
            for r in caplog.records
            if r.name == "plansmith.access"
        ]

    yield run


async def test_by_default_only_calls_that_did_not_end_ok_are_logged(logged):
    assert Config().access_log == "errors"
    assert await logged() == [("GetPlan", "NOT_FOUND")]


async def test_access_log_all_logs_every_call(logged):
    assert await logged(access_log="all") == [
        ("CreatePlan", "OK"),
        ("GetPlan", "OK"),
        ("GetPlan", "NOT_FOUND"),
    ]


def test_the_flag_and_its_environment_variable():
    assert load(["--access-log", "ALL"], {}).access_log == "all"
    assert load([], {"PLANSMITH_ACCESS_LOG": "all"}).access_log == "all"
    assert load([], {}).access_log == "errors"
