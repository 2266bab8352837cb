"""Conversions between `plansmith.v1` messages and domain models, in pairs.

`*_from_proto` turns enum numbers into the domain's enums. A number the API does not
define is not refused here but carried typed (`StoredEnum.from_wire`, `Unrecognized`), so
that the domain's validation reports it with the request's other problems, all at once.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from google.protobuf import duration_pb2
from google.protobuf import message as _message
from google.protobuf.timestamp_pb2 import Timestamp

from plansmith.v1 import agent_pb2, execution_pb2, plan_pb2, plan_service_pb2, task_pb2
from plansmith_server.domain.failures import FailureCategory, TaskFailure
from plansmith_server.domain.models import (
    PINNED_KEY,
    PLAN_MUTABLE_FIELDS,
    TASK_MUTABLE_FIELDS,
    Agent,
    Availability,
    Page,
    Plan,
    PlanStatus,
    ReplanRecord,
    Schedule,
    Task,
    TaskPriority,
    TaskStatus,
)
from plansmith_server.domain.mutations import NO_MUTATION, Mutation
from plansmith_server.domain.policy import (
    DEFAULT_BACKOFF_S,
    RecoveryRule,
    ReplanDecision,
    ReplanPolicy,
)
from plansmith_server.domain.validation import field_names
from plansmith_server.errors import FieldViolation, InvalidArgumentError
from plansmith_server.lru import LruCache, blocks


def timestamp(us: int) -> Timestamp:
    return Timestamp(**_ts_fields(us))


def duration_seconds(d: duration_pb2.Duration, field: str) -> float:
    """A Duration in seconds. Protobuf parses any pair of numbers; one the type's rules
    forbid (nanos past +-999,999,999, or of the other sign than seconds) is the caller's
    error rather than a time limit read some other way."""
    s, n = d.seconds, d.nanos
    if not -999_999_999 <= n <= 999_999_999 or (s > 0 > n) or (s < 0 < n):
        raise InvalidArgumentError(
            [
                FieldViolation(
                    field,
                    f"is not a valid Duration (seconds {s}, nanos {n}): nanos must be "
                    "within +-999,999,999 and not of the other sign than seconds",
                )
            ]
        )
    return s + n / 1e9


def agent_from_proto(a: agent_pb2.Agent) -> Agent:
    return Agent(id=a.id, name=a.name, capabilities=tuple(a.capabilities), capacity=a.capacity)


def agent_to_proto(a: Agent) -> agent_pb2.Agent:
    return agent_pb2.Agent(
        id=a.id, name=a.name, capabilities=list(a.capabilities), capacity=a.capacity
    )


def policy_from_proto(p: execution_pb2.ReplanPolicy) -> ReplanPolicy:
    return ReplanPolicy(
        confidence_threshold=p.confidence_threshold,
        rules=tuple(
            RecoveryRule(
                category=cast(FailureCategory, r.category),
                method=r.method,
                labels=tuple(r.labels),
                ladder=tuple(cast(ReplanDecision, d) for d in r.ladder),
                retry_budget=r.retry_budget,
                retry_backoff_s=(
                    duration_seconds(
                        r.retry_backoff, f"plan.replan_policy.rules[{i}].retry_backoff"
                    )
                    if r.HasField("retry_backoff")
                    else DEFAULT_BACKOFF_S
                ),
            )
            for i, r in enumerate(p.rules)
        ),
    )


def policy_to_proto(p: ReplanPolicy) -> execution_pb2.ReplanPolicy:
    msg = execution_pb2.ReplanPolicy(confidence_threshold=p.confidence_threshold)
    for r in p.rules:
        rule = msg.rules.add(
            category=cast(Any, int(r.category)),
            method=r.method,
            labels=list(r.labels),
            ladder=[cast(Any, int(d)) for d in r.ladder],
            retry_budget=r.retry_budget,
        )
        rule.retry_backoff.FromNanoseconds(round(r.retry_backoff_s * 1e9))
    return msg


def plan_from_proto(p: plan_pb2.Plan) -> Plan:
    return Plan(
        id=p.id,
        project_id=p.project_id,
        name=p.name,
        description=p.description,
        objectives=tuple(p.objectives),
        constraints=tuple(p.constraints),
        metadata=dict(p.metadata),
        status=PlanStatus.from_wire(p.status),
        agents=tuple(agent_from_proto(a) for a in p.agents),
        replan_policy=policy_from_proto(p.replan_policy) if p.HasField("replan_policy") else None,
    )


def plan_to_proto(p: Plan) -> plan_pb2.Plan:
    msg = _plan_to_proto(p)
    if p.replan_policy is not None:
        msg.replan_policy.CopyFrom(policy_to_proto(p.replan_policy))
    return msg


def _plan_to_proto(p: Plan) -> plan_pb2.Plan:
    return plan_pb2.Plan(
        id=p.id,
        project_id=p.project_id,
        name=p.name,
        description=p.description,
        objectives=list(p.objectives),
        constraints=list(p.constraints),
        metadata=dict(p.metadata),
        status=cast(plan_pb2.PlanStatus.ValueType, int(p.status)),
        agents=[agent_to_proto(a) for a in p.agents],
        create_time=timestamp(p.create_time),
        update_time=timestamp(p.update_time),
        etag=p.etag,
        revision=p.revision,
        confidence=p.confidence,
    )


def task_from_proto(t: task_pb2.Task) -> Task:
    return Task(
        id=t.id,
        plan_id=t.plan_id,
        title=t.title,
        description=t.description,
        priority=TaskPriority.from_wire(t.priority),
        status=TaskStatus.from_wire(t.status),
        estimated_hours=t.estimated_hours,
        actual_hours=t.actual_hours,
        progress=t.progress,
        dependencies=tuple(t.dependencies),
        assigned_to=t.assigned_to,
        required_capabilities=tuple(t.required_capabilities),
        parent_task_id=t.parent_task_id,
        metadata=dict(t.metadata),
        optimistic_hours=t.optimistic_hours,
        pessimistic_hours=t.pessimistic_hours,
        acceptance_criteria=tuple(t.acceptance_criteria),
        schedule=(
            Schedule(t.schedule.start_offset_hours, t.schedule.end_offset_hours)
            if t.HasField("schedule")
            else None
        ),
        not_before=_us(t.not_before) if t.HasField("not_before") else 0,
    )


def new_task_from_proto(t: task_pb2.Task) -> Task:
    """A task to create: `task_from_proto`, with `pinned`, when set, written as the
    metadata entry it is the typed form of (`PINNED_KEY`: `true`, or removed). Updates
    do not do this: an update changes a pin through `metadata`, and a task read, edited
    and sent back whole must not have its metadata rewritten by the echoed field."""
    task = task_from_proto(t)
    if not t.HasField("pinned"):
        return task
    metadata = dict(task.metadata)
    if t.pinned:
        metadata[PINNED_KEY] = "true"
    else:
        metadata.pop(PINNED_KEY, None)
    return replace(task, metadata=metadata)


def _ts_fields(us: int) -> dict[str, int]:
    # A dict where the constructor wants a Timestamp: it fills the field in place, where a
    # Timestamp object would be built and then copied (this runs for every task served).
    return {"seconds": us // 1_000_000, "nanos": (us % 1_000_000) * 1000}


def task_to_proto(t: Task) -> task_pb2.Task:
    msg = task_pb2.Task(
        id=t.id,
        plan_id=t.plan_id,
        title=t.title,
        description=t.description,
        priority=cast(task_pb2.TaskPriority.ValueType, int(t.priority)),
        status=cast(task_pb2.TaskStatus.ValueType, int(t.status)),
        estimated_hours=t.estimated_hours,
        actual_hours=t.actual_hours,
        progress=t.progress,
        dependencies=t.dependencies,
        assigned_to=t.assigned_to,
        required_capabilities=t.required_capabilities,
        parent_task_id=t.parent_task_id,
        metadata=t.metadata,
        # Dicts where Timestamps are typed: protobuf fills them in place (see _ts_fields).
        create_time=_ts_fields(t.create_time),  # type: ignore[arg-type]
        update_time=_ts_fields(t.update_time),  # type: ignore[arg-type]
        etag=t.etag,
        optimistic_hours=t.optimistic_hours,
        pessimistic_hours=t.pessimistic_hours,
        acceptance_criteria=t.acceptance_criteria,
        pinned=t.pinned,
    )
    if t.schedule is not None:
        msg.schedule.start_offset_hours = t.schedule.start_offset_hours
        msg.schedule.end_offset_hours = t.schedule.end_offset_hours
    if t.not_before:
        msg.not_before.seconds, msg.not_before.nanos = divmod(t.not_before, 1_000_000)
        msg.not_before.nanos *= 1000
    if t.outputs:
        msg.outputs.update(t.outputs)
    if t.blocked_reason:
        msg.blocked_reason = t.blocked_reason
    return msg


_ONE_TASK_PAGE = plan_service_pb2.ListTasksResponse  # its `tasks` is field 1


class TaskEncodings:
    """Tasks encoded for the read paths that serve the same tasks over and over, cached by
    (id, version): the version changes with every change of a task. And whole list
    responses, by the page they encode (the domain serves the same `Page` object again
    while the plan does not change)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        # Weighed in `lru.blocks` of 4 KiB, like the store's cache of the same tasks.
        self._cache: LruCache[tuple[str, int], bytes] = LruCache(maxsize, weight=_encoded_weight)
        # Weakly keyed by the page (pages compare and hash by identity): an encoding lives
        # as long as the domain keeps its page, within the domain cache's bound, and none
        # is kept when the domain keeps no pages.
        self._pages: weakref.WeakKeyDictionary[Page, bytes] = weakref.WeakKeyDictionary()

    @property
    def cache(self) -> LruCache[tuple[str, int], bytes]:
        """Encoded tasks by (id, version), for the status report."""
        return self._cache

    def list_response(self, page: Page) -> bytes:
        """A whole ListTasksResponse holding `page`: its tasks field from `listed`, the
        rest appended (concatenated encodings merge)."""
        data = self._pages.get(page)
        if data is None:
            tail = plan_service_pb2.ListTasksResponse(
                next_page_token=page.next_page_token, total_size=page.total_size
            ).SerializeToString()
            data = self._pages[page] = self.listed(page.items) + tail
        return data

    def one(self, task: Task) -> bytes:
        """`listed((task,))`, without building lists for one task."""
        return self._cache.get((task.id, task.version)) or self._encode(task)

    def _encode(self, task: Task) -> bytes:
        """Encodes a task the cache does not hold, and keeps the encoding."""
        data = _ONE_TASK_PAGE(tasks=[task_to_proto(task)]).SerializeToString()
        self._cache.put((task.id, task.version), data)
        return data

    def listed(self, tasks: Sequence[Task]) -> bytes:
        """The encoded `tasks` field (field 1) of a list response holding `tasks`; for one
        task, also a whole GetTaskResponse (whose `task` is field 1 too).

        Protobuf merges concatenated encodings of a message, appending repeated fields,
        so the encodings of one-task responses, cached and joined, are the page's field:
        no message is built or copied per call, the bulk of a page's cost (see
        docs/performance.md). Protobuf does all the encoding."""
        cached = self._cache.get_many([(t.id, t.version) for t in tasks])
        for i, (t, data) in enumerate(zip(tasks, cached, strict=True)):
            if data is None:
                cached[i] = self._encode(t)
        return b"".join(cached)  # type: ignore[arg-type]  # no None left: filled above


def update_fields(msg: _message.Message, mask_paths: Sequence[str], kind: str) -> list[str]:
    """The fields an update changes: the mask's (with `*` expanded), or, for an empty mask,
    the fields set to non-default values in `msg` (AIP-134)."""
    allowed = PLAN_MUTABLE_FIELDS if kind == "plan" else TASK_MUTABLE_FIELDS
    if mask_paths:
        return field_names(list(mask_paths), allowed)
    present = {fd.name for fd, _ in msg.ListFields()}
    return [f for f in allowed if f in present]


def mutation(request: Any) -> Mutation:
    """The idempotency key of a mutating request, and the fingerprint it is checked with
    (only a request_id is checked against one: without it, none is computed)."""
    request_id = request.request_id
    if not request_id:
        return NO_MUTATION
    return Mutation(request_id=request_id, fingerprint=fingerprint(request))


def fingerprint(request: Any) -> str:
    """A hash of the request without its request_id: same request, same fingerprint."""
    # Cleared and restored in place: the same bytes as a copy without it, without copying.
    request_id = request.request_id
    request.ClearField("request_id")
    try:
        return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    finally:
        request.request_id = request_id


def draft_task_to_proto(t: Task) -> task_pb2.Task:
    """A task that is not stored (local id): without the output-only stored fields."""
    msg = task_to_proto(t)
    msg.ClearField("create_time")
    msg.ClearField("update_time")
    msg.etag = ""
    return msg


def _encoded_weight(data: bytes) -> int:
    return blocks(len(data))


def _us(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def failure_from_proto(f: execution_pb2.TaskFailure) -> TaskFailure:
    return TaskFailure(
        category=cast(FailureCategory, f.category),
        message=f.message,
        retry_after_s=duration_seconds(f.retry_after, "failure.retry_after"),
        evidence=dict(f.evidence),
        facts_added=tuple(f.facts_added),
        facts_removed=tuple(f.facts_removed),
    )


def failure_to_proto(d: Mapping[str, Any]) -> execution_pb2.TaskFailure:
    f = TaskFailure.from_dict(d)
    msg = execution_pb2.TaskFailure(
        category=cast(Any, int(f.category)),
        message=f.message,
        evidence=dict(f.evidence),
        facts_added=list(f.facts_added),
        facts_removed=list(f.facts_removed),
    )
    msg.retry_after.FromNanoseconds(round(f.retry_after_s * 1e9))
    return msg


def record_to_proto(r: ReplanRecord) -> execution_pb2.ReplanRecord:
    msg = execution_pb2.ReplanRecord(
        id=r.id,
        plan_id=r.plan_id,
        revision=r.revision,
        task_id=r.task_id,
        category=cast(Any, r.category),
        decision=cast(Any, r.decision),
        tasks_added=list(r.tasks_added),
        tasks_changed=list(r.tasks_changed),
        tasks_removed=list(r.tasks_removed),
        confidence=r.confidence,
        reason=r.reason,
        create_time=timestamp(r.create_time),
        state=cast(Any, int(r.state)),
        applied_revision=r.applied_revision,
        trigger=cast(Any, int(r.trigger)),
        agent_id=r.agent_id,
        new_agent_id=r.new_agent_id,
        attempt=r.attempt,
    )
    if r.failure is not None:
        msg.failure.CopyFrom(failure_to_proto(r.failure))
    if r.not_before:
        msg.not_before.CopyFrom(timestamp(r.not_before))
    return msg


def availability_to_proto(a: Availability) -> execution_pb2.AgentAvailability:
    msg = execution_pb2.AgentAvailability(
        agent_id=a.agent_id, available=a.available, reason=a.reason
    )
    if a.until:
        msg.until.CopyFrom(timestamp(a.until))
    if a.last_heartbeat:
        msg.last_heartbeat_time.CopyFrom(timestamp(a.last_heartbeat))
    return msg


def time_us(ts: Timestamp, field: str) -> int:
    """A Timestamp in µs since the epoch; one outside the type's rules is the caller's error."""
    if not 0 <= ts.nanos <= 999_999_999 or ts.seconds < 0 or ts.seconds > 253_402_300_799:
        raise InvalidArgumentError(
            [FieldViolation(field, "is not a valid Timestamp after 1970 and before 10000")]
        )
    return _us(ts)
