"""A local OpenAI-compatible Chat Completions server for tests: real HTTP/1.1 on 127.0.0.1,
plain JSON answers and SSE streams (`data: {...}` chunks, then `data: [DONE]`).

Behaviour is scripted per model name: `script("m", Reply(...), Reply(...))` answers the
requests for model "m" in turn (the last reply repeats). Every request is recorded. A
`hang` reply waits until the server is closed (the test's teardown), never on a timer.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: content with a finish reason, or a status, or a hang."""

    content: str = ""
    finish_reason: str = "stop"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    hang: bool = False
    raw: str | None = None
    """Sent as the whole body instead of a chat completion or error (malformed answers)."""
    events: tuple[str, ...] | None = None
    """Sent as the stream's `data:` payloads instead of chunks of `content`."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class OpenAIServer:
    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[Received] = []
        self._released = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, model: str, *replies: Reply) -> None:
        self.scripts[model] = list(replies)

    def bodies(self, model: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.body.get("model") == model]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                _method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    k, v = h.decode().split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                body = json.loads(await reader.readexactly(int(headers.get("content-length", 0))))
                self.requests.append(Received(path, headers, body))
                replies = self.scripts.get(body.get("model", ""), [Reply(status=404)])
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                if reply.hang:
                    await self._released.wait()
                    return
                await self._answer(writer, body, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, body: dict[str, Any], r: Reply) -> None:
        if r.status != 200:
            payload = (
                r.raw.encode("utf-8", "surrogatepass")
                if r.raw is not None
                else json.dumps(r.body or {"error": {"message": f"status {r.status}"}}).encode()
            )
            head = [
                f"HTTP/1.1 {r.status} Error",
                "Content-Type: application/json",
                f"Content-Length: {len(payload)}",
                *(f"{k}: {v}" for k, v in r.headers.items()),
            ]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
            await writer.drain()
            return
        usage = {
            "prompt_tokens": 100,
            "completion_tokens": len(r.content) // 4,
            "total_tokens": 100 + len(r.content) // 4,
        }
        if not body.get("stream") and r.raw is not None:
            payload = r.raw.encode("utf-8", "surrogatepass")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            return
        if not body.get("stream"):
            payload = json.dumps(
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": r.finish_reason,
                            "message": {"role": "assistant", "content": r.content},
                        }
                    ],
                    "usage": usage,
                }
            ).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )

        async def event(data: str) -> None:
            raw = f"data: {data}\n\n".encode()
            writer.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            await writer.drain()

        if r.events is not None:
            for data in r.events:
                await event(data)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return
        step = 200
        for i in range(0, len(r.content), step):
            last = i + step >= len(r.content)
            await event(
                json.dumps(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"content": r.content[i : i + step]},
                                "finish_reason": r.finish_reason if last else None,
                            }
                        ],
                    }
                )
            )
        await event(
            json.dumps(
                {"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
        )
        await event("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
