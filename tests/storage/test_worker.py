"""The database worker thread: order, outcomes, cancellation and closing, as the store
relies on them (the connection it serves is used by one thread at a time, in order)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from plansmith_server.storage.worker import Worker


async def test_calls_run_in_order_on_one_thread_off_the_loop():
    w = Worker("test-worker")
    try:
        seen: list[tuple[int, str]] = []

        def note(i: int) -> int:
            seen.append((i, threading.current_thread().name))
            return i * i

        results = await asyncio.gather(*(w.run(note, i) for i in range(20)))
        assert results == [i * i for i in range(20)]
        assert [i for i, _ in seen] == list(range(20))
        assert {name for _, name in seen} == {"test-worker"}
        assert threading.current_thread().name != "test-worker"
    finally:
        w.close()


async def test_an_exception_reaches_the_caller_and_the_thread_goes_on():
    w = Worker("test-worker")
    try:

        def fail() -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await w.run(fail)
        assert await w.run(lambda: "still here") == "still here"
    finally:
        w.close()


async def test_a_call_cancelled_before_it_starts_is_skipped_one_running_finishes():
    w = Worker("test-worker")
    try:
        started, release = threading.Event(), threading.Event()
        ran: list[str] = []

        def blocking() -> str:
            started.set()
            release.wait(10)
            ran.append("blocking")
            return "done"

        first = w.run(blocking)
        await asyncio.to_thread(started.wait, 10)
        second = w.run(ran.append, "skipped")
        first.cancel()  # already running: it finishes anyway
        second.cancel()  # not started: never runs
        release.set()
        assert await w.run(lambda: "after") == "after"
        assert ran == ["blocking"]
        assert first.cancelled() and second.cancelled()
    finally:
        w.close()


async def test_closing_refuses_new_calls_and_finishes_queued_ones():
    w = Worker("test-worker")
    release = threading.Event()
    first = w.run(release.wait, 10)
    queued = w.run(lambda: "queued")
    w.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.run(lambda: None)
    release.set()
    assert await first is True
    assert await queued == "queued"
    assert w._thread is not None
    await asyncio.to_thread(w._thread.join, 10)
    assert not w._thread.is_alive()


def test_a_worker_never_used_starts_no_thread():
    before = threading.active_count()
    w = Worker("test-worker")
    assert threading.active_count() == before
    w.close()


def test_a_call_whose_loop_closed_is_dropped_and_the_thread_serves_on():
    """A caller's event loop may be gone when its call finishes (a store never closed):
    the outcome has nowhere to go, and the thread must not die of it."""
    w = Worker("test-worker")
    release = threading.Event()

    async def queue_and_leave() -> None:
        w.run(release.wait, 10)  # not awaited: this loop closes first

    asyncio.run(queue_and_leave())
    release.set()

    async def later() -> str:
        return await asyncio.wait_for(w.run(lambda: "served"), timeout=10)

    try:
        assert asyncio.run(later()) == "served"
        assert w._thread is not None and w._thread.is_alive()
    finally:
        w.close()
