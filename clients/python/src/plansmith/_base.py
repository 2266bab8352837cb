"""What the sync and async clients share: settings and I/O-free request building.

The two clients differ only in how they call the stubs (`await` or not); everything
that builds a request, parses an enum argument, makes an update mask or walks to a page
number lives here, once.
"""

from __future__ import annotations

import contextlib
import re
import reprlib
import socket
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf import duration_pb2, field_mask_pb2, json_format, struct_pb2
from google.protobuf.message import Message

from plansmith._defaults import DEFAULT, UNSET, DefaultType
from plansmith.enums import EnumArg, parse_enum
from plansmith.errors import ArgumentError, DeadlineExceededError, argument_error
from plansmith.interceptors import InterceptorChain
from plansmith.interceptors._common import new_request_id, rpc_method
from plansmith.resource_metadata import encode_metadata
from plansmith.retry import NO_RETRY, RetryPolicy, RetryStats
from plansmith.v1 import (
    agent_pb2,
    flow_pb2,
    generation_pb2,
    plan_pb2,
    plan_service_pb2,
    planning_service_pb2,
    task_pb2,
)

FlowArg = flow_pb2.Flow | Mapping[str, Any]
"""A flow: the message, or a dict in its JSON form (as in examples/flows/*.json)."""


def flow_message(flow: FlowArg, flow_id: str = "", etag: str = "") -> flow_pb2.Flow:
    """`flow` as a `Flow` message (a copy), with `id` and `etag` set when given."""
    if isinstance(flow, flow_pb2.Flow):
        msg = flow_pb2.Flow()
        msg.CopyFrom(flow)
    elif isinstance(flow, Mapping):
        try:
            msg = json_format.ParseDict(dict(flow), flow_pb2.Flow())
        except json_format.ParseError as exc:
            raise argument_error("flow", f"is not a Flow in its JSON form: {exc}") from None
    else:
        raise argument_error("flow", "must be a Flow message or a dict in its JSON form")
    if flow_id:
        msg.id = flow_id
    if etag:
        msg.etag = etag
    return msg


def struct_of(values: Mapping[str, Any] | None, name: str) -> struct_pb2.Struct:
    """A state as a `google.protobuf.Struct` (JSON values)."""
    out = struct_pb2.Struct()
    if values:
        try:
            out.update(dict(values))
        except (TypeError, ValueError) as exc:
            raise argument_error(name, f"must hold JSON values: {exc}") from None
    return out


DEFAULT_TIMEOUT = 30.0
"""Seconds a call may take, all retries included, unless the client or call says otherwise."""

RPC_METHODS: dict[str, str] = {
    "/plansmith.v1.PlanService/CreatePlan": "create_plan",
    "/plansmith.v1.PlanService/GetPlan": "get_plan",
    "/plansmith.v1.PlanService/ListPlans": "get_plans",
    "/plansmith.v1.PlanService/UpdatePlan": "update_plan",
    "/plansmith.v1.PlanService/DeletePlan": "delete_plan",
    "/plansmith.v1.PlanService/CreateTask": "create_task",
    "/plansmith.v1.PlanService/BatchCreateTasks": "batch_create_tasks",
    "/plansmith.v1.PlanService/GetTask": "get_task",
    "/plansmith.v1.PlanService/ListTasks": "get_tasks",
    "/plansmith.v1.PlanService/UpdateTask": "update_task",
    "/plansmith.v1.PlanService/DeleteTask": "delete_task",
    "/plansmith.v1.PlanService/StartTask": "start_task",
    "/plansmith.v1.PlanService/CompleteTask": "complete_task",
    "/plansmith.v1.PlanService/ReportTaskFailure": "report_task_failure",
    "/plansmith.v1.PlanService/SetAgentAvailability": "set_agent_availability",
    "/plansmith.v1.PlanService/Heartbeat": "heartbeat",
    "/plansmith.v1.PlanService/ApplyReplan": "apply_replan",
    "/plansmith.v1.PlanService/ListReplanRecords": "get_replan_records",
    "/plansmith.v1.PlanService/WatchPlan": "watch_plan",
    "/plansmith.v1.PlanningService/GeneratePlan": "generate_plan",
    "/plansmith.v1.PlanningService/StreamGeneratePlan": "stream_generate_plan",
    "/plansmith.v1.PlanningService/DecomposeTask": "decompose_task",
    "/plansmith.v1.PlanningService/EstimateTaskDuration": "estimate_task_duration",
    "/plansmith.v1.PlanningService/OptimizePlan": "optimize_plan",
    "/plansmith.v1.PlanningService/AnalyzePlan": "analyze_plan",
    "/plansmith.v1.PlanningService/SuggestNextTasks": "suggest_next_tasks",
    "/plansmith.v1.OpsService/GetServiceStatus": "get_service_status",
    "/plansmith.v1.FlowService/CreateFlow": "create_flow",
    "/plansmith.v1.FlowService/GetFlow": "get_flow",
    "/plansmith.v1.FlowService/ListFlows": "get_flows",
    "/plansmith.v1.FlowService/UpdateFlow": "update_flow",
    "/plansmith.v1.FlowService/DeleteFlow": "delete_flow",
    "/plansmith.v1.FlowService/PlanExecutionPath": "plan_execution_path",
    "/plansmith.v1.FlowService/StartFlowRun": "start_flow_run",
    "/plansmith.v1.FlowService/AdvanceFlowRun": "advance_flow_run",
    "/plansmith.v1.FlowService/GetFlowRun": "get_flow_run",
    "/plansmith.v1.FlowService/ListFlowRuns": "get_flow_runs",
}
"""The client method of every RPC (a test fails when an RPC of plansmith.v1 is missing)."""

SERVICE_STUBS: dict[str, str] = {
    "plansmith.v1.PlanService": "plans",
    "plansmith.v1.PlanningService": "planning",
    "plansmith.v1.OpsService": "ops",
    "plansmith.v1.FlowService": "flows",
}
"""The client attribute holding each service's raw stub."""

PLAN_UPDATABLE = (
    "name",
    "description",
    "objectives",
    "constraints",
    "metadata",
    "status",
    "agents",
    "replan_policy",
)
TASK_UPDATABLE = (
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

_UPDATES: dict[type[Any], tuple[type[Any], str, Sequence[str]]] = {
    plan_pb2.Plan: (plan_service_pb2.UpdatePlanRequest, "plan", PLAN_UPDATABLE),
    task_pb2.Task: (plan_service_pb2.UpdateTaskRequest, "task", TASK_UPDATABLE),
}
"""Per updatable resource: its update request, the request field holding it and the
fields an update may set."""

AgentArg = agent_pb2.Agent | Mapping[str, Any] | str
"""An agent: the message, a dict of its fields, or just its id."""
TaskArg = task_pb2.Task | Mapping[str, Any]
"""A task for `batch_create_tasks`: the message or a dict of `create_task`'s fields
(with `id` as the batch-local reference other tasks' `dependencies` may name)."""
ScheduleArg = task_pb2.TaskSchedule | Mapping[str, float] | tuple[float, float]

_ENUMS: dict[tuple[str, str], Any] = {
    ("Plan", "status"): plan_pb2.PlanStatus,
    ("Task", "status"): task_pb2.TaskStatus,
    ("Task", "priority"): task_pb2.TaskPriority,
}

M = TypeVar("M", bound=Message)


def to_agent(agent: AgentArg) -> agent_pb2.Agent:
    if isinstance(agent, agent_pb2.Agent):
        return agent
    if isinstance(agent, str):
        return agent_pb2.Agent(id=agent)
    return agent_pb2.Agent(**dict(agent))


def to_schedule(value: ScheduleArg) -> task_pb2.TaskSchedule:
    if isinstance(value, task_pb2.TaskSchedule):
        return value
    if isinstance(value, tuple):
        start, end = value
        return task_pb2.TaskSchedule(start_offset_hours=start, end_offset_hours=end)
    return task_pb2.TaskSchedule(**dict(value))


def _a_list(name: str, value: Any, of: str = "strings") -> Any:
    """`value` as given, unless it is a single string or mapping: iterating one would
    yield its characters or keys (`objectives="go live"` would become seven one-letter
    objectives, `agents={"id": "bob"}` an agent named "id")."""
    if isinstance(value, str):
        raise argument_error(name, f"expected a list of {of}, got a string", wrong_type=True)
    if isinstance(value, Mapping | agent_pb2.Agent):
        single = "agent" if of == "agents" else type(value).__name__
        raise argument_error(
            name, f"expected a list of {of}, got a single {single}", wrong_type=True
        )
    return value


def _agents(name: str, value: Any) -> list[agent_pb2.Agent]:
    """A list of agents, from Agent messages, dicts or ids."""
    _a_list(name, value, "agents")
    with _naming(name, value):
        return [to_agent(a) for a in value]


def set_field(msg: Any, name: str, value: Any) -> None:
    """Sets `msg.name` from a friendly value: enum names, dicts for maps (`metadata`
    values other than strings in their JSON form, see `plansmith.resource_metadata`), any
    iterable for repeated fields, agents and schedules in their short forms. A value of
    the wrong type raises `ArgumentTypeError` (a `ValidationError` and `TypeError`)
    naming the field."""
    kind = type(msg).DESCRIPTOR.name
    field = type(msg).DESCRIPTOR.fields_by_name[name]
    enum_type = _ENUMS.get((kind, name))
    if enum_type is not None:
        setattr(msg, name, parse_enum(enum_type, value, name))
        return
    if name == "metadata":
        value = encode_metadata(value, name)
    if name == "agents":
        agents = _agents(name, value)
        del msg.agents[:]
        msg.agents.extend(agents)
        return
    if field.is_repeated and not _is_map(field):
        _a_list(name, value)
    # Converting and assigning the caller's value: protobuf's own messages ("bad argument
    # type for built-in operation") do not say which of a call's many arguments was wrong.
    with _naming(name, value):
        if name == "schedule":
            msg.schedule.CopyFrom(to_schedule(value))
        elif name == "replan_policy":
            policy = getattr(msg, name)
            if isinstance(value, Mapping):
                json_format.ParseDict(dict(value), policy)
            else:
                policy.CopyFrom(value)
        elif name == "not_before":
            msg.not_before.FromDatetime(value)
        elif _is_map(field):
            target = getattr(msg, name)
            target.clear()
            target.update(dict(value or {}))
        elif field.is_repeated:
            target = getattr(msg, name)
            del target[:]
            target.extend(value)
        else:
            setattr(msg, name, value)


@contextlib.contextmanager
def _naming(name: str, value: Any) -> Iterator[None]:
    """Re-raises a TypeError or ValueError about the caller's `value` as an
    `ArgumentError` naming its field (the value shortened)."""
    try:
        yield
    except ArgumentError:
        raise
    except (TypeError, ValueError) as exc:
        raise argument_error(
            name,
            f"cannot take {reprlib.repr(value)} ({exc})",
            wrong_type=isinstance(exc, TypeError),
        ) from exc


def build_request(message_type: type[M], **fields: Any) -> M:
    """`message_type(**fields)`; a field protobuf refuses raises an `ArgumentError`
    naming it (protobuf's own message does not say which)."""
    try:
        return message_type(**fields)
    except (TypeError, ValueError):
        for name, value in fields.items():
            with _naming(name, value):
                message_type(**{name: value})
        raise


def _is_map(field: Any) -> bool:
    return field.message_type is not None and bool(field.message_type.GetOptions().map_entry)


def _fill(msg: M, fields: Mapping[str, Any]) -> M:
    for name, value in fields.items():
        if value is not None and value is not UNSET:
            set_field(msg, name, value)
    return msg


def update_mask_and_message(
    msg: Any, fields: Mapping[str, Any], allowed: Sequence[str]
) -> field_mask_pb2.FieldMask:
    """Sets the given fields on `msg` and returns the mask naming exactly them (AIP-134):
    a field given as an empty value is cleared, a field not given is left alone."""
    paths: list[str] = []
    for name in allowed:
        value = fields.get(name, UNSET)
        if value is UNSET:
            continue
        if value is not None:
            set_field(msg, name, value)
        paths.append(name)
    return field_mask_pb2.FieldMask(paths=paths)


def update_request(msg: Any, fields: Mapping[str, Any], request_id: str | None) -> Any:
    """The update request of `msg` (a `Plan` or `Task` carrying its id and etag) with the
    given fields set and named in its mask; refuses an update that names no field (an
    empty mask would replace every field)."""
    request_type, resource, allowed = _UPDATES[type(msg)]
    mask = update_mask_and_message(msg, fields, allowed)
    if not mask.paths:
        raise argument_error("", f"update_{resource}: give at least one field to change")
    return request_type(
        **{resource: msg}, update_mask=mask, request_id=request_id or new_request_id()
    )


def task_message(
    *,
    id: str = "",
    plan_id: str = "",
    title: str = "",
    description: str = "",
    priority: EnumArg | None = None,
    status: EnumArg | None = None,
    estimated_hours: float | None = None,
    actual_hours: float | None = None,
    progress: int | None = None,
    dependencies: Iterable[str] = (),
    assigned_to: str = "",
    required_capabilities: Iterable[str] = (),
    metadata: Mapping[str, str] | None = None,
    optimistic_hours: float | None = None,
    pessimistic_hours: float | None = None,
    acceptance_criteria: Iterable[str] = (),
    schedule: ScheduleArg | None = None,
    pinned: bool | None = None,
) -> task_pb2.Task:
    """A Task message from keyword fields (enum names allowed)."""
    return _fill(
        build_request(task_pb2.Task, id=id, plan_id=plan_id, title=title, description=description),
        {
            "priority": priority,
            "status": status,
            "estimated_hours": estimated_hours,
            "actual_hours": actual_hours,
            "progress": progress,
            "dependencies": dependencies,
            "assigned_to": assigned_to or None,
            "required_capabilities": required_capabilities,
            "metadata": metadata,
            "optimistic_hours": optimistic_hours,
            "pessimistic_hours": pessimistic_hours,
            "acceptance_criteria": acceptance_criteria,
            "schedule": schedule,
            "pinned": pinned,
        },
    )


def to_task(task: TaskArg, plan_id: str = "") -> task_pb2.Task:
    if isinstance(task, task_pb2.Task):
        return task
    fields = dict(task)
    fields.setdefault("plan_id", plan_id)
    return task_message(**fields)


def page_walk(make_request: Any, page: int | str | None) -> Generator[Any, Any, Any]:
    """Sans-I/O paging: yields the list requests to send, receives their responses, and
    returns the response for `page` (a page token, or a 1-based page number reached by
    following tokens from the first page)."""
    if page is None or isinstance(page, str):
        return (yield make_request(page or ""))
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise argument_error("page", "must be a page token or a page number >= 1")
    token = ""
    for _ in range(page - 1):
        response = yield make_request(token)
        token = response.next_page_token
        if not token:
            return type(response)(total_size=response.total_size)
    return (yield make_request(token))


class BaseClient:
    """Settings and request building shared by `PlansmithClient` and
    `AsyncPlansmithClient`."""

    def __init__(
        self,
        *,
        timeout: float | DefaultType | None = DEFAULT,
        chain: InterceptorChain | None = None,
    ) -> None:
        self.timeout: float | None = DEFAULT_TIMEOUT if timeout is DEFAULT else timeout
        """Default deadline of a call in seconds, retries included (None: no deadline)."""
        self.chain = chain
        """The interceptors of the client's channel and their shared state (None when
        the client was given a channel without them)."""

    @property
    def retry_stats(self) -> RetryStats | None:
        """Counters of attempts, retries and successes after retry."""
        return self.chain.retry_stats if self.chain is not None else None

    @property
    def breaker(self) -> Any:
        """The target's `CircuitBreaker` (None when off)."""
        return self.chain.breaker if self.chain is not None else None

    def _timeout_for(self, timeout: float | DefaultType | None) -> float | None:
        return self.timeout if timeout is DEFAULT else timeout

    def _unary_timeout(self, rpc: Any, timeout: float | DefaultType | None) -> float | None:
        """The timeout of a unary call. Without the chain (whose retry interceptor fails
        such a call before sending it), a deadline already passed (`timeout <= 0`) raises
        `DeadlineExceededError` here: grpc itself sends the call anyway and may get an
        answer, depending on the granularity of its timers."""
        seconds = self._timeout_for(timeout)
        if self.chain is None and seconds is not None and seconds <= 0:
            raise DeadlineExceededError(
                f"deadline of {seconds}s exceeded before the call was sent",
                attempts=0,
                method=rpc_method(rpc),
            )
        return seconds

    def _stream_policy(self, retry: RetryPolicy | DefaultType | None) -> RetryPolicy:
        if retry is not DEFAULT:
            return retry or NO_RETRY
        if self.chain is None or self.chain.policies is None:
            return NO_RETRY
        return self.chain.policies.read

    # -- requests -------------------------------------------------------------------------

    @staticmethod
    def _create_plan_request(
        name: str,
        description: str,
        project_id: str,
        objectives: Iterable[str],
        constraints: Iterable[str],
        metadata: Mapping[str, str] | None,
        agents: Iterable[AgentArg],
        status: EnumArg | None,
        request_id: str | None,
    ) -> plan_service_pb2.CreatePlanRequest:
        plan = _fill(
            build_request(plan_pb2.Plan, name=name, description=description, project_id=project_id),
            {
                "objectives": objectives,
                "constraints": constraints,
                "metadata": metadata,
                "agents": agents,
                "status": status,
            },
        )
        return plan_service_pb2.CreatePlanRequest(
            plan=plan, request_id=request_id or new_request_id()
        )

    @staticmethod
    def _update_plan_request(
        plan_id: str, fields: Mapping[str, Any], etag: str, request_id: str | None
    ) -> plan_service_pb2.UpdatePlanRequest:
        msg = plan_pb2.Plan(id=plan_id, etag=etag)
        # update_request builds the request of the message's kind: its type says Any.
        return update_request(msg, fields, request_id)  # type: ignore[no-any-return]

    @staticmethod
    def _list_plans_request(project_id: str, status: EnumArg | None, per_page: int | None) -> Any:
        status_n = parse_enum(plan_pb2.PlanStatus, status, "status") if status is not None else 0
        # A mistyped argument fails here, named, not inside the first page's request.
        build_request(
            plan_service_pb2.ListPlansRequest, project_id=project_id, page_size=per_page or 0
        )

        def make(token: str) -> plan_service_pb2.ListPlansRequest:
            return plan_service_pb2.ListPlansRequest(
                project_id=project_id,
                status=plan_pb2.PlanStatus.ValueType(status_n),
                page_size=per_page or 0,
                page_token=token,
            )

        return make

    @staticmethod
    def _update_task_request(
        task_id: str, fields: Mapping[str, Any], etag: str, request_id: str | None
    ) -> plan_service_pb2.UpdateTaskRequest:
        msg = task_pb2.Task(id=task_id, etag=etag)
        # update_request builds the request of the message's kind: its type says Any.
        return update_request(msg, fields, request_id)  # type: ignore[no-any-return]

    @staticmethod
    def _list_tasks_request(
        plan_id: str,
        status: EnumArg | None,
        assigned_to: str,
        priority: EnumArg | None,
        per_page: int | None,
        project_id: str = "",
    ) -> Any:
        status_n = parse_enum(task_pb2.TaskStatus, status) if status is not None else 0
        priority_n = parse_enum(task_pb2.TaskPriority, priority) if priority is not None else 0

        def make(token: str) -> plan_service_pb2.ListTasksRequest:
            return plan_service_pb2.ListTasksRequest(
                plan_id=plan_id,
                project_id=project_id,
                status=task_pb2.TaskStatus.ValueType(status_n),
                assigned_to=assigned_to,
                priority=task_pb2.TaskPriority.ValueType(priority_n),
                page_size=per_page or 0,
                page_token=token,
            )

        return make


def split_context(context: Mapping[str, Any] | None, metadata: Any) -> tuple[dict[str, Any], Any]:
    """Takes `request_id` out of a caller's `context` dict: it becomes the call's
    `x-request-id` (appended to `metadata`), the rest stays context."""
    if context is not None and not isinstance(context, Mapping):
        raise argument_error(
            "context", f"expected a dict, got {type(context).__name__}", wrong_type=True
        )
    rest = dict(context or {})
    rid = rest.pop("request_id", None)
    if rid:
        metadata = [*(metadata or ()), ("x-request-id", str(rid))]
    return rest, metadata


def plan_brief(
    name: str,
    description: str,
    project_id: str,
    requirements: Iterable[str],
    constraints: Iterable[str],
    agents: Iterable[AgentArg],
    context: Mapping[str, Any] | None,
) -> generation_pb2.PlanBrief:
    """A `PlanBrief`; `context` is a plain dict (becomes a `google.protobuf.Struct`)."""
    brief = build_request(
        generation_pb2.PlanBrief,
        name=name,
        description=description,
        project_id=project_id,
        requirements=list(_a_list("requirements", requirements)),
        constraints=list(_a_list("constraints", constraints)),
        available_agents=_agents("available_agents", agents),
    )
    if context:
        ctx = struct_pb2.Struct()
        with _naming("context", context):
            ctx.update(dict(context))
        brief.context.CopyFrom(ctx)
    return brief


def stream_resume(
    request: planning_service_pb2.StreamGeneratePlanRequest, last: Any
) -> planning_service_pb2.StreamGeneratePlanRequest:
    """StreamGeneratePlan reopens with the same request (and request_id): the embedded
    planner makes the same events again, and a plan from a model is replayed from what the
    server recorded under the request_id."""
    return request


WATCH_RETRY = RetryPolicy(max_retries=30, initial_delay=0.2, max_delay=2.0)
"""How `watch_plan` reopens: about a minute of tries, enough for a server to restart (the
count starts again after every message received)."""


def watch_policy(retry: RetryPolicy | DefaultType | None) -> RetryPolicy:
    if retry is DEFAULT:
        return WATCH_RETRY
    return retry or NO_RETRY


def watch_request(plan_id: str, from_revision: int | None) -> Any:
    from plansmith.v1 import watch_pb2

    if from_revision is not None and (
        isinstance(from_revision, bool) or not isinstance(from_revision, int)
    ):
        raise argument_error(
            "from_revision", f"expected a revision number, got {from_revision!r}", wrong_type=True
        )
    request = build_request(watch_pb2.WatchPlanRequest, plan_id=plan_id)
    if from_revision is not None:
        request.from_revision = from_revision
    return request


def watch_resume(request: Any, last: Any) -> Any:
    """WatchPlan reopens after the last revision delivered: a batch's last revision, or a
    heartbeat's current revision (it is sent only once everything up to it was)."""
    event = last.WhichOneof("event")
    if event == "changes" and last.changes.revisions:
        seen = last.changes.revisions[-1].revision
    elif event == "heartbeat":
        seen = last.heartbeat.current_revision
    else:
        return request
    resumed = type(request)()
    resumed.CopyFrom(request)
    resumed.from_revision = seen
    return resumed


def stream_seen(last: Any, message: Any) -> bool:
    """A replayed StreamGeneratePlan event at or before the last one delivered. Events of
    another generation (a model asked again because its first answer never finished) are
    never mixed in: `StreamNotResumableError`."""
    if message.generation_id != last.generation_id:
        from plansmith.streams import StreamNotResumableError

        raise StreamNotResumableError(
            "StreamGeneratePlan broke before its plan was made, and the reopened stream is a "
            f"new generation ({message.generation_id or 'embedded'} after "
            f"{last.generation_id or 'embedded'}); call it again for a whole plan",
            method="/plansmith.v1.PlanningService/StreamGeneratePlan",
        )
    return bool(message.sequence <= last.sequence)


def enum_list(enum_type: Any, values: Iterable[EnumArg], field: str) -> list[int]:
    return [parse_enum(enum_type, v, field) for v in _a_list(field, values, "names")]


def duration(seconds: float | None, field: str = "time_limit") -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise argument_error(
            field, f"expected seconds as a number, got {seconds!r}", wrong_type=True
        )
    d = duration_pb2.Duration()
    with _naming(field, seconds):
        d.FromNanoseconds(round(seconds * 1e9))
    return d


def credentials_for(tls: bool | grpc.ChannelCredentials | None) -> grpc.ChannelCredentials | None:
    """`tls=True`: TLS with the system roots; a `grpc.ChannelCredentials`: those; else none."""
    if tls is True:
        return grpc.ssl_channel_credentials()
    if isinstance(tls, grpc.ChannelCredentials):
        return tls
    return None


_METADATA_KEY = re.compile(r"[0-9a-z_.-]+")


def call_metadata(metadata: Any, field: str = "call_metadata") -> tuple[tuple[str, Any], ...]:
    """The caller's gRPC metadata (pairs or a dict) checked as gRPC will check it when
    the call starts, so a bad key or value is an `ArgumentError` naming it instead of a
    failure from grpc's core: lowercase keys of `0-9 a-z _ . -` not starting with
    `grpc-`; values are printable ASCII text, or bytes for keys ending in `-bin`."""
    pairs = metadata.items() if isinstance(metadata, Mapping) else metadata
    if isinstance(pairs, str | bytes):
        raise argument_error(field, "expected (key, value) pairs or a dict", wrong_type=True)
    out: list[tuple[str, Any]] = []
    try:
        items = list(pairs)
    except TypeError:
        raise argument_error(
            field, f"expected (key, value) pairs or a dict, got {metadata!r}", wrong_type=True
        ) from None
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise argument_error(
                field, f"expected (key, value) pairs, got {reprlib.repr(item)}", wrong_type=True
            )
        key, value = item
        if not isinstance(key, str) or not _METADATA_KEY.fullmatch(key):
            raise argument_error(
                field,
                f"key {key!r}: keys are lowercase letters, digits and _ . - only",
                wrong_type=not isinstance(key, str),
            )
        if key.startswith("grpc-"):
            raise argument_error(field, f"key {key!r}: grpc- keys are reserved for gRPC")
        if key.endswith("-bin"):
            if not isinstance(value, bytes):
                raise argument_error(
                    field, f"key {key!r} ends in -bin: its value must be bytes", wrong_type=True
                )
        elif not isinstance(value, str):
            raise argument_error(
                field,
                f"key {key!r}: values are text (str), got {type(value).__name__} {value!r}",
                wrong_type=True,
            )
        elif not value.isascii() or not value.isprintable():
            raise argument_error(
                field, f"key {key!r}: values are printable ASCII, got {reprlib.repr(value)}"
            )
        out.append((key, value))
    return tuple(out)


_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.S)
_GRPC_SCHEMES = ("dns", "unix", "unix-abstract", "ipv4", "ipv6", "vsock")


def resolve_targets(target: Any) -> tuple[str, bool, bool]:
    """The gRPC target for one target or several, whether it asks for TLS, and whether
    calls are balanced over several servers (gRPC's round_robin).

    One target is as `parse_target` takes it; `dns:///name:port` is balanced over every
    address the name resolves to (gRPC resolves it again as it reconnects). Several
    targets (a list of `host:port`) become one `ipv4:` (or `ipv6:`) target: names are
    resolved once, here; for a name whose addresses change, give `dns:///name:port`.
    They must agree on TLS (all `https://` or none)."""
    if isinstance(target, str):
        grpc_target, tls = parse_target(target)
        return grpc_target, tls, grpc_target.lower().startswith("dns:")
    if not isinstance(target, Sequence) or not target:
        raise argument_error(
            "target",
            "expected 'host:port' or a non-empty list of them",
            wrong_type=not isinstance(target, Sequence),
        )
    if len(target) == 1:
        return resolve_targets(target[0])
    parsed = [parse_target(t) for t in target]
    if len({tls for _, tls in parsed}) > 1:
        raise argument_error("target", "the targets must all use TLS (https://) or none")
    v4: list[str] = []
    v6: list[str] = []
    for (address, _), given in zip(parsed, target, strict=True):
        m = re.fullmatch(r"\[?(?P<host>[^\[\]]+?)\]?:(?P<port>\d+)", address)
        if m is None:
            raise argument_error(
                "target", f"{given!r}: each of several targets must be host:port"
            )
        host, port = m["host"], int(m["port"])
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise argument_error("target", f"{given!r}: {host} does not resolve ({exc})") from None
        found4 = [i[4][0] for i in infos if i[0] == socket.AF_INET]
        found6 = [i[4][0] for i in infos if i[0] == socket.AF_INET6]
        if found4:
            v4.append(f"{found4[0]}:{port}")
        elif found6:
            v6.append(f"[{found6[0]}]:{port}")
    if v4 and v6:
        raise argument_error(
            "target", "mix of IPv4 and IPv6 servers: give them all in one family"
        )
    grpc_target = f"ipv4:{','.join(v4)}" if v4 else f"ipv6:{','.join(v6)}"
    return grpc_target, parsed[0][1], True


def parse_target(target: Any) -> tuple[str, bool]:
    """The gRPC target for `target`, and whether it asks for TLS.

    `host:port` and gRPC's own forms (`dns:///host:port`, `unix:/path`, ...) are used as
    they are. An HTTP URL (`http://127.0.0.1:50051/api`, as HTTP clients are configured)
    gives its host and port; `https` also means TLS and port 443 by default. The path is
    dropped: gRPC methods have fixed paths. Anything else is an `ArgumentError` saying to
    use `host:port`, instead of a channel that retries an address that cannot exist."""
    if not isinstance(target, str):
        raise argument_error(
            "target", f"expected 'host:port', got {type(target).__name__}", wrong_type=True
        )
    hint = "use host:port (for example localhost:50051)"
    if not target or target != target.strip():
        raise argument_error("target", f"{target!r} is not an address; {hint}")
    m = _URL.fullmatch(target)
    if m is None:
        return target, False
    scheme = m["scheme"].lower()
    if scheme in _GRPC_SCHEMES:
        return target, False
    if scheme not in ("http", "https"):
        raise argument_error("target", f"{target!r}: {scheme}:// is not a gRPC target; {hint}")
    try:
        url = urlsplit(target)
        host, port = url.hostname, url.port
    except ValueError as exc:
        raise argument_error("target", f"{target!r}: {exc}; {hint}") from None
    if not host:
        raise argument_error("target", f"{target!r} names no host; {hint}")
    tls = scheme == "https"
    if port is None:
        if not tls:
            raise argument_error("target", f"{target!r} names no port; {hint}")
        port = 443
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}", tls
