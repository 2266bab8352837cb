"""A plan brief from a YAML or JSON file, with command-line flags on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from plansmith.cli.errors import USAGE, CliError

KEYS = {
    "name",
    "description",
    "project_id",
    "requirements",
    "constraints",
    "available_agents",
    "context",
}
ALIASES = {"project": "project_id", "agents": "available_agents"}


def load(path: Path | None) -> dict[str, Any]:
    """The brief in a file (YAML, of which JSON is a subset); {} without a file."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror}", USAGE) from err
    except yaml.YAMLError as err:
        raise CliError(f"{path} is not YAML or JSON: {' '.join(str(err).split())}", USAGE) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CliError(f"{path}: a brief is a mapping (name:, description:, ...)", USAGE)
    brief = {ALIASES.get(str(k), str(k)): v for k, v in data.items()}
    unknown = sorted(set(brief) - KEYS)
    if unknown:
        raise CliError(
            f"{path}: unknown key(s) {', '.join(unknown)}; a brief has " + ", ".join(sorted(KEYS)),
            USAGE,
        )
    for key in ("requirements", "constraints", "available_agents"):
        if key in brief and not isinstance(brief[key], list):
            raise CliError(f"{path}: {key} is a list", USAGE)
    return brief
