"""How many calls the server holds, counted by gRPC core: running or still waiting to start.

Why this exists: a grpc.aio server takes calls from gRPC core one at a time, one per turn
of the event loop. When the loop is busy, calls that have arrived wait inside core, where
no interceptor sees them: under overload far more calls wait there than run in handlers
(docs/performance.md), so a limit counted in handlers never trips and latency grows with
the client's stream count. Core's own backlog limits
(`grpc.server.max_pending_requests`) apply only to its promise-based call path, not to
the one grpc.aio uses (tried: no effect), and `grpc.server_max_unrequested_time_in_server`
drops waiting calls as CANCELLED, which tells the caller nothing useful.

Core does count every call it starts and finishes, for channelz: `callsStarted -
callsSucceeded - callsFailed` is every call the server holds, queued or running. Reading
it is not cheap (core renders JSON under its locks, slower under load), so the count is
sampled lazily, when a call is admitted: at most every `every` seconds once `busy_from`
calls were held at the last sample, every `idle_every` below that (sampling often at all
times costs reads a visible share of their rate; figures in docs/performance.md).

The channelz reader lives in `grpc._cython.cygrpc` (the grpcio-channelz package calls the
same functions); if a grpcio upgrade removes it, `find` returns None and the server falls
back to counting calls in handlers, with a warning.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

log = logging.getLogger("plansmith.limits")

_COUNTS = re.compile(rb'"calls(Started|Succeeded|Failed)":"(\d+)"')

try:  # private module, public behaviour: see the module docstring
    from grpc._cython.cygrpc import channelz_get_server, channelz_get_servers
except ImportError:  # pragma: no cover - depends on the grpcio build
    channelz_get_server = channelz_get_servers = None


def server_ids() -> set[int]:
    """The channelz ids of every gRPC server in this process (empty if unavailable)."""
    if channelz_get_servers is None:
        return set()
    ids: set[int] = set()
    start = 0
    while True:
        page = json.loads(channelz_get_servers(start))
        for server in page.get("server", ()):
            ids.add(int(server["ref"]["serverId"]))
        if page.get("end", True) or not ids:
            return ids
        start = max(ids) + 1


class CoreCallGauge:
    """Calls a gRPC server holds (started and not finished), as core counts them."""

    def __init__(
        self,
        server_id: int,
        *,
        every: float = 0.01,
        idle_every: float = 0.1,
        busy_from: int = 0,
    ) -> None:
        self.server_id = server_id
        self.every = every
        self.idle_every = idle_every
        self.busy_from = busy_from
        self._sampled_at = float("-inf")
        self._open = 0
        self._failed = False

    @classmethod
    def find(cls, before: set[int], **options: Any) -> CoreCallGauge | None:
        """The gauge of the one server created since `before` was taken (`options` as for
        the constructor), or None (with a warning) when there is not exactly one or
        channelz cannot be read."""
        try:
            new = server_ids() - before
            if len(new) == 1:
                gauge = cls(new.pop(), **options)
                gauge.open_calls()
                return gauge
        except Exception:  # an unexpected channelz shape must not stop the server
            log.warning("cannot read gRPC core's call counts", exc_info=True)
            return None
        log.warning(
            "cannot tell this server's calls in gRPC core apart (%d new servers); the "
            "in-flight limit counts calls in handlers only",
            len(new),
        )
        return None

    def open_calls(self) -> int:
        """Calls started and not yet finished, as of the last sample."""
        now = time.monotonic()
        every = self.every if self._open >= self.busy_from else self.idle_every
        if now - self._sampled_at >= every:
            self._sampled_at = now
            try:
                report = channelz_get_server(self.server_id)
            except Exception:  # e.g. the server is gone: a call must not fail for it
                if not self._failed:
                    log.warning("cannot read gRPC core's call counts", exc_info=True)
                    self._failed = True
                self._open = 0  # unknown: only calls in handlers count
                return 0
            counts = dict(_COUNTS.findall(report))
            # channelz leaves out counters that are still zero
            self._open = (
                int(counts.get(b"Started", 0))
                - int(counts.get(b"Succeeded", 0))
                - int(counts.get(b"Failed", 0))
            )
        return self._open
