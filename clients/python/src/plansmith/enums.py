"""Enum arguments: the proto enum value or its short name.

`parse_enum(task_pb2.TaskPriority, "HIGH")`, `"high"`, `"TASK_PRIORITY_HIGH"`, `3` and
`task_pb2.TASK_PRIORITY_HIGH` all give `task_pb2.TASK_PRIORITY_HIGH`.

Aliases (client-side only: the protos have one name per value, as buf lint wants): a plan
status `IN_PROGRESS` is `ACTIVE` (tasks have an `IN_PROGRESS` of their own).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from plansmith.errors import argument_error
from plansmith.v1 import plan_pb2, task_pb2

__all__ = ["EnumArg", "PlanStatus", "TaskPriority", "TaskStatus", "parse_enum", "short_name"]

EnumArg = int | str
"""What an enum parameter accepts: the proto value (an int) or a name."""


@cache
def _prefix(enum_name: str) -> str:
    # TaskPriority -> TASK_PRIORITY_
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"


ALIASES: dict[str, dict[str, str]] = {"PlanStatus": {"IN_PROGRESS": "ACTIVE"}}
"""Extra short names per enum, each naming a value of the enum by its short name."""


@cache
def _names(descriptor: Any) -> dict[str, int]:
    prefix = _prefix(descriptor.name)
    out: dict[str, int] = {}
    for v in descriptor.values:
        out[v.name] = v.number
        if v.name.startswith(prefix):
            out[v.name[len(prefix) :]] = v.number
    for alias, target in ALIASES.get(descriptor.name, {}).items():
        out[alias] = out[prefix + alias] = out[target]
    return out


def parse_enum(enum_type: Any, value: EnumArg, field: str = "") -> int:
    """The number of `value` in the proto enum `enum_type` (e.g. `task_pb2.TaskStatus`).

    Accepts a number defined by the enum, the full value name or the name without the
    enum's prefix (or an alias), in any case. Otherwise raises `ArgumentError` (a
    `ValidationError` and `ValueError`; `ArgumentTypeError`, also a `TypeError`, for a
    value that is neither a name nor a number) naming the valid choices; `field` is the
    argument's name for the error.
    """
    descriptor = enum_type.DESCRIPTOR
    if isinstance(value, bool) or not isinstance(value, int | str):
        what = f"a {descriptor.name} name or number" if field else "a name or number"
        raise argument_error(
            field or descriptor.name, f"expected {what}, got {value!r}", wrong_type=True
        )
    if isinstance(value, int):
        if value in descriptor.values_by_number:
            return value
    else:
        number = _names(descriptor).get(value.strip().upper())
        if number is not None:
            return number
    choices = ", ".join(short_name(enum_type, v.number) for v in descriptor.values)
    aliases = ", ".join(f"{a} (= {t})" for a, t in ALIASES.get(descriptor.name, {}).items())
    raise argument_error(
        field,
        f"{value!r} is not a {descriptor.name}; use one of {choices}"
        + (f"; or {aliases}" if aliases else ""),
    )


def short_name(enum_type: Any, number: int) -> str:
    """The value's name without the enum's prefix: `short_name(TaskStatus, 2)` is
    `IN_PROGRESS`."""
    descriptor = enum_type.DESCRIPTOR
    name: str = descriptor.values_by_number[number].name
    prefix = _prefix(descriptor.name)
    return name[len(prefix) :] if name.startswith(prefix) else name


# The enums of the API, importable from here for convenience.
TaskPriority = task_pb2.TaskPriority
TaskStatus = task_pb2.TaskStatus
PlanStatus = plan_pb2.PlanStatus
