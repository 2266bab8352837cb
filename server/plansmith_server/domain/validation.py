"""Field checks shared by every mutation; they collect every violation before failing."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import IntEnum

from plansmith_server.domain.models import (
    Agent,
    Plan,
    PlanStatus,
    Task,
    TaskPriority,
    TaskStatus,
)
from plansmith_server.domain.policy import check_policy
from plansmith_server.errors import FieldViolation, InvalidArgumentError

MAX_ID = 128
MAX_NAME = 200
MAX_TITLE = 500
MAX_TEXT = 10_000
MAX_LIST_ITEMS = 100
MAX_ITEM_LEN = 1_000
MAX_METADATA = 64
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 1_024
MAX_AGENTS = 200
MAX_CAPABILITIES = 64
MAX_CAPABILITY_LEN = 100
MAX_DEPENDENCIES = 1_000
MAX_CRITERIA = 50
MAX_HOURS = 100_000.0
MAX_BATCH = 1_000
MAX_PAGE_SIZE = 1_000
DEFAULT_PAGE_SIZE = 50


class Violations:
    """Collects field violations; `raise_if_any` raises them all as one error."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def extend(self, items: Iterable[FieldViolation]) -> None:
        self.items.extend(items)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgumentError(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


def _some(names: Sequence[str], limit: int = 10) -> str:
    """The first `limit` names, and how many more there are."""
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def check_text(
    v: Violations, field: str, value: str, limit: int, *, required: bool = False
) -> None:
    if required and not value.strip():
        v.add(field, "is required and must not be blank")
    if len(value) > limit:
        v.add(field, f"is {len(value)} characters long; at most {limit} are allowed")


def check_id(v: Violations, field: str, value: str, *, required: bool = True) -> None:
    if required and not value:
        v.add(field, "is required")
    elif len(value) > MAX_ID:
        v.add(field, f"is {len(value)} characters long; at most {MAX_ID} are allowed")


CHOSEN_ID = re.compile(r"[a-z][a-z0-9_-]{0,62}")
"""An id a caller chooses for a new resource (AIP-122/133, with `_` as in server ids)."""


def check_chosen_id(v: Violations, field: str, value: str) -> None:
    if not CHOSEN_ID.fullmatch(value):
        v.add(
            field,
            "must be 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter",
        )


def check_request_id(v: Violations, value: str) -> None:
    if len(value) > MAX_ID:
        v.add("request_id", f"is {len(value)} characters long; at most {MAX_ID} are allowed")


def check_string_list(
    v: Violations, field: str, values: Sequence[str], max_items: int, max_len: int
) -> None:
    if len(values) > max_items:
        v.add(field, f"has {len(values)} entries; at most {max_items} are allowed")
    for i, s in enumerate(values):
        if not s.strip():
            v.add(f"{field}[{i}]", "must not be blank")
        elif len(s) > max_len:
            v.add(f"{field}[{i}]", f"is {len(s)} characters long; at most {max_len} are allowed")


def check_metadata(v: Violations, field: str, metadata: Mapping[str, str]) -> None:
    if len(metadata) > MAX_METADATA:
        v.add(field, f"has {len(metadata)} entries; at most {MAX_METADATA} are allowed")
    for key in sorted(metadata):
        # The key names the entry; one far too long is cut, as its length is what is wrong.
        name = key if len(key) <= MAX_METADATA_KEY else key[:MAX_METADATA_KEY] + "\u2026"
        entry = f"{field}[{name!r}]"
        if not key or len(key) > MAX_METADATA_KEY:
            v.add(entry, f"keys must be 1 to {MAX_METADATA_KEY} characters long")
        if len(metadata[key]) > MAX_METADATA_VALUE:
            v.add(entry, f"values must be at most {MAX_METADATA_VALUE} characters")


def check_enum(v: Violations, field: str, value: int, enum: type[IntEnum]) -> None:
    if value not in enum._value2member_map_:
        names = ", ".join(m.name for m in enum if m.value != 0)
        v.add(field, f"unknown value {value}; expected one of {names}")


def check_hours(v: Violations, field: str, value: float) -> None:
    if not math.isfinite(value):
        v.add(field, "must be a finite number")
    elif value < 0:
        v.add(field, "must not be negative")
    elif value > MAX_HOURS:
        v.add(field, f"must be at most {MAX_HOURS:g} hours")


MAX_CAPACITY = 1_000
"""Concurrent tasks of one agent."""


def check_agents(v: Violations, field: str, agents: Sequence[Agent]) -> None:
    if len(agents) > MAX_AGENTS:
        v.add(field, f"has {len(agents)} agents; at most {MAX_AGENTS} are allowed")
    seen: set[str] = set()
    for i, agent in enumerate(agents):
        item = f"{field}[{i}]"
        check_id(v, f"{item}.id", agent.id)
        if agent.id in seen:
            v.add(f"{item}.id", f"duplicate agent id {agent.id!r}")
        seen.add(agent.id)
        check_text(v, f"{item}.name", agent.name, MAX_NAME)
        check_string_list(
            v, f"{item}.capabilities", agent.capabilities, MAX_CAPABILITIES, MAX_CAPABILITY_LEN
        )
        if not 0 <= agent.capacity <= MAX_CAPACITY:
            v.add(f"{item}.capacity", f"must be between 0 and {MAX_CAPACITY}")


def check_plan(v: Violations, prefix: str, plan: Plan, fields: Iterable[str] | None = None) -> None:
    """Checks the named fields of `plan` (all when `fields` is None)."""
    wanted = set(fields) if fields is not None else None

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    if want("project_id"):
        check_id(v, _join(prefix, "project_id"), plan.project_id, required=False)
    if want("name"):
        check_text(v, _join(prefix, "name"), plan.name, MAX_NAME, required=True)
    if want("description"):
        check_text(v, _join(prefix, "description"), plan.description, MAX_TEXT)
    if want("objectives"):
        check_string_list(
            v, _join(prefix, "objectives"), plan.objectives, MAX_LIST_ITEMS, MAX_ITEM_LEN
        )
    if want("constraints"):
        check_string_list(
            v, _join(prefix, "constraints"), plan.constraints, MAX_LIST_ITEMS, MAX_ITEM_LEN
        )
    if want("metadata"):
        check_metadata(v, _join(prefix, "metadata"), plan.metadata)
    if want("status"):
        check_enum(v, _join(prefix, "status"), plan.status, PlanStatus)
    if want("agents"):
        check_agents(v, _join(prefix, "agents"), plan.agents)
    if want("replan_policy") and plan.replan_policy is not None:
        check_policy(v.add, _join(prefix, "replan_policy"), plan.replan_policy)


def check_task(
    v: Violations,
    prefix: str,
    task: Task,
    fields: Iterable[str] | None = None,
    *,
    agent_ids: set[str] | None = None,
) -> None:
    """Checks the named fields of `task` (all when `fields` is None).

    `agent_ids` are the plan's agents; when not empty, `assigned_to` must be one of them.
    Dependencies are only checked for shape here; existence and cycles need the plan's
    other tasks (see `plansmith_server/graph.py`).
    """
    wanted = set(fields) if fields is not None else None

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    if want("title"):
        check_text(v, _join(prefix, "title"), task.title, MAX_TITLE, required=True)
    if want("description"):
        check_text(v, _join(prefix, "description"), task.description, MAX_TEXT)
    if want("priority"):
        check_enum(v, _join(prefix, "priority"), task.priority, TaskPriority)
    if want("status"):
        check_enum(v, _join(prefix, "status"), task.status, TaskStatus)
    for name in ("estimated_hours", "actual_hours", "optimistic_hours", "pessimistic_hours"):
        if want(name):
            check_hours(v, _join(prefix, name), getattr(task, name))
    if want("progress") and not 0 <= task.progress <= 100:
        v.add(_join(prefix, "progress"), f"is {task.progress}; must be between 0 and 100")
    if want("dependencies"):
        field = _join(prefix, "dependencies")
        if len(task.dependencies) > MAX_DEPENDENCIES:
            v.add(field, f"has {len(task.dependencies)} entries; at most {MAX_DEPENDENCIES}")
        seen: set[str] = set()
        for i, dep in enumerate(task.dependencies):
            if not dep or len(dep) > MAX_ID:
                v.add(f"{field}[{i}]", f"must be a task id of 1 to {MAX_ID} characters")
            elif dep in seen:
                v.add(f"{field}[{i}]", f"duplicate dependency {dep!r}")
            elif task.id and dep == task.id:
                v.add(f"{field}[{i}]", "a task cannot depend on itself")
            seen.add(dep)
    if want("parent_task_id") and len(task.parent_task_id) > MAX_ID:
        field = _join(prefix, "parent_task_id")
        v.add(field, f"is {len(task.parent_task_id)} characters long; at most {MAX_ID}")
    if want("assigned_to") and task.assigned_to:
        field = _join(prefix, "assigned_to")
        if len(task.assigned_to) > MAX_ID:
            v.add(field, f"is {len(task.assigned_to)} characters long; at most {MAX_ID}")
        elif agent_ids and task.assigned_to not in agent_ids:
            v.add(
                field,
                f"agent {task.assigned_to!r} is not among the plan's agents "
                f"({_some(sorted(agent_ids))})",
            )
    if want("not_before") and task.not_before < 0:
        v.add(_join(prefix, "not_before"), "must not be before 1970")
    if want("required_capabilities"):
        check_string_list(
            v,
            _join(prefix, "required_capabilities"),
            task.required_capabilities,
            MAX_CAPABILITIES,
            MAX_CAPABILITY_LEN,
        )
    if want("metadata"):
        check_metadata(v, _join(prefix, "metadata"), task.metadata)
    if want("acceptance_criteria"):
        check_string_list(
            v,
            _join(prefix, "acceptance_criteria"),
            task.acceptance_criteria,
            MAX_CRITERIA,
            MAX_ITEM_LEN,
        )
    if want("schedule") and task.schedule is not None:
        field = _join(prefix, "schedule")
        s = task.schedule
        for name in ("start_offset_hours", "end_offset_hours"):
            value = getattr(s, name)
            if not math.isfinite(value) or value < 0:
                v.add(f"{field}.{name}", "must be a finite number of hours, not negative")
        if s.end_offset_hours < s.start_offset_hours:
            v.add(f"{field}.end_offset_hours", "must not be before start_offset_hours")


def check_estimate_range(v: Violations, prefix: str, task: Task) -> None:
    """When a range is given, optimistic <= estimated <= pessimistic must hold."""
    o, m, p = task.optimistic_hours, task.estimated_hours, task.pessimistic_hours
    if not all(math.isfinite(x) for x in (o, m, p)):
        return
    if o and m and o > m:
        v.add(_join(prefix, "optimistic_hours"), "must not exceed estimated_hours")
    if p and m and p < m:
        v.add(_join(prefix, "pessimistic_hours"), "must not be below estimated_hours")
    if o and p and o > p:
        v.add(_join(prefix, "pessimistic_hours"), "must not be below optimistic_hours")


def page_size(v: Violations, requested: int) -> int:
    """AIP-158: 0 means the default, too large is coerced, negative is an error."""
    if requested < 0:
        v.add("page_size", "must not be negative")
        return DEFAULT_PAGE_SIZE
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def check_mask(v: Violations, fields: Sequence[str], allowed: Sequence[str]) -> None:
    """An update_mask names at least one field, and only fields in `allowed`."""
    if not fields:
        v.add("update_mask", f"names no field to change; allowed: {', '.join(allowed)}")
    for f in fields:
        if f not in allowed:
            v.add("update_mask", f"{f!r} cannot be updated; allowed: {', '.join(allowed)}")


def field_names(mask: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """Expands `*`; keeps the caller's order otherwise."""
    out: list[str] = []
    for f in mask:
        for name in allowed if f == "*" else [f]:
            if name not in out:
                out.append(name)
    return out
