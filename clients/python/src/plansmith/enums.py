"""Enum arguments: the proto enum value or its short name.

`parse_enum(task_pb2.TaskPriority, "HIGH")`, `"high"`, `"TASK_PRIORITY_HIGH"`, `3` and
`task_pb2.TASK_PRIORITY_HIGH` all give `task_pb2.TASK_PRIORITY_HIGH`.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from plansmith.v1 import plan_pb2, task_pb2

__all__ = ["EnumArg", "PlanStatus", "TaskPriority", "TaskStatus", "parse_enum", "short_name"]

EnumArg = int | str
"""What an enum parameter accepts: the proto value (an int) or a name."""


@cache
def _prefix(enum_name: str) -> str:
    # TaskPriority -> TASK_PRIORITY_
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"


@cache
def _names(descriptor: Any) -> dict[str, int]:
    prefix = _prefix(descriptor.name)
    out: dict[str, int] = {}
    for v in descriptor.values:
        out[v.name] = v.number
        if v.name.startswith(prefix):
            out[v.name[len(prefix) :]] = v.number
    return out


def parse_enum(enum_type: Any, value: EnumArg) -> int:
    """The number of `value` in the proto enum `enum_type` (e.g. `task_pb2.TaskStatus`).

    Accepts a number defined by the enum, the full value name or the name without the
    enum's prefix, in any case. Raises `ValueError` naming the valid choices otherwise.
    """
    descriptor = enum_type.DESCRIPTOR
    if isinstance(value, bool):
        raise TypeError(f"{descriptor.name}: expected a name or number, got {value!r}")
    if isinstance(value, int):
        if value in descriptor.values_by_number:
            return value
    elif isinstance(value, str):
        number = _names(descriptor).get(value.strip().upper())
        if number is not None:
            return number
    else:
        raise TypeError(f"{descriptor.name}: expected a name or number, got {value!r}")
    choices = ", ".join(short_name(enum_type, v.number) for v in descriptor.values)
    raise ValueError(f"{value!r} is not a {descriptor.name}; use one of {choices}")


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
