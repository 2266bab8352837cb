"""A planner backend speaking the OpenAI-compatible Chat Completions protocol (OpenAI,
Azure OpenAI, Ollama, vLLM, llama.cpp's server), over httpx.

httpx rather than the `openai` SDK: the SDK retries by itself (we keep one retry layer,
the router's), and we need the raw status, the Retry-After header and the dialects of
structured output that differ between servers (OpenAI's `response_format: json_schema`,
Ollama's `format`, plain `json_object`); httpx gives all of that with one dependency.

The API key is read once from the environment variable the configuration names. It goes
into the Authorization header and nowhere else: error messages are built from status codes
and our own words, and any text from the server is scrubbed of it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from plansmith_server.backends.config import BackendConfig
from plansmith_server.backends.errors import (
    BackendHealthError,
    BackendOutputError,
    BackendRejectedError,
    BackendTimeoutError,
    MisconfiguredError,
    RateLimitedError,
    TruncatedOutputError,
    clean_text,
)

Progress = Callable[[int], None]
"""Told how many characters of the answer have arrived so far (streamed calls)."""


@dataclass(frozen=True)
class Answer:
    """A model's complete answer and what it cost."""

    content: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def estimate_tokens(text: str) -> int:
    """A rough token count for budgets: about four characters a token."""
    return len(text) // 4 + 1


MAX_RETRY_AFTER_SECONDS = 3600.0
"""The longest Retry-After honoured: a larger one is cut to this, so no answer can
disable a backend until restart."""

MAX_ANSWER_CHARS = 1_000_000
"""The most characters of an answer read (a plan of a few hundred tasks is far below);
a longer one is refused as invalid output while it arrives, before any parsing."""

MAX_ERROR_BODY_CHARS = 65_536
"""Of an error answer (status >= 400), the most characters read for its message."""

MAX_TOKEN_COUNT = 2**31 - 1
"""Token counts a server reports are clamped to 0..this (the proto's field is an int64,
the budget arithmetic wants sane numbers)."""


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), at most
    `MAX_RETRY_AFTER_SECONDS`; None when absent, negative, not finite or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            seconds = max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError, OverflowError):
            return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def _count(value: Any) -> int:
    """A reported token count as a sane int (0 when it is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return int(min(max(value, 0), MAX_TOKEN_COUNT))


def _usage(usage: Any) -> tuple[int, int]:
    if not isinstance(usage, Mapping):
        return 0, 0
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


class ChatClient:
    """One backend's HTTP client: `complete()` asks once, and raises a `BackendError`."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        headers = {"Content-Type": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
            headers["api-key"] = config.api_key  # Azure OpenAI's header
        self._http = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/") + "/",
            headers=headers,
            # The overall limit is the attempt's asyncio timeout; these only bound each step.
            timeout=httpx.Timeout(config.timeout_seconds),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _scrub(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "[redacted]") if key else text

    def body(
        self,
        instructions: str,
        messages: Sequence[Mapping[str, str]],
        schema: Mapping[str, Any],
        name: str,
        *,
        stream: bool,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        c = self.config
        body: dict[str, Any] = {
            "model": c.model,
            "messages": [{"role": "system", "content": instructions}, *messages],
            "temperature": options.get("temperature", c.temperature),
            "max_tokens": options.get("max_output_tokens", c.max_output_tokens),
            "stream": stream,
        }
        if c.structured_output == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": True, "schema": schema},
            }
        elif c.structured_output == "ollama_format":
            body["format"] = schema
        else:
            body["response_format"] = {"type": "json_object"}
            body["messages"][0]["content"] += " The JSON schema: " + json.dumps(schema)
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(
        self, body: Mapping[str, Any], *, progress: Progress | None = None
    ) -> Answer:
        """Sends one Chat Completions request; the caller bounds it with a timeout."""
        try:
            async with self._http.stream("POST", "chat/completions", json=body) as r:
                if r.status_code >= 400:
                    text = await _read_text(r, MAX_ERROR_BODY_CHARS, refuse=False)
                    raise self._status_error(r, text)
                if body.get("stream"):
                    return await self._read_stream(r, progress)
                return self._read_whole(await _read_text(r, MAX_ANSWER_CHARS, refuse=True))
        except httpx.TimeoutException:
            raise BackendTimeoutError(
                f"no answer within {self.config.timeout_seconds:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise BackendHealthError(f"cannot reach the backend: {type(exc).__name__}") from None

    def _status_error(self, r: httpx.Response, text: str) -> Exception:
        code = r.status_code
        detail = ""
        try:
            err = json.loads(text).get("error")
            detail = err.get("message", "") if isinstance(err, dict) else str(err or "")
            detail = detail if isinstance(detail, str) else ""
        except (ValueError, AttributeError, TypeError, RecursionError):
            pass
        detail = clean_text(self._scrub(detail[:200]))
        reason = f"HTTP {code}" + (f": {detail}" if detail else "")
        if code == 429:
            return RateLimitedError(reason, retry_after(r.headers.get("retry-after")))
        if code in (401, 403, 404):
            return MisconfiguredError(reason + " (check base_url, model and the API key)")
        if code in (408,) or code >= 500:
            return BackendHealthError(reason)
        return BackendRejectedError(reason)

    def _read_whole(self, text: str) -> Answer:
        try:
            data = json.loads(text)
            choice = data["choices"][0]
            content = choice["message"].get("content") or ""
            finish = choice.get("finish_reason")
            usage = data.get("usage")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
            raise BackendOutputError("the response is not a chat completion") from None
        if not isinstance(content, str):
            raise BackendOutputError("the answer's content is not text")
        _check_text(content)
        if finish == "length":
            raise TruncatedOutputError("the answer was cut off at the output token limit")
        return Answer(content, *_usage(usage))

    async def _read_stream(self, r: httpx.Response, progress: Progress | None) -> Answer:
        parts: list[str] = []
        size = 0
        finish = None
        usage: Any = None
        async for line in r.aiter_lines():
            if len(line) > MAX_ANSWER_CHARS:
                raise BackendOutputError(_too_long())
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            try:
                chunk = json.loads(payload)
                usage = chunk.get("usage") or usage
                deltas = []
                for choice in chunk.get("choices") or ():
                    delta = (choice.get("delta") or {}).get("content") or ""
                    if not isinstance(delta, str):
                        raise TypeError("content")
                    deltas.append(delta)
                    finish = choice.get("finish_reason") or finish
            except (ValueError, TypeError, AttributeError, RecursionError):
                raise BackendOutputError("a streamed chunk is not a completion chunk") from None
            for delta in deltas:
                if delta:
                    parts.append(delta)
                    size += len(delta)
                    if size > MAX_ANSWER_CHARS:
                        raise BackendOutputError(_too_long())
                    if progress is not None:
                        progress(size)
        if finish == "length":
            raise TruncatedOutputError("the answer was cut off at the output token limit")
        content = "".join(parts)
        _check_text(content)
        return Answer(content, *_usage(usage))


def _check_text(content: str) -> None:
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:
        raise BackendOutputError("the answer is not valid Unicode text") from None


def _too_long() -> str:
    return f"the answer is longer than {MAX_ANSWER_CHARS} characters"


async def _read_text(r: httpx.Response, limit: int, *, refuse: bool) -> str:
    """The body as text, reading at most about `limit` characters: beyond it the answer is
    refused (`refuse`) or cut (an error body, only read for its message)."""
    chunks: list[str] = []
    size = 0
    async for chunk in r.aiter_text():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            if refuse:
                raise BackendOutputError(_too_long())
            break
    return "".join(chunks)[:limit]


async def bounded(call: Awaitable[Answer], seconds: float) -> Answer:
    """`call` within `seconds`, or `BackendTimeoutError`."""
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError:
        raise BackendTimeoutError(f"timed out after {seconds:.1f} s") from None
