"""A create retried through cut connections lands, once: retries wait for the channel
to reconnect (within the call's deadline) instead of failing at once while gRPC's
reconnect backoff runs. The cuts are real: a TCP proxy on 127.0.0.1 closes its first
accepted connections, as a restarting server does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from plansmith import (
    AsyncPlansmithClient,
    DeadlineExceededError,
    InterceptorChain,
    PlansmithClient,
    RetryPolicy,
)


class DroppingProxy:
    """Forwards TCP connections to `upstream`, closing the first `drop` it accepts."""

    def __init__(self, upstream: str, drop: int) -> None:
        self.host, port = upstream.rsplit(":", 1)
        self.port = int(port)
        self.drop = drop
        self.accepted = 0
        self.server: asyncio.base_events.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.accepted <= self.drop:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


@contextlib.asynccontextmanager
async def proxies(upstream: str, count: int, drop: int) -> AsyncIterator[list[DroppingProxy]]:
    started = [DroppingProxy(upstream, drop) for _ in range(count)]
    for p in started:
        await p.start()
    try:
        yield started
    finally:
        for p in started:
            await p.stop()


async def _count_tasks(address: str, plan_id: str) -> int:
    async with AsyncPlansmithClient.connect(address, breaker=None) as c:
        return (await c.get_tasks(plan_id, per_page=1)).total_size


async def test_async_creates_through_two_dropped_connections_all_land_once(fault_server):
    async with AsyncPlansmithClient.connect(fault_server.address, breaker=None) as c:
        plan = await c.create_plan("Through a flaky proxy")

    async def one(proxy: DroppingProxy, i: int) -> str:
        # A fresh client per create: its first connection and the next are cut.
        async with AsyncPlansmithClient.connect(proxy.address, timeout=15) as client:
            task = await client.create_task(f"task {i}", plan_id=plan.id)
            return task.id

    async with proxies(fault_server.address, 20, drop=2) as ps:
        results = await asyncio.gather(
            *(one(p, i) for i, p in enumerate(ps)), return_exceptions=True
        )
        accepted = [p.accepted for p in ps]
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures[:3]
    assert all(n >= 3 for n in accepted), accepted  # two cut, then the one that worked
    assert len(set(results)) == 20
    assert await _count_tasks(fault_server.address, plan.id) == 20


async def test_sync_creates_through_two_dropped_connections_all_land_once(fault_server):
    async with AsyncPlansmithClient.connect(fault_server.address, breaker=None) as c:
        plan = await c.create_plan("Through a flaky proxy, sync")

    def one(address: str, i: int) -> str:
        with PlansmithClient.connect(address, timeout=15) as client:
            return client.create_task(f"task {i}", plan_id=plan.id).id

    async with proxies(fault_server.address, 5, drop=2) as ps:
        results = await asyncio.gather(
            *(asyncio.to_thread(one, p.address, i) for i, p in enumerate(ps)),
            return_exceptions=True,
        )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures[:3]
    assert await _count_tasks(fault_server.address, plan.id) == 5


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_server_that_stays_away_costs_the_deadline_with_the_reason(kind):
    # Every connection is cut: the call waits for the channel until its deadline, then
    # says what it was waiting for.
    async with proxies("127.0.0.1:9", 1, drop=10**6) as (proxy,):

        def call() -> None:
            with PlansmithClient.connect(proxy.address, timeout=1.5, breaker=None) as client:
                client.get_plan("pln_x")

        start = time.monotonic()
        with pytest.raises(DeadlineExceededError) as info:
            if kind == "async":
                async with AsyncPlansmithClient.connect(
                    proxy.address, timeout=1.5, breaker=None
                ) as client:
                    await client.get_plan("pln_x")
            else:
                await asyncio.to_thread(call)
        elapsed = time.monotonic() - start
    assert "waiting for the server" in str(info.value)
    assert info.value.last_error is not None
    assert info.value.last_error.status_code.name == "UNAVAILABLE"
    assert 1.0 < elapsed < 5, elapsed


def test_the_reconnect_backoff_fits_the_retry_policies():
    # gRPC's own default waits 1 s, then 1.6 s ... up to 120 s between connects: longer
    # than the retries' first waits. The chain starts it at the smallest first delay and
    # caps it at the largest delay of its policies; the caller's own options win.
    chain = InterceptorChain("127.0.0.1:1")
    assert dict(chain.channel_options()) == {
        "grpc.initial_reconnect_backoff_ms": 500,
        "grpc.max_reconnect_backoff_ms": 4000,
    }
    mine = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.enable_retries", 0)]
    assert dict(chain.channel_options(mine)) == {
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.enable_retries": 0,
        "grpc.max_reconnect_backoff_ms": 4000,
    }
    fast = InterceptorChain("127.0.0.1:1", retry=RetryPolicy(initial_delay=0.2, max_delay=1.0))
    assert dict(fast.channel_options()) == {
        "grpc.initial_reconnect_backoff_ms": 200,
        "grpc.max_reconnect_backoff_ms": 1000,
    }
    assert InterceptorChain("127.0.0.1:1", retry=None).channel_options() == []
