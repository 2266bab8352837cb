"""A local OpenAI-compatible server and a Plansmith server routed to it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from plansmith_server.app import Running, start
from plansmith_server.backends import config as routing_config
from plansmith_server.config import Config
from tests.support.openai_server import OpenAIServer

API_KEY = "sk-test-VERY-SECRET-0123456789"


@pytest.fixture
async def llm() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def plansmith(
    llm: OpenAIServer, db_path: str
) -> AsyncIterator[Callable[[str], Awaitable[Running]]]:
    """Starts Plansmith with the routing file given (`{url}` is the test server's URL)."""
    started: list[Running] = []

    async def run(toml: str) -> Running:
        cfg = routing_config.parse(
            toml.replace("{url}", llm.base_url), "test-routing.toml", {"TEST_KEY": API_KEY}
        )
        running = await start(Config(listen="127.0.0.1:0", db_path=db_path), routing=cfg)
        started.append(running)
        return running

    try:
        yield run
    finally:
        for r in started:
            await r.stop(grace=0.5)


def backend_toml(name: str, model: str, **extra: object) -> str:
    lines = [
        f"[backends.{name}]",
        'kind = "openai"',
        'base_url = "{url}"',
        f'model = "{model}"',
        'api_key_env = "TEST_KEY"',
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def every_request_to(name: str) -> str:
    return f'[[rules]]\nname = "all"\nbackend = "{name}"\n'
