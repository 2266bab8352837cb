"""Fixtures of the client tests: a real server with a fault-injecting interceptor, a fake
clock, and one suite for both clients (sync calls run in a thread, so the server keeps
serving on the test's loop)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from plansmith import AsyncPlansmithClient, PlansmithClient
from plansmith.retry import Clock
from plansmith_server.app import Running, start
from plansmith_server.config import Config


@dataclasses.dataclass
class Fault:
    kind: str  # "fail" or "lose"
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    retry_delay: float | None = None


class Faults(grpc.aio.ServerInterceptor):
    """Server-side fault injection and call accounting, per method short name.

    `fail(m, n)`: the next n calls of m fail before the handler runs. `lose_response(m, n)`:
    the next n calls run the handler (the write commits) and then fail, as if the response
    were lost. `hold(m)`: calls of m wait until the returned event is set.
    """

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.requests: dict[str, list[Any]] = collections.defaultdict(list)
        self.metadata: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
        self.time_remaining: dict[str, list[float | None]] = collections.defaultdict(list)
        self.started: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)
        self._plan: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
        self._gates: dict[str, asyncio.Event] = {}

    def fail(
        self,
        method: str,
        times: int = 1,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        retry_delay: float | None = None,
    ) -> None:
        self._plan[method].extend(Fault("fail", code, retry_delay) for _ in range(times))

    def lose_response(self, method: str, times: int = 1) -> None:
        self._plan[method].extend(Fault("lose") for _ in range(times))

    def clear(self) -> None:
        self._plan.clear()

    def hold(self, method: str) -> asyncio.Event:
        gate = self._gates[method] = asyncio.Event()
        return gate

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext, fault: Fault) -> None:
        details = []
        if fault.retry_delay is not None:
            d = any_pb2.Any()
            d.Pack(
                error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(
                        seconds=int(fault.retry_delay),
                        nanos=int((fault.retry_delay % 1) * 1e9),
                    )
                )
            )
            details.append(d)
        status = rpc_status.to_status(
            status_pb2.Status(
                code=fault.code.value[0], message=f"injected {fault.code.name}", details=details
            )
        )
        await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        name = handler_call_details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary

        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self.calls[name] += 1
            self.requests[name].append(request)
            self.metadata[name].append(dict(context.invocation_metadata() or ()))
            self.time_remaining[name].append(context.time_remaining())
            self.started[name].set()
            gate = self._gates.get(name)
            if gate is not None:
                await gate.wait()
            plan = self._plan.get(name)
            fault = plan.popleft() if plan else None
            if fault is not None and fault.kind == "fail":
                await self._abort(context, fault)
            response = await inner(request, context)
            if fault is not None and fault.kind == "lose":
                await self._abort(context, Fault("fail"))
            return response

        return handler._replace(unary_unary=behavior)  # type: ignore[attr-defined]


class FakeClock(Clock):
    """Time that passes only when the client sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
async def fault_server(tmp_path: Path, faults: Faults) -> AsyncIterator[Running]:
    running = await start(
        Config(listen="127.0.0.1:0", db_path=str(tmp_path / "client.db"), grace_seconds=1.0),
        extra_interceptors=[faults],
    )
    try:
        yield running
    finally:
        await running.stop(grace=0.2)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Client:
    """One face for both clients: `await c.method(...)` runs the sync client's method in
    a thread; `await c.collect("iter_tasks", ...)` drains an iterator of either."""

    def __init__(self, client: AsyncPlansmithClient | PlansmithClient) -> None:
        self.client = client
        self.is_async = isinstance(client, AsyncPlansmithClient)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.is_async:
                return await attr(*args, **kwargs)
            return await asyncio.to_thread(attr, *args, **kwargs)

        return call

    async def collect(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        if self.is_async:
            return [x async for x in getattr(self.client, name)(*args, **kwargs)]
        return await asyncio.to_thread(lambda: list(getattr(self.client, name)(*args, **kwargs)))


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def connect(
    kind: str, fault_server: Running, clock: FakeClock
) -> AsyncIterator[Callable[..., Client]]:
    """`connect(**connect_kwargs)`: a client of the parametrized kind on the fault server,
    with the fake clock and no jitter unless told otherwise."""
    opened: list[Any] = []

    def make(**kwargs: Any) -> Client:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("jitter", lambda: 1.0)
        kwargs.setdefault("breaker", None)
        cls = AsyncPlansmithClient if kind == "async" else PlansmithClient
        client = cls.connect(fault_server.address, **kwargs)
        opened.append(client)
        return Client(client)

    yield make
    for c in opened:
        if isinstance(c, AsyncPlansmithClient):
            await c.close()
        else:
            c.close()


@pytest.fixture
def client(connect: Callable[..., Client]) -> Client:
    return connect()
