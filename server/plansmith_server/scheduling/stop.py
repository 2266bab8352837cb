"""Stopping a long computation whose result is no longer wanted.

Solves and simulations run on worker threads, which a cancelled gRPC call cannot
interrupt: without a way to tell them, a caller that gave up after 0.1 s still cost the
whole time limit (up to a minute of CP-SAT), and a few such calls kept the event loop's
thread pool busy for everyone else. The caller holds a :class:`StopToken` and stops it;
the computation asks it between steps and registers what interrupts it mid-step (CP-SAT's
``stop_search``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


class StopToken:
    """Set once, from any thread; asked by the computation it was handed to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._interrupts: list[Callable[[], object]] = []

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def interruptible(self) -> bool:
        """Whether a step that `stop` can interrupt is under way (see `interrupting`)."""
        return bool(self._interrupts)

    def stop(self) -> None:
        """Asks the computation to stop; interrupts the step under way, if it can be."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            interrupts, self._interrupts = self._interrupts, []
        for interrupt in interrupts:
            interrupt()

    @contextlib.contextmanager
    def interrupting(self, interrupt: Callable[[], object]) -> Iterator[None]:
        """Within the block, `stop` calls `interrupt` (at once if already stopped)."""
        with self._lock:
            registered = not self._stopped
            if registered:
                self._interrupts.append(interrupt)
        if not registered:
            interrupt()
        try:
            yield
        finally:
            with self._lock:
                if interrupt in self._interrupts:
                    self._interrupts.remove(interrupt)
