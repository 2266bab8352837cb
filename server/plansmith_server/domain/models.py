"""Plain data of the domain: plans, tasks, agents.

The enums mirror the numbers of the `plansmith.v1` proto enums on purpose (a test pins
this), so the API layer converts by value; the domain never imports generated code.
Timestamps are integer microseconds since the epoch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum, IntEnum
from functools import cached_property
from typing import Any, Self

from plansmith_server.domain.policy import ReplanPolicy


class StoredEnum(IntEnum):
    """An enum whose numbers are stored (and happen to be the wire's, a test pins it)."""

    @classmethod
    def from_wire(cls, number: int) -> Self:
        """The member numbered `number`. A number the enum does not define (a newer or a
        broken client) gives an unrecognized value of this type (`UNRECOGNIZED_<n>`, not
        a member) that validation refuses naming the number, so that a typed field never
        holds a bare integer and every problem of a request is still reported at once."""
        try:
            return cls(number)
        except ValueError:
            odd = int.__new__(cls, number)
            odd._name_ = f"UNRECOGNIZED_{number}"
            odd._value_ = number
            return odd


@dataclass(frozen=True)
class Unrecognized:
    """A request's enum value the API does not know (a newer or a broken client), carried
    to the domain's validation so that it is refused, naming `number`, with the request's
    other problems."""

    number: int


class DecompositionLevel(Enum):
    """How finely to decompose a task (the planner's level names)."""

    SUMMARY = "SUMMARY"
    STANDARD = "STANDARD"
    DETAILED = "DETAILED"


class AnalysisKind(Enum):
    """A part of AnalyzePlan's answer a caller may ask for (all of them when none is)."""

    CRITICAL_PATH = "CRITICAL_PATH"
    UTILIZATION = "UTILIZATION"
    RISK = "RISK"


class ScheduleConstraint(Enum):
    """What OptimizePlan honours: dependencies always; capabilities unless the caller
    names constraints without them."""

    DEPENDENCIES = "DEPENDENCIES"
    CAPABILITIES = "CAPABILITIES"


class HistoryScope(Enum):
    """Whose completed tasks EstimateTaskDuration learns from (unspecified: the plan's, or
    the project's when a project is known and no plan is named)."""

    PLAN = "PLAN"
    PROJECT = "PROJECT"


class PlanStatus(StoredEnum):
    """Lifecycle state of a plan."""

    UNSPECIFIED = 0
    DRAFT = 1
    ACTIVE = 2
    ON_HOLD = 3
    COMPLETED = 4
    CANCELLED = 5


class TaskPriority(StoredEnum):
    """Importance of a task."""

    UNSPECIFIED = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class TaskStatus(StoredEnum):
    """State of a task."""

    UNSPECIFIED = 0
    TODO = 1
    """Not started yet (the API's `TASK_STATUS_TODO`: one name on both sides)."""
    NOT_STARTED = 1
    """Deprecated alias of `TODO` (same member), for code not yet moved to the one name."""
    IN_PROGRESS = 2
    BLOCKED = 3
    DONE = 4
    FAILED = 5
    CANCELLED = 6


def make_etag(kind: str, entity_id: str, version: int) -> str:
    """An opaque etag that changes whenever `version` does."""
    digest = hashlib.blake2b(f"{kind}/{entity_id}/{version}".encode(), digest_size=6).hexdigest()
    return f"{version}-{digest}"


@dataclass(frozen=True)
class Agent:
    """Someone (or something) that can work on a plan's tasks."""

    id: str
    name: str = ""
    capabilities: tuple[str, ...] = ()
    capacity: int = 0
    """Tasks it works on at once; 0 means 1."""


@dataclass(frozen=True)
class Schedule:
    """A task's place in the plan's schedule, in hours from the plan's start."""

    start_offset_hours: float
    end_offset_hours: float


PINNED_KEY = "plansmith.pinned"
"""Task metadata key: `true` (any case) keeps the task's agent when a schedule is optimized
(the API's `Task.pinned` reads and writes it)."""
CONFIDENCE_KEY = "plansmith.confidence"
"""Plan metadata key: the planner's confidence in the generated plan a plan was stored
from, 0 to 1 (the API's `Plan.confidence` reads it)."""


@dataclass(frozen=True)
class Plan:
    """A stored plan."""

    id: str
    project_id: str
    name: str
    description: str = ""
    objectives: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    status: PlanStatus = PlanStatus.DRAFT
    agents: tuple[Agent, ...] = ()
    create_time: int = 0
    update_time: int = 0
    version: int = 1
    """Counts changes of the plan's own fields; the etag derives from it."""
    revision: int = 0
    """Counts every mutation of the plan or its tasks."""
    replan_policy: ReplanPolicy | None = None
    """How the plan recovers from failures; None means the defaults."""

    @property
    def etag(self) -> str:
        return make_etag("plan", self.id, self.version)

    @property
    def confidence(self) -> float | None:
        """The `CONFIDENCE_KEY` entry as a number from 0 to 1, or None (absent or not one)."""
        try:
            value = float(self.metadata[CONFIDENCE_KEY])
        except (KeyError, ValueError):
            return None
        return value if 0.0 <= value <= 1.0 else None

    def agent_ids(self) -> set[str]:
        return {a.id for a in self.agents}

    @cached_property
    def approx_bytes(self) -> int:
        """About how much memory the plan holds, for caches to weigh it: its text, plus
        CPython's ~64 bytes per string object and ~100 per agent or metadata entry (the
        largest plan the API accepts: ~2.5 MB, most of it agents' capabilities). Taken
        once per plan object (it never changes)."""
        return (
            _strings((self.id, self.project_id, self.name, self.description))
            + _strings(self.objectives)
            + _strings(self.constraints)
            + _entries(self.metadata)
            + sum(
                _OBJECT + _strings((a.id, a.name)) + _strings(a.capabilities) for a in self.agents
            )
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["metadata"] = dict(self.metadata)
        d["replan_policy"] = self.replan_policy.to_dict() if self.replan_policy else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            id=d["id"],
            project_id=d["project_id"],
            name=d["name"],
            description=d["description"],
            objectives=tuple(d["objectives"]),
            constraints=tuple(d["constraints"]),
            metadata=dict(d["metadata"]),
            status=PlanStatus(d["status"]),
            agents=tuple(
                Agent(a["id"], a["name"], tuple(a["capabilities"]), a.get("capacity", 0))
                for a in d["agents"]
            ),
            create_time=d["create_time"],
            update_time=d["update_time"],
            version=d["version"],
            revision=d["revision"],
            replan_policy=ReplanPolicy.from_dict(d.get("replan_policy")),
        )


@dataclass(frozen=True)
class Task:
    """A stored task.

    `version` increases with every change of any field (and the etag with it), so
    (id, version) names one content for good: caches key on it (`lru.py`).
    """

    id: str
    plan_id: str
    title: str
    description: str = ""
    priority: TaskPriority = TaskPriority.MEDIUM
    status: TaskStatus = TaskStatus.TODO
    estimated_hours: float = 0.0
    actual_hours: float = 0.0
    progress: int = 0
    dependencies: tuple[str, ...] = ()
    assigned_to: str = ""
    required_capabilities: tuple[str, ...] = ()
    parent_task_id: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    optimistic_hours: float = 0.0
    pessimistic_hours: float = 0.0
    acceptance_criteria: tuple[str, ...] = ()
    schedule: Schedule | None = None
    create_time: int = 0
    update_time: int = 0
    version: int = 1
    not_before: int = 0
    """µs; the task may not start before it (a retry's backoff); 0 means any time."""
    outputs: Mapping[str, str] = field(default_factory=dict)
    """What the task produced (`CompleteTask`)."""
    blocked_reason: str = ""
    """Why the replanner made the task BLOCKED (a dependency that failed); '' otherwise."""

    @property
    def etag(self) -> str:
        return make_etag("task", self.id, self.version)

    @property
    def pinned(self) -> bool:
        """Whether the `PINNED_KEY` entry is `true`: optimizing keeps the task's agent."""
        return self.metadata.get(PINNED_KEY, "").lower() == "true"

    @cached_property
    def approx_bytes(self) -> int:
        """About how much memory the task holds, for caches to weigh it: its text, plus
        CPython's ~64 bytes per string object and ~100 per metadata entry (~2 kB for a
        typical task, ~250 kB for the largest the API accepts). Taken once per task
        object (it never changes): the store's cache and every cached page holding the
        task weigh it."""
        return (
            _strings(
                (
                    self.id,
                    self.plan_id,
                    self.title,
                    self.description,
                    self.assigned_to,
                    self.parent_task_id,
                    self.blocked_reason,
                )
            )
            + _strings(self.dependencies)
            + _strings(self.required_capabilities)
            + _strings(self.acceptance_criteria)
            + _entries(self.metadata)
            + _entries(self.outputs)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (for the change log and idempotency records). Spelled out
        rather than `asdict`, which deep-copies field by field: this runs on every write."""
        s = self.schedule
        return {
            "id": self.id,
            "plan_id": self.plan_id,
            "title": self.title,
            "description": self.description,
            "priority": int(self.priority),
            "status": int(self.status),
            "estimated_hours": self.estimated_hours,
            "actual_hours": self.actual_hours,
            "progress": self.progress,
            "dependencies": list(self.dependencies),
            "assigned_to": self.assigned_to,
            "required_capabilities": list(self.required_capabilities),
            "parent_task_id": self.parent_task_id,
            "metadata": dict(self.metadata),
            "optimistic_hours": self.optimistic_hours,
            "pessimistic_hours": self.pessimistic_hours,
            "acceptance_criteria": list(self.acceptance_criteria),
            "schedule": (
                None
                if s is None
                else {
                    "start_offset_hours": s.start_offset_hours,
                    "end_offset_hours": s.end_offset_hours,
                }
            ),
            "create_time": self.create_time,
            "update_time": self.update_time,
            "version": self.version,
            "not_before": self.not_before,
            "outputs": dict(self.outputs),
            "blocked_reason": self.blocked_reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Task:
        sched = d.get("schedule")
        return cls(
            id=d["id"],
            plan_id=d["plan_id"],
            title=d["title"],
            description=d["description"],
            priority=TaskPriority(d["priority"]),
            status=TaskStatus(d["status"]),
            estimated_hours=d["estimated_hours"],
            actual_hours=d["actual_hours"],
            progress=d["progress"],
            dependencies=tuple(d["dependencies"]),
            assigned_to=d["assigned_to"],
            required_capabilities=tuple(d["required_capabilities"]),
            parent_task_id=d["parent_task_id"],
            metadata=dict(d["metadata"]),
            optimistic_hours=d.get("optimistic_hours", 0.0),
            pessimistic_hours=d.get("pessimistic_hours", 0.0),
            acceptance_criteria=tuple(d.get("acceptance_criteria", ())),
            schedule=Schedule(**sched) if sched else None,
            create_time=d["create_time"],
            update_time=d["update_time"],
            version=d["version"],
            not_before=d.get("not_before", 0),
            outputs=dict(d.get("outputs", {})),
            blocked_reason=d.get("blocked_reason", ""),
        )


# Fields a caller may change with an update mask; the rest are output only or immutable.
PLAN_MUTABLE_FIELDS = (
    "name",
    "description",
    "objectives",
    "constraints",
    "metadata",
    "status",
    "agents",
    "replan_policy",
)
TASK_MUTABLE_FIELDS = (
    "title",
    "description",
    "priority",
    "status",
    "estimated_hours",
    "actual_hours",
    "progress",
    "dependencies",
    "assigned_to",
    "required_capabilities",
    "metadata",
    "optimistic_hours",
    "pessimistic_hours",
    "acceptance_criteria",
    "schedule",
    "not_before",
)


@dataclass(frozen=True)
class ListFilter:
    """Filters of a list call; `key()` binds page tokens to them."""

    values: tuple[tuple[str, str], ...]

    def key(self) -> str:
        raw = "&".join(f"{k}={v}" for k, v in self.values)
        return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, eq=False)
class Page:
    """One page of a list call. Compared and hashed by identity: a cached page is the
    same object each time it is served, and callers key what they derive from it (the
    API's encoding) on the page itself."""

    items: tuple[Any, ...]
    next_page_token: str
    total_size: int


@dataclass(frozen=True)
class ChangeRecord:
    """One entry of a plan's change log, replayable by a future watch stream."""

    kind: str
    """PLAN_CREATED, PLAN_UPDATED, PLAN_DELETED, TASK_CREATED, TASK_UPDATED, TASK_DELETED."""
    entity_type: str
    entity_id: str
    snapshot: Mapping[str, Any]


@dataclass(frozen=True)
class Availability:
    """Whether an agent takes work, as stored (`SetAgentAvailability`, `Heartbeat`)."""

    agent_id: str
    available: bool = True
    until: int = 0
    """µs; 0 means until changed. After it the stated availability no longer holds."""
    reason: str = ""
    last_heartbeat: int = 0
    """µs; 0 when the agent never sent one (then no timeout applies)."""
    timed_out: bool = False
    """Made unavailable by the heartbeat timeout (its next heartbeat makes it available)."""

    def available_at(self, now: int, heartbeat_timeout: int) -> tuple[bool, str]:
        """Whether the agent takes work at `now` (µs), and why not."""
        if not self.available and (self.timed_out or not self.until or now < self.until):
            return False, self.reason or "set unavailable"
        if self.available and self.last_heartbeat and now - self.last_heartbeat > heartbeat_timeout:
            return False, (
                f"no heartbeat for {(now - self.last_heartbeat) / 1e6:.0f} s "
                f"(timeout {heartbeat_timeout / 1e6:.0f} s)"
            )
        return True, ""


class ReplanState(IntEnum):
    """Mirrors `plansmith.v1.ReplanState`."""

    UNSPECIFIED = 0
    APPLIED = 1
    PROPOSED = 2
    SUPERSEDED = 3
    DRY_RUN = 4


class ReplanTrigger(IntEnum):
    """Mirrors `plansmith.v1.ReplanTrigger`."""

    UNSPECIFIED = 0
    TASK_FAILURE = 1
    AGENT_UNAVAILABLE = 2


@dataclass(frozen=True)
class ReplanRecord:
    """One replanning decision of a plan's history (stored in `replan_records`)."""

    id: str
    plan_id: str
    revision: int
    task_id: str
    category: int
    """A `failures.FailureCategory` value."""
    decision: int
    """A `policy.ReplanDecision` value."""
    confidence: float
    reason: str
    state: ReplanState
    trigger: ReplanTrigger
    create_time: int
    tasks_added: tuple[str, ...] = ()
    tasks_changed: tuple[str, ...] = ()
    tasks_removed: tuple[str, ...] = ()
    failure: Mapping[str, Any] | None = None
    """`TaskFailure.to_dict()` of the failure reported, if any."""
    agent_id: str = ""
    new_agent_id: str = ""
    not_before: int = 0
    attempt: int = 0
    applied_revision: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = int(self.state)
        d["trigger"] = int(self.trigger)
        d["failure"] = dict(self.failure) if self.failure is not None else None
        for k in ("tasks_added", "tasks_changed", "tasks_removed"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReplanRecord:
        values = dict(d)
        values["state"] = ReplanState(d["state"])
        values["trigger"] = ReplanTrigger(d["trigger"])
        for k in ("tasks_added", "tasks_changed", "tasks_removed"):
            values[k] = tuple(d[k])
        return cls(**values)


_STRING = 64  # a str object's header and its slot in a tuple or dict, roughly
_OBJECT = 100  # a small object (an agent) or a dict entry, roughly


def _strings(values: Iterable[str]) -> int:
    return sum(len(v) + _STRING for v in values)


def _entries(mapping: Mapping[str, str]) -> int:
    return sum(len(k) + len(v) + 2 * _STRING + _OBJECT for k, v in mapping.items())
