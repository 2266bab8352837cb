"""Fixtures for the PostgreSQL tests: servers (replicas) on one database of the run's
PostgreSQL, and PostgreSQL servers of their own for the tests that stop or kill one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from plansmith_server.app import Running, start
from plansmith_server.config import Config
from tests.support.postgres import PostgresProcess

StartReplica = Callable[..., AbstractAsyncContextManager[Running]]


@pytest.fixture
def replica() -> StartReplica:
    """`async with replica(dsn, **config) as running:` a server on `dsn`, stopped after."""

    @asynccontextmanager
    async def run(dsn: str, **config: object) -> AsyncIterator[Running]:
        cfg = Config(listen="127.0.0.1:0", db_path=dsn, grace_seconds=1.0, **config)  # type: ignore[arg-type]
        running = await start(cfg)
        try:
            yield running
        finally:
            await running.stop(grace=0.2)

    return run


@pytest.fixture
def own_postgres() -> Iterator[PostgresProcess]:
    """A PostgreSQL of the test's own (about a second to make), not yet started: for
    tests that stop, kill or restart it."""
    server = PostgresProcess()
    try:
        yield server
    finally:
        server.close()
