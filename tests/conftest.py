"""Shared fixtures: a real server (in-process grpc.aio on port 0) on a real SQLite file."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

# Before grpc is imported (also set by `make test`): pexpect forks this process for its
# pty, and grpc's fork support would restart its poller in the child, where the fds
# closed before exec make it die ("epoll_wait error: Bad file descriptor").
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import grpc
import pytest
from grpc_status import rpc_status

from plansmith.v1 import plan_service_pb2_grpc
from plansmith_server import loops
from plansmith_server.app import Running, start
from plansmith_server.config import Config
from tests.support.postgres import PostgresProcess


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict:
    """Tests run on the loop `plansmith-server` picks by default (uvloop where it is
    installed), so they exercise what production runs; `PLANSMITH_EVENT_LOOP=asyncio`
    runs them on asyncio's own loop (CI runs the API tests both ways)."""
    name, make = loops.factory(loops.from_env())
    return {name: make or asyncio.new_event_loop}


def _has_async_fixture(item: pytest.Item) -> bool:
    """Whether a fixture of the test is a coroutine or async generator (pytest-asyncio
    runs it on the loop even for a test that is not itself async)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        inspect.iscoroutinefunction(d.func) or inspect.isasyncgenfunction(d.func)
        for defs in info.name2fixturedefs.values()
        for d in defs
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by the marks added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks what the two variables can change, so that a rerun under another value can
    select just that (`make test`): `uses_test_db`, a test whose fixtures include
    `db_path` (the only reader of PLANSMITH_TEST_DB); `uses_test_loop`, an asyncio test
    (run on the loop PLANSMITH_EVENT_LOOP picks). Any other test runs the same either way."""
    on_postgresql = os.environ.get("PLANSMITH_TEST_DB", "sqlite") == "postgresql"
    skip = pytest.mark.skip(reason="SQLite's own mechanics (PLANSMITH_TEST_DB=postgresql)")
    for item in items:
        if "db_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.uses_test_db)
        if item.get_closest_marker("asyncio") or _has_async_fixture(item):
            item.add_marker(pytest.mark.uses_test_loop)
        if on_postgresql and item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresProcess]:
    """One real PostgreSQL per test process (each pytest-xdist worker has its own),
    started on first use (about a second) and removed at the end; see
    tests/support/postgres.py."""
    server = PostgresProcess()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_dsn(postgres: PostgresProcess) -> str:
    """A new empty database on the run's PostgreSQL."""
    return postgres.create_database()


@pytest.fixture
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database the `server` fixture runs on: an SQLite file, or with
    `PLANSMITH_TEST_DB=postgresql` a new database on the run's PostgreSQL."""
    if os.environ.get("PLANSMITH_TEST_DB", "sqlite") == "postgresql":
        return str(request.getfixturevalue("pg_dsn"))
    return str(tmp_path / "plansmith.db")


@pytest.fixture
async def server(db_path: str) -> AsyncIterator[Running]:
    running = await start(Config(listen="127.0.0.1:0", db_path=db_path, grace_seconds=2.0))
    try:
        yield running
    finally:
        await running.stop(grace=0.5)


@pytest.fixture
async def channel(server: Running) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture
def plans(channel: grpc.aio.Channel) -> plan_service_pb2_grpc.PlanServiceStub:
    return plan_service_pb2_grpc.PlanServiceStub(channel)


def details_of(err: grpc.aio.AioRpcError) -> dict[str, object]:
    """Unpacks the google.rpc details of an error into {type name: message}."""
    from google.rpc import error_details_pb2

    status = rpc_status.from_call(err)
    out: dict[str, object] = {}
    if status is None:
        return out
    for any_msg in status.details:
        for cls in (
            error_details_pb2.BadRequest,
            error_details_pb2.ErrorInfo,
            error_details_pb2.ResourceInfo,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.RetryInfo,
        ):
            if any_msg.Is(cls.DESCRIPTOR):
                msg = cls()
                any_msg.Unpack(msg)
                out[cls.__name__] = msg
    return out


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], within: float = 10.0, interval: float = 0.02
) -> None:
    """Waits until `predicate()` is true, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        if await predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
