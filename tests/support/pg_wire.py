"""A TCP proxy in front of a PostgreSQL server that reads the client's side of the wire
protocol and counts, per connection, the statements sent and the round trips: how often
the client stopped and asked the server for its answers.

In the protocol (https://www.postgresql.org/docs/current/protocol-flow.html) a client
gets answers when it sends a simple `Query` ('Q', one or more statements), a `Sync`
('S', which ends an extended-protocol exchange or a pipeline's batch) or a `Flush`
('H', psycopg's way of fetching a pipeline's results so far). So a round trip here is a
'Q', or an 'S'/'H' that does not directly follow another 'S'/'H' (psycopg ends a
pipeline with Sync then Flush: one wait). Counted from the message stream, not from
timing: the same calls give the same counts at any load. A statement is an `Execute`
('E') or a statement of a simple query.

Used by the PostgreSQL tests (`tests/postgres/test_round_trips.py`) and by
`bench/pg_round_trips.py`. The proxy only reads what passes; it changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

_ANSWER_NOW = {ord("S"), ord("H")}


@dataclass
class Wire:
    """What one client connection sent."""

    round_trips: int = 0
    statements: int = 0
    texts: list[str] = field(default_factory=list)
    """The text of each statement executed, in order."""
    prepared: dict[bytes, str] = field(default_factory=dict)
    """Statement name -> text, as parsed on this connection."""
    listens: bool = False
    """Whether it sent LISTEN (the store's commit listener)."""


class WireCounter:
    """`async with WireCounter(dsn) as proxy:` connect to `proxy.dsn` instead of `dsn`;
    `proxy.mark()` then `proxy.since(mark)` say what was sent in between. With
    `delay_ms`, what the server sends is held that long before it is passed on: each
    round trip takes that much longer, as with a database on another machine."""

    def __init__(self, dsn: str, *, delay_ms: float = 0.0) -> None:
        self.delay = delay_ms / 1000
        parts = urlsplit(dsn)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._parts = parts
        self.wires: list[Wire] = []
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.dsn = ""

    async def __aenter__(self) -> WireCounter:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        netloc = self._parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        netloc_new = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        self.dsn = urlunsplit(self._parts._replace(netloc=netloc_new))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):  # each side's reader then ends its copy
            writer.close()
        if self._pipes:
            await asyncio.wait(list(self._pipes), timeout=5)

    def mark(self) -> list[tuple[int, int, int]]:
        """The counts so far, to subtract later (`since`)."""
        return [(w.round_trips, w.statements, len(w.texts)) for w in self.wires]

    def since(self, mark: list[tuple[int, int, int]]) -> Wire:
        """What the connections other than the listener sent since `mark`, summed."""
        out = Wire()
        for i, w in enumerate(self.wires):
            if w.listens:
                continue
            rt, st, tx = mark[i] if i < len(mark) else (0, 0, 0)
            out.round_trips += w.round_trips - rt
            out.statements += w.statements - st
            out.texts.extend(w.texts[tx:])
        return out

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            self._pipes.discard(task)
            return
        self._writers.add(up_writer)
        wire = Wire()
        self.wires.append(wire)
        back = asyncio.create_task(_copy(up_reader, writer, self.delay))
        self._pipes.add(back)
        try:
            await self._client_side(reader, up_writer, wire)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (up_writer, writer):
                w.close()
                self._writers.discard(w)
            with contextlib.suppress(OSError):
                await back
            self._pipes.discard(back)
            self._pipes.discard(task)

    async def _client_side(
        self, reader: asyncio.StreamReader, up: asyncio.StreamWriter, wire: Wire
    ) -> None:
        # The startup packet (and an SSL or GSS request before it) has no type byte.
        while True:
            head = await reader.readexactly(4)
            (length,) = struct.unpack("!i", head)
            body = await reader.readexactly(length - 4)
            up.write(head + body)
            await up.drain()
            code = struct.unpack("!i", body[:4])[0]
            if code not in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                break
        previous = 0
        while True:
            head = await reader.readexactly(5)
            kind = head[0]
            (length,) = struct.unpack("!i", head[1:])
            body = await reader.readexactly(length - 4)
            up.write(head + body)
            await up.drain()
            if kind == ord("Q"):
                text = body[:-1].decode(errors="replace")
                wire.round_trips += 1
                statements = [s for s in text.split(";") if s.strip()]
                wire.statements += len(statements)
                wire.texts.extend(s.strip() for s in statements)
                wire.listens = wire.listens or text.lstrip().upper().startswith("LISTEN")
            elif kind == ord("P"):
                name_end = body.index(b"\0")
                text_end = body.index(b"\0", name_end + 1)
                wire.prepared[body[:name_end]] = body[name_end + 1 : text_end].decode(
                    errors="replace"
                )
            elif kind == ord("B"):
                portal_end = body.index(b"\0")
                name = body[portal_end + 1 : body.index(b"\0", portal_end + 1)]
                wire.texts.append(wire.prepared.get(name, "?"))
            elif kind == ord("E"):
                wire.statements += 1
            elif kind in _ANSWER_NOW and previous not in _ANSWER_NOW:
                wire.round_trips += 1
            previous = kind


async def _copy(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float = 0.0
) -> None:
    try:
        while data := await reader.read(65536):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
