"""Plan and task metadata with values other than strings.

On the wire a `metadata` map holds strings only. The client accepts any JSON value
(`{"skills_required": ["UI/UX", "HTML"], "points": 3}`) and stores each value that is not
a string as its JSON text, listing those keys, as a JSON array, under the reserved key
`plansmith.json`. Strings are stored exactly as given, so a map of strings is sent
exactly as before and other clients see plain text::

    {"skills_required": "[\"UI/UX\", \"HTML\"]", "points": "3", "client": "Acme",
     "plansmith.json": "[\"points\", \"skills_required\"]"}

`decode_metadata(task.metadata)` gives the values back as they were written (a string
that merely looks like JSON, such as `"42"`, stays a string: it is not in the list).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from plansmith.errors import argument_error

__all__ = ["JSON_KEYS", "decode_metadata", "encode_metadata"]

JSON_KEYS = "plansmith.json"
"""The reserved metadata key listing the keys whose values are JSON text."""

_SCALARS = (bool, int, float, type(None))


def _check_json(field: str, key: str, value: Any) -> None:
    """Refuses what JSON cannot carry faithfully (objects, sets, bytes, NaN, non-string
    keys), naming the entry."""
    if isinstance(value, str) or isinstance(value, _SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            raise argument_error(f"{field}[{key!r}]", f"{value!r} has no JSON form")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_json(field, key, item)
        return
    if isinstance(value, Mapping):
        for k, item in value.items():
            if not isinstance(k, str):
                raise argument_error(
                    f"{field}[{key!r}]",
                    f"JSON object keys must be strings, got {k!r}",
                    wrong_type=True,
                )
            _check_json(field, key, item)
        return
    raise argument_error(
        f"{field}[{key!r}]",
        f"expected a string or a JSON value (number, bool, None, list, dict), got "
        f"{type(value).__name__}",
        wrong_type=True,
    )


def encode_metadata(metadata: Mapping[str, Any] | None, field: str = "metadata") -> dict[str, str]:
    """The wire form of `metadata`: strings as they are, other JSON values as their JSON
    text with their keys listed under `plansmith.json`."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise argument_error(
            field,
            f"expected a mapping of strings to values, got {type(metadata).__name__}",
            wrong_type=True,
        )
    out: dict[str, str] = {}
    encoded: list[str] = []
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise argument_error(field, f"keys must be strings, got {key!r}", wrong_type=True)
        if isinstance(value, str):
            out[key] = value
            continue
        _check_json(field, key, value)
        out[key] = json.dumps(value, ensure_ascii=False)
        encoded.append(key)
    if encoded:
        if JSON_KEYS in metadata:
            raise argument_error(
                f"{field}[{JSON_KEYS!r}]",
                "is reserved: the client lists the keys of non-string values there",
            )
        out[JSON_KEYS] = json.dumps(sorted(encoded), ensure_ascii=False)
    return out


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, Any]:
    """`metadata` as written with `encode_metadata` (or by the client's methods): the
    values listed under `plansmith.json` decoded from JSON, the rest as they are, without
    the `plansmith.json` entry itself. Accepts a message's map (`task.metadata`)."""
    out: dict[str, Any] = dict(metadata)
    listed = out.pop(JSON_KEYS, None)
    if listed is None:
        return out
    try:
        keys = json.loads(listed)
    except ValueError:
        return dict(metadata)  # not ours: leave everything as it is
    if not isinstance(keys, list):
        return dict(metadata)
    for key in keys:
        if isinstance(key, str) and key in out:
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass  # changed by someone else since: keep the text
    return out
