"""Fixtures of the CLI tests: one real `plansmith-server` process per module, and the
`plansmith` command run in-process (Typer's runner) against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from plansmith.cli.app import app
from tests.test_process import ServerProcess, launch


@pytest.fixture(scope="module")
def server_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    sp = launch(str(tmp_path_factory.mktemp("cli") / "db.sqlite"))
    try:
        yield sp
    finally:
        sp.stop()


class Cli:
    def __init__(self, address: str) -> None:
        self.address = address
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, columns: int = 100) -> Any:
        result = self.runner.invoke(
            app,
            ["--target", self.address, *args],
            env={"COLUMNS": str(columns), "NO_COLOR": "1"},
        )
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(server_proc: ServerProcess) -> Cli:
    return Cli(server_proc.address)


@pytest.fixture
def root() -> Path:
    return Path(__file__).resolve().parents[2]
