"""Where a command's output goes: a Rich console (colour unless `--no-color` or
NO_COLOR, live displays only on a terminal) or the response as proto3 JSON."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console


def to_json(message: Message) -> str:
    """The proto3 JSON mapping of a message as grpcurl prints it: camelCase names,
    enum names, fields at their default value left out, two-space indent."""
    return json_format.MessageToJson(message, indent=2)


@dataclasses.dataclass
class Output:
    """The settings every command shares (set by the global options)."""

    target: str
    timeout: float | None
    json: bool = False
    no_color: bool = False
    _console: Console | None = None
    _err: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = Console(no_color=self.colorless, highlight=False)
        return self._console

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = Console(stderr=True, no_color=self.colorless, highlight=False)
        return self._err

    @property
    def colorless(self) -> bool:
        return self.no_color or bool(os.environ.get("NO_COLOR"))

    @property
    def live(self) -> bool:
        """Whether a live display (progress) may run: a terminal, and not `--json`."""
        return not self.json and self.console.is_terminal

    def emit(self, message: Message, render: Any = None) -> None:
        """Prints the response: its JSON with `--json`, else what `render` gives (a Rich
        renderable, a string, or a callable that prints)."""
        if self.json:
            # Plain print: JSON for scripts must not be wrapped or styled by Rich.
            print(to_json(message))
            return
        if callable(render):
            render(self.console)
        elif render is not None:
            self.console.print(render)
