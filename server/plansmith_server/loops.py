"""Which asyncio event loop the server runs on.

The event loop is most of a call's cost here: a grpc.aio server spends its time in the
loop's machinery (tasks, futures, callbacks, the wake-ups from gRPC core's poller thread),
not in our handlers. uvloop (libuv's loop, in C) does that work faster than asyncio's own
loop, for every call measured (docs/performance.md, "The event loop").

`auto` (the default) takes uvloop where it is installed, which is everywhere pip installs
the server except Windows (uvloop has no Windows build), and asyncio's loop otherwise.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

CHOICES = ("auto", "uvloop", "asyncio")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class LoopUnavailable(RuntimeError):
    """The event loop asked for cannot be had here."""


def factory(choice: str) -> tuple[str, LoopFactory | None]:
    """The loop `choice` stands for, as (name, factory); a None factory is asyncio's own."""
    if choice not in CHOICES:
        raise ValueError(f"unknown event loop {choice!r}; one of {', '.join(CHOICES)}")
    if choice == "asyncio":
        return "asyncio", None
    try:
        import uvloop
    except ImportError as exc:
        if choice == "uvloop":
            raise LoopUnavailable(
                "uvloop is not installed (pip install uvloop; it has no Windows build): "
                "use --event-loop asyncio"
            ) from exc
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def from_env(env: Mapping[str, str] | None = None) -> str:
    """The choice `PLANSMITH_EVENT_LOOP` makes (default `auto`), for the scripts and tests
    that run a server without `plansmith-server`'s flags."""
    env = os.environ if env is None else env
    return env.get("PLANSMITH_EVENT_LOOP", "").strip().lower() or "auto"


def run(main: Coroutine[Any, Any, T], choice: str) -> T:
    """`asyncio.run(main)` on the loop `choice` stands for. Like `asyncio.run` with a loop
    factory, the loop is not made the thread's current loop: code that needs it calls
    `asyncio.get_running_loop()` (`get_event_loop()` outside a coroutine would not find it)."""
    try:
        _, make = factory(choice)
    except BaseException:
        main.close()  # never awaited: close it, or Python warns about it
        raise
    with asyncio.Runner(loop_factory=make) as runner:
        return runner.run(main)


def running_name() -> str:
    """`uvloop` or `asyncio`: the loop the calling coroutine runs on (for logs)."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.partition(".")[0] == "uvloop" else "asyncio"
