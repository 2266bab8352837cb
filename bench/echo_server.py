"""The ceiling: a bare grpc.aio server with one trivial unary RPC and one trivial server
stream, whose messages are a typical Task. Plansmith's rates are read against it.

    .venv/bin/python bench/echo_server.py        # prints `ADDRESS host:port`, then serves

`/bench.Echo/Unary` parses the Task and returns it; `/bench.Echo/Stream` returns it 10
times; `/bench.Echo/Count` returns how many unary calls succeeded (as a Task whose
`progress` is the count), which is how the load generator checks that every call it
counted really ended with grpc-status 0.

It runs on the event loop `PLANSMITH_EVENT_LOOP` names (default `auto`: uvloop where
installed), as the Plansmith server beside it does.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import grpc

from plansmith.v1 import task_pb2
from plansmith_server import loops

Task = task_pb2.Task


async def main() -> None:
    served = 0

    async def unary(request: Task, context: grpc.aio.ServicerContext) -> Task:
        nonlocal served
        served += 1
        return request

    async def stream(request: Task, context: grpc.aio.ServicerContext) -> AsyncIterator[Task]:
        for _ in range(10):
            yield request

    async def count(request: Task, context: grpc.aio.ServicerContext) -> Task:
        return Task(progress=served % 2**31)

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(
            unary, Task.FromString, Task.SerializeToString
        ),
        "Stream": grpc.unary_stream_rpc_method_handler(
            stream, Task.FromString, Task.SerializeToString
        ),
        "Count": grpc.unary_unary_rpc_method_handler(
            count, Task.FromString, Task.SerializeToString
        ),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"ADDRESS 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


if __name__ == "__main__":
    # On the same event loop as the Plansmith server it is compared with: uvloop raises
    # this ceiling by about a quarter, so comparing across loops would flatter Plansmith.
    loops.run(main(), loops.from_env())
