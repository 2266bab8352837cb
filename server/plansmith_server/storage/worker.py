"""A thread that runs blocking database calls for the event loop, one at a time, in order.

What `loop.run_in_executor` on a one-thread pool does, with less work per call. Under
load the event loop holds the GIL nearly all the time, and each time another thread takes
it back the loop waits. The executor's bookkeeping around a call (a concurrent Future with
its condition, a work item, a done-callback that schedules a second callback on the loop)
is Python that thread runs with the GIL; here a call is one queue item and one
`call_soon_threadsafe` (the measurement: docs/performance.md, "Write path").
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """On the loop: hands the outcome to the caller, unless it stopped waiting."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class Worker:
    """One thread; `run` queues a call and returns a future the loop can await. A call
    whose caller was cancelled before the thread reached it is skipped, as with an
    executor; one already running finishes, and later calls wait for it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._closed = False
        self._thread: threading.Thread | None = None  # started by the first call

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queues `fn(*args)`; raises RuntimeError once the worker is closed."""
        if self._closed:
            raise RuntimeError("the worker is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, fn, args))
        return future

    def close(self) -> None:
        """Refuses new calls; the thread ends after those already queued."""
        if not self._closed:
            self._closed = True
            if self._thread is not None:
                self._calls.put(None)

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            loop, future, fn, args = call
            # Read off the loop's thread: at worst a call cancelled this very moment
            # still runs, which is what an executor does with a call already started.
            if future.cancelled():
                continue
            try:
                outcome = (True, fn(*args))
            except BaseException as exc:  # the caller's to handle, on the loop
                outcome = (False, exc)
            try:
                loop.call_soon_threadsafe(_settle, future, *outcome)
            except RuntimeError:  # the loop is closed: nobody waits for this any more
                pass
