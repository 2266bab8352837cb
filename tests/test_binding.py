"""A second server on a taken port: two real `plansmith-server` processes."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc
from plansmith.v1 import plan_service_pb2 as pb
from tests.test_process import BIN, ServerProcess, launch


def start_second(db: str, address: str, *args: str) -> ServerProcess:
    """Starts a server on `address` without waiting for it to serve (it may not)."""
    cmd = [str(BIN / "plansmith-server"), "--listen", address, "--db", db, *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    return ServerProcess(proc, address, [])


def wait_for_line(sp: ServerProcess, text: str, within: float = 30) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in list(sp.lines):
            if text in line:
                return line
        if sp.proc.poll() is not None and not sp._reader.is_alive():
            break
        time.sleep(0.02)
    raise AssertionError(f"no line with {text!r}:\n" + "\n".join(sp.lines))


def create_plan(address: str) -> str:
    async def scenario() -> str:
        async with grpc.aio.insecure_channel(address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            created = await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))
            return created.plan.id

    return asyncio.run(scenario())


def get_plan_codes(address: str, plan_id: str, calls: int = 20) -> list[grpc.StatusCode]:
    """GetPlan `calls` times, each on a new connection (the kernel picks the listener per
    connection, not per call)."""

    async def scenario() -> list[grpc.StatusCode]:
        codes = []
        for _ in range(calls):
            async with grpc.aio.insecure_channel(address) as ch:
                stub = plan_service_pb2_grpc.PlanServiceStub(ch)
                try:
                    await stub.GetPlan(pb.GetPlanRequest(plan_id=plan_id), timeout=10)
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as e:
                    codes.append(e.code())
        return codes

    return asyncio.run(scenario())


def test_a_second_server_on_a_taken_port_exits_non_zero_and_takes_nothing(tmp_path: Path):
    first = launch(str(tmp_path / "first.db"))
    second: ServerProcess | None = None
    try:
        plan_id = create_plan(first.address)
        second = start_second(str(tmp_path / "second.db"), first.address, "--grace-seconds", "1")
        try:
            code = second.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        second.stop()
        assert code == 1, "\n".join(second.lines)
        port = first.address.rsplit(":", 1)[1]
        message = "\n".join(second.lines)
        assert f"port {port} is in use" in message
        assert "--listen" in message and "PLANSMITH_LISTEN" in message
        assert "serving on" not in message and "Traceback" not in message
        assert get_plan_codes(first.address, plan_id) == [grpc.StatusCode.OK] * 20
    finally:
        if second is not None:
            second.stop()
        assert first.stop() == 0


def test_a_server_restarted_while_the_old_one_runs_waits_for_the_port(tmp_path: Path):
    db = str(tmp_path / "db.sqlite")
    old = launch(db)
    new: ServerProcess | None = None
    try:
        plan_id = create_plan(old.address)
        new = start_second(db, old.address, "--grace-seconds", "30")
        wait_for_line(new, "is in use; trying again")
        # Meanwhile every connection still reaches the old server only.
        assert get_plan_codes(old.address, plan_id) == [grpc.StatusCode.OK] * 20
        assert not any("serving on" in line for line in new.lines)
        assert old.stop() == 0
        wait_for_line(new, "serving on")
        assert new.proc.poll() is None
        assert get_plan_codes(new.address, plan_id, calls=3) == [grpc.StatusCode.OK] * 3
    finally:
        if new is not None:
            assert new.stop() == 0
        old.stop()


async def test_an_address_that_cannot_be_had_fails_at_once_without_waiting(tmp_path: Path):
    """Only a port in use is waited for: an address of no local interface (TEST-NET-1)
    fails at once, naming the address and the reason."""
    from plansmith_server.app import start
    from plansmith_server.config import Config

    began = time.monotonic()
    with pytest.raises(OSError, match=r"cannot listen on 192\.0\.2\.1:0: Cannot assign"):
        await start(
            Config(listen="192.0.2.1:0", db_path=str(tmp_path / "db.sqlite"), grace_seconds=30)
        )
    assert time.monotonic() - began < 10


async def test_localhost_counts_as_in_use_when_either_loopback_is(tmp_path: Path):
    """`localhost` is 127.0.0.1 and ::1 (where the machine has it): a port held on one of
    them is in use, though gRPC alone would bind the other and serve beside its holder."""
    import socket

    from plansmith_server.app import start
    from plansmith_server.config import Config

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port} is in use"):
            await start(
                Config(
                    listen=f"localhost:{port}",
                    db_path=str(tmp_path / "db.sqlite"),
                    grace_seconds=0.3,
                )
            )
