"""The domain's services run here over each `Store` implementation of the contract suite
(tests/storage/contract): the in-memory store and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.storage.contract.conftest import STORES


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    s = await STORES[request.param](tmp_path)
    try:
        yield s
    finally:
        await s.close()
