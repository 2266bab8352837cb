# Generated from client.py by scripts/unasync.py: do not edit. Edit client.py and
# run scripts/unasync.py (make lint fails when this file differs from its output).
"""`PlansmithClient`: the sync client (grpc's sync channel and interceptors).

Generated from `client.py` by `scripts/unasync.py`: the methods, arguments, results
and errors of the async client.

Two layers: `client.plans` is the raw generated `PlanServiceStub` on the client's channel
(with its interceptors); the methods below wrap it with keyword arguments, enum names,
update masks, idempotency keys and paging, and return the proto messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import grpc

from plansmith._base import (
    AgentArg,
    BaseClient,
    FlowArg,
    ScheduleArg,
    TaskArg,
    build_request,
    call_metadata,
    credentials_for,
    duration,
    enum_list,
    flow_message,
    page_walk,
    plan_brief,
    resolve_targets,
    split_context,
    stream_resume,
    stream_seen,
    struct_of,
    task_message,
    to_task,
    watch_policy,
    watch_request,
    watch_resume,
)
from plansmith._channels import open_sync_channel
from plansmith._defaults import DEFAULT, UNSET, DefaultType, UnsetType
from plansmith.enums import EnumArg, parse_enum
from plansmith.errors import PlansmithError, from_rpc_error
from plansmith.interceptors import BreakerArg, InterceptorChain, RetryArg
from plansmith.interceptors._common import new_request_id, retry_override, rpc_method
from plansmith.pagers import Pager
from plansmith.retry import Clock, OnRetry, RetryPolicy
from plansmith.streams import ResumableStream
from plansmith.v1 import (
    analysis_pb2,
    execution_pb2,
    flow_pb2,
    flow_service_pb2,
    flow_service_pb2_grpc,
    generation_pb2,
    ops_service_pb2,
    ops_service_pb2_grpc,
    plan_pb2,
    plan_service_pb2,
    plan_service_pb2_grpc,
    planning_service_pb2,
    planning_service_pb2_grpc,
    task_pb2,
    watch_pb2,
)

__all__ = ["PlansmithClient"]

Timeout = float | None | DefaultType
Retry = RetryPolicy | None | DefaultType
Metadata = Sequence[tuple[str, str]] | None

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class PlansmithClient(BaseClient):
    """Sync client of the Plansmith service (safe to share between threads).

    Make one with `PlansmithClient.connect(target)` and close it with `with` or
    `client.close()`. Every method takes `timeout` (seconds for the whole call,
    retries included; None: no deadline), `retry` (a `RetryPolicy` for this call, None:
    no retries) and `call_metadata`; by default the client's settings apply. Failures raise
    `plansmith.errors.PlansmithError` subclasses.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        timeout: float | DefaultType | None = DEFAULT,
        chain: InterceptorChain | None = None,
        owns_channel: bool = False,
    ) -> None:
        """Wraps an existing channel, used as it is: pass the `chain` whose interceptors
        (`chain.sync()`) the channel carries to see its retry counters and breaker.
        `owns_channel`: close the channel when the client closes."""
        super().__init__(timeout=timeout, chain=chain)
        self.channel = channel
        """The channel (sync grpc)."""
        self.plans = plan_service_pb2_grpc.PlanServiceStub(channel)
        """The raw `PlanService` stub on the client's channel."""
        self.planning = planning_service_pb2_grpc.PlanningServiceStub(channel)
        """The raw `PlanningService` stub on the client's channel."""
        self.ops = ops_service_pb2_grpc.OpsServiceStub(channel)
        """The raw `OpsService` stub on the client's channel."""
        self.flows = flow_service_pb2_grpc.FlowServiceStub(channel)
        """The raw `FlowService` stub on the client's channel."""
        self._owns_channel = owns_channel

    @classmethod
    def connect(
        cls,
        target: str | Sequence[str],
        *,
        tls: bool | grpc.ChannelCredentials | None = False,
        timeout: float | DefaultType | None = DEFAULT,
        retry: RetryArg = DEFAULT,
        breaker: BreakerArg = DEFAULT,
        interceptors: Sequence[Any] = (),
        metadata: Sequence[tuple[str, str]] = (),
        on_retry: OnRetry | None = None,
        options: Sequence[tuple[str, Any]] = (),
        clock: Clock | None = None,
        jitter: Callable[[], float] | None = None,
    ) -> PlansmithClient:
        """Opens a channel to `target` carrying the client's interceptors.

        `target` is `host:port` (or a gRPC target such as `dns:///host:port`); an HTTP
        URL such as `http://127.0.0.1:50051/api` is taken as its host and port (`https`:
        with TLS); a target that cannot be one raises `ArgumentError` at once. Several
        replicas: a list of `host:port`, or `dns:///name:port` for every address of a
        name; calls are then spread over them (gRPC's round_robin), a replica that
        stops answering is left out until it answers again, and its failures do not
        open the breaker while another replica is ready.

        Args:
            tls: True for TLS with the system's roots, or `grpc.ChannelCredentials`.
            timeout: default deadline of each call, retries included (None: none).
            retry: DEFAULT, a `RetryPolicies`, one `RetryPolicy` for all calls, or None.
            breaker: DEFAULT (shared per target), a `BreakerPolicy`, a `CircuitBreaker`,
                or None.
            interceptors: your own interceptors (sync grpc's), run outside the client's.
            metadata: sent with every call (a call's own metadata wins per key).
            on_retry: called with a `RetryEvent` before each retry's wait; an exception
                it raises is logged (logger `plansmith.client`) and the call goes on.
            options: grpc channel options. The client adds a reconnect backoff that fits
                its retry policies unless these set `grpc.*_reconnect_backoff_ms`.
            clock, jitter: time source/sleeper and jitter source (for tests).
        """
        metadata = call_metadata(metadata, "metadata")
        target, url_tls, balanced = resolve_targets(target)
        chain = InterceptorChain(
            target,
            retry=retry,
            breaker=breaker,
            metadata=metadata,
            interceptors=interceptors,
            on_retry=on_retry,
            clock=clock,
            jitter=jitter,
        )
        creds = credentials_for(True if url_tls and tls is False else tls)
        options = chain.channel_options(options)
        channel = open_sync_channel(target, creds, options, chain, balanced)
        return cls(channel, timeout=timeout, chain=chain, owns_channel=True)

    def close(self) -> None:
        """Closes the channel if the client opened it."""
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> PlansmithClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self,
        rpc: grpc.UnaryUnaryMultiCallable[Any, Resp],
        request: Any,
        timeout: Timeout,
        retry: Retry,
        metadata: Metadata,
    ) -> Resp:
        seconds = self._unary_timeout(rpc, timeout)
        pairs = call_metadata(metadata) if metadata else None
        token = retry_override.set(retry) if retry is not DEFAULT else None
        try:
            try:
                # The interceptors see the override: grpc.aio copies this context into
                # their task when the call starts; a sync channel runs them in here.
                call = rpc(request, timeout=seconds, metadata=pairs)
            finally:
                if token is not None:
                    retry_override.reset(token)
            return call
        except PlansmithError:
            raise
        except grpc.RpcError as exc:
            # Reached on a channel without the client's interceptors (they raise mapped ones).
            raise from_rpc_error(exc, method=rpc_method(rpc)) from None

    def _walk(
        self,
        rpc: grpc.UnaryUnaryMultiCallable[Any, Resp],
        make: Any,
        page: int | str | None,
        timeout: Timeout,
        retry: Retry,
        metadata: Metadata,
    ) -> Resp:
        walk = page_walk(make, page)
        request = next(walk)
        while True:
            response = self._call(rpc, request, timeout, retry, metadata)
            try:
                request = walk.send(response)
            except StopIteration as done:
                found: Resp = done.value  # the response page_walk settled on
                return found

    # -- plans ------------------------------------------------------------------------------

    def create_plan(
        self,
        name: str,
        *,
        description: str = "",
        project_id: str = "",
        objectives: Iterable[str] = (),
        constraints: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        agents: Iterable[AgentArg] = (),
        status: EnumArg | None = None,
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> plan_pb2.Plan:
        """Creates a plan. `agents` are `Agent` messages, dicts or ids; `request_id` is
        the idempotency key (one is made if not given, and reused by retries)."""
        request = self._create_plan_request(
            name,
            description,
            project_id,
            objectives,
            constraints,
            metadata,
            agents,
            status,
            request_id,
        )
        response = self._call(self.plans.CreatePlan, request, timeout, retry, call_metadata)
        return response.plan

    def get_plan(
        self,
        plan_id: str,
        *,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> plan_pb2.Plan:
        """Returns a plan; `ResourceNotFoundError` if there is none with this id."""
        request = build_request(plan_service_pb2.GetPlanRequest, plan_id=plan_id)
        response = self._call(self.plans.GetPlan, request, timeout, retry, call_metadata)
        return response.plan

    def get_plans(
        self,
        *,
        project_id: str = "",
        status: EnumArg | None = None,
        page: int | str | None = None,
        per_page: int | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> plan_service_pb2.ListPlansResponse:
        """One page of plans (oldest first). `page` is a `next_page_token` from a previous
        page, or a page number from 1 (reached by following tokens from the first page).
        The response has `plans`, `next_page_token` and `total_size`."""
        make = self._list_plans_request(project_id, status, per_page)
        return self._walk(self.plans.ListPlans, make, page, timeout, retry, call_metadata)

    def iter_plans(
        self,
        *,
        project_id: str = "",
        status: EnumArg | None = None,
        per_page: int | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> Pager[plan_pb2.Plan]:
        """Every matching plan, fetching pages as the loop goes (`for`)."""
        make = self._list_plans_request(project_id, status, per_page)

        def fetch(token: str) -> Any:
            return self._call(self.plans.ListPlans, make(token), timeout, retry, call_metadata)

        return Pager(fetch, "plans")

    def update_plan(
        self,
        plan_id: str,
        *,
        name: str | UnsetType = UNSET,
        description: str | UnsetType = UNSET,
        objectives: Iterable[str] | UnsetType = UNSET,
        constraints: Iterable[str] | UnsetType = UNSET,
        metadata: Mapping[str, Any] | UnsetType = UNSET,
        status: EnumArg | UnsetType = UNSET,
        agents: Iterable[AgentArg] | UnsetType = UNSET,
        replan_policy: Mapping[str, Any] | Any | UnsetType | None = UNSET,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> plan_pb2.Plan:
        """Changes the fields given (and only those: the update mask names them). With
        `etag`, fails with `EtagMismatchError` if the plan changed since it was read.
        `replan_policy` is a `ReplanPolicy` message or its JSON form as a dict
        (`{"confidence_threshold": 0.8, "rules": [...]}`); None restores the defaults."""
        fields = dict(
            name=name,
            description=description,
            objectives=objectives,
            constraints=constraints,
            metadata=metadata,
            status=status,
            agents=agents,
            replan_policy=replan_policy,
        )
        request = self._update_plan_request(plan_id, fields, etag, request_id)
        response = self._call(self.plans.UpdatePlan, request, timeout, retry, call_metadata)
        return response.plan

    def delete_plan(
        self,
        plan_id: str,
        *,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> plan_service_pb2.DeletePlanResponse:
        """Deletes a plan and its tasks; the response counts the tasks deleted."""
        request = build_request(
            plan_service_pb2.DeletePlanRequest,
            plan_id=plan_id,
            etag=etag,
            request_id=request_id or new_request_id(),
        )
        return self._call(self.plans.DeletePlan, request, timeout, retry, call_metadata)

    # -- tasks ------------------------------------------------------------------------------

    def create_task(
        self,
        title: str,
        *,
        plan_id: str,
        description: str = "",
        priority: EnumArg | None = None,
        status: EnumArg | None = None,
        estimated_hours: float | None = None,
        dependencies: Iterable[str] = (),
        assigned_to: str = "",
        metadata: Mapping[str, Any] | None = None,
        required_capabilities: Iterable[str] = (),
        optimistic_hours: float | None = None,
        pessimistic_hours: float | None = None,
        acceptance_criteria: Iterable[str] = (),
        task_id: str = "",
        pinned: bool | None = None,
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> task_pb2.Task:
        """Adds a task to a plan. `priority` / `status` take names (`"HIGH"`) or values;
        `dependencies` are ids of tasks of the same plan; `task_id` is the id to give the
        task (AIP-133; empty: the server picks one), such as a `generate_plan(...,
        plan_id=...)` task's id. `metadata` values other than strings are stored as JSON
        (see `decode_metadata`). `pinned` makes `optimize_plan` keep the task's agent (the
        metadata entry `plansmith.pinned: "true"`; None leaves `metadata` as given)."""
        task = task_message(
            plan_id=plan_id,
            title=title,
            description=description,
            priority=priority,
            status=status,
            estimated_hours=estimated_hours,
            dependencies=dependencies,
            assigned_to=assigned_to,
            metadata=metadata,
            required_capabilities=required_capabilities,
            optimistic_hours=optimistic_hours,
            pessimistic_hours=pessimistic_hours,
            acceptance_criteria=acceptance_criteria,
            pinned=pinned,
        )
        request = build_request(
            plan_service_pb2.CreateTaskRequest,
            plan_id=plan_id,
            task=task,
            task_id=task_id,
            request_id=request_id or new_request_id(),
        )
        response = self._call(self.plans.CreateTask, request, timeout, retry, call_metadata)
        return response.task

    def batch_create_tasks(
        self,
        plan_id: str,
        tasks: Iterable[TaskArg],
        *,
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> list[task_pb2.Task]:
        """Adds several tasks at once, all or none. Each task is a `Task` or a dict of
        `create_task` fields; its `id` may be a batch-local reference that other tasks'
        `dependencies` name. Returns the created tasks in order, with real ids."""
        request = build_request(
            plan_service_pb2.BatchCreateTasksRequest,
            plan_id=plan_id,
            tasks=[to_task(t, plan_id) for t in tasks],
            request_id=request_id or new_request_id(),
        )
        response = self._call(self.plans.BatchCreateTasks, request, timeout, retry, call_metadata)
        return list(response.tasks)

    def get_task(
        self,
        task_id: str,
        *,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> task_pb2.Task:
        """Returns a task; `ResourceNotFoundError` if there is none with this id."""
        request = build_request(plan_service_pb2.GetTaskRequest, task_id=task_id)
        response = self._call(self.plans.GetTask, request, timeout, retry, call_metadata)
        return response.task

    def get_tasks(
        self,
        plan_id: str = "",
        *,
        project_id: str = "",
        status: EnumArg | None = None,
        assigned_to: str = "",
        priority: EnumArg | None = None,
        page: int | str | None = None,
        per_page: int | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> plan_service_pb2.ListTasksResponse:
        """One page of the tasks of a plan, or of every plan of a project (pass exactly
        one of `plan_id` and `project_id`), oldest first; `page` as in `get_plans`."""
        make = self._list_tasks_request(
            plan_id, status, assigned_to, priority, per_page, project_id
        )
        return self._walk(self.plans.ListTasks, make, page, timeout, retry, call_metadata)

    def iter_tasks(
        self,
        plan_id: str = "",
        *,
        project_id: str = "",
        status: EnumArg | None = None,
        assigned_to: str = "",
        priority: EnumArg | None = None,
        per_page: int | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> Pager[task_pb2.Task]:
        """Every matching task of a plan or of a project (as in `get_tasks`), fetching
        pages as the loop goes (`for`)."""
        make = self._list_tasks_request(
            plan_id, status, assigned_to, priority, per_page, project_id
        )

        def fetch(token: str) -> Any:
            return self._call(self.plans.ListTasks, make(token), timeout, retry, call_metadata)

        return Pager(fetch, "tasks")

    def update_task(
        self,
        task_id: str,
        *,
        title: str | UnsetType = UNSET,
        description: str | UnsetType = UNSET,
        priority: EnumArg | UnsetType = UNSET,
        status: EnumArg | UnsetType = UNSET,
        progress: int | UnsetType = UNSET,
        actual_hours: float | UnsetType = UNSET,
        estimated_hours: float | UnsetType = UNSET,
        dependencies: Iterable[str] | UnsetType = UNSET,
        assigned_to: str | UnsetType = UNSET,
        required_capabilities: Iterable[str] | UnsetType = UNSET,
        metadata: Mapping[str, Any] | UnsetType = UNSET,
        optimistic_hours: float | UnsetType = UNSET,
        pessimistic_hours: float | UnsetType = UNSET,
        acceptance_criteria: Iterable[str] | UnsetType = UNSET,
        schedule: ScheduleArg | UnsetType = UNSET,
        not_before: datetime | UnsetType | None = UNSET,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> task_pb2.Task:
        """Changes the fields given (and only those: the update mask names them). With
        `etag`, fails with `EtagMismatchError` if the task changed since it was read."""
        fields = dict(
            title=title,
            description=description,
            priority=priority,
            status=status,
            progress=progress,
            actual_hours=actual_hours,
            estimated_hours=estimated_hours,
            dependencies=dependencies,
            assigned_to=assigned_to,
            required_capabilities=required_capabilities,
            metadata=metadata,
            optimistic_hours=optimistic_hours,
            pessimistic_hours=pessimistic_hours,
            acceptance_criteria=acceptance_criteria,
            schedule=schedule,
            not_before=not_before,
        )
        request = self._update_task_request(task_id, fields, etag, request_id)
        response = self._call(self.plans.UpdateTask, request, timeout, retry, call_metadata)
        return response.task

    def delete_task(
        self,
        task_id: str,
        *,
        force: bool = False,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> plan_service_pb2.DeleteTaskResponse:
        """Deletes a task. Refused with `PreconditionFailedError` (TASK_HAS_DEPENDENTS)
        while other tasks depend on it, unless `force`, which detaches them."""
        request = build_request(
            plan_service_pb2.DeleteTaskRequest,
            task_id=task_id,
            etag=etag,
            force=force,
            request_id=request_id or new_request_id(),
        )
        return self._call(self.plans.DeleteTask, request, timeout, retry, call_metadata)

    # -- execution and replanning -----------------------------------------------------------

    def start_task(
        self,
        task_id: str,
        agent_id: str,
        *,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> task_pb2.Task:
        """Starts a task with `agent_id`: the task, now IN_PROGRESS. Refused with
        `PreconditionFailedError` naming every unmet precondition (its violations)."""
        request = build_request(
            execution_pb2.StartTaskRequest,
            task_id=task_id,
            agent_id=agent_id,
            etag=etag,
            request_id=request_id or new_request_id(),
        )
        response = self._call(self.plans.StartTask, request, timeout, retry, call_metadata)
        return response.task

    def complete_task(
        self,
        task_id: str,
        *,
        actual_hours: float = 0.0,
        outputs: Mapping[str, str] | None = None,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> task_pb2.Task:
        """Finishes an IN_PROGRESS task: the task, now DONE with its effort and outputs."""
        request = build_request(
            execution_pb2.CompleteTaskRequest,
            task_id=task_id,
            actual_hours=actual_hours,
            outputs=dict(outputs or {}),
            etag=etag,
            request_id=request_id or new_request_id(),
        )
        response = self._call(self.plans.CompleteTask, request, timeout, retry, call_metadata)
        return response.task

    def report_task_failure(
        self,
        task_id: str,
        message: str = "",
        *,
        category: EnumArg | None = None,
        retry_after: float | None = None,
        evidence: Mapping[str, str] | None = None,
        facts_added: Iterable[str] = (),
        facts_removed: Iterable[str] = (),
        dry_run: bool = False,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> execution_pb2.ReportTaskFailureResponse:
        """Reports that an IN_PROGRESS task failed; the response's `record` is the
        replanner's decision (applied, proposed, or only computed with `dry_run`).
        `category` is a `FailureCategory` name (`TRANSIENT`...) or None to have the server
        classify `message`; `retry_after` is in seconds."""
        failure = build_request(
            execution_pb2.TaskFailure,
            category=(
                parse_enum(execution_pb2.FailureCategory, category, "category")
                if category is not None
                else 0
            ),
            message=message,
            evidence=dict(evidence or {}),
            facts_added=list(facts_added),
            facts_removed=list(facts_removed),
        )
        wait = duration(retry_after, "retry_after")
        if wait is not None:
            failure.retry_after.CopyFrom(wait)
        request = build_request(
            execution_pb2.ReportTaskFailureRequest,
            task_id=task_id,
            failure=failure,
            etag=etag,
            dry_run=dry_run,
            request_id=request_id or new_request_id(),
        )
        return self._call(self.plans.ReportTaskFailure, request, timeout, retry, call_metadata)

    def set_agent_availability(
        self,
        plan_id: str,
        agent_id: str,
        *,
        available: bool,
        until: datetime | None = None,
        reason: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> execution_pb2.SetAgentAvailabilityResponse:
        """Says whether an agent takes work (until `until`, a timezone-aware datetime);
        the response lists the decisions about an unavailable agent's open tasks."""
        request = build_request(
            execution_pb2.SetAgentAvailabilityRequest,
            plan_id=plan_id,
            agent_id=agent_id,
            available=available,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if until is not None:
            request.until.FromDatetime(until)
        return self._call(self.plans.SetAgentAvailability, request, timeout, retry, call_metadata)

    def heartbeat(
        self,
        plan_id: str,
        agent_id: str,
        *,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> execution_pb2.HeartbeatResponse:
        """Says the agent is alive; send the next one within the response's `timeout`."""
        request = build_request(execution_pb2.HeartbeatRequest, plan_id=plan_id, agent_id=agent_id)
        return self._call(self.plans.Heartbeat, request, timeout, retry, call_metadata)

    def apply_replan(
        self,
        plan_id: str,
        record_id: str,
        *,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> execution_pb2.ApplyReplanResponse:
        """Applies a proposed replanning decision (`etag`: the failed task's)."""
        request = build_request(
            execution_pb2.ApplyReplanRequest,
            plan_id=plan_id,
            record_id=record_id,
            etag=etag,
            request_id=request_id or new_request_id(),
        )
        return self._call(self.plans.ApplyReplan, request, timeout, retry, call_metadata)

    def get_replan_records(
        self,
        plan_id: str,
        *,
        task_id: str = "",
        page: int | str | None = None,
        per_page: int | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> execution_pb2.ListReplanRecordsResponse:
        """One page of a plan's replanning decisions (of one task with `task_id`), oldest
        first; `page` as in `get_plans`."""

        def make(token: str) -> execution_pb2.ListReplanRecordsRequest:
            return execution_pb2.ListReplanRecordsRequest(
                plan_id=plan_id, task_id=task_id, page_size=per_page or 0, page_token=token
            )

        return self._walk(self.plans.ListReplanRecords, make, page, timeout, retry, call_metadata)

    def watch_plan(
        self,
        plan_id: str,
        from_revision: int | None = None,
        *,
        timeout: Timeout = None,
        retry: Retry = DEFAULT,
        call_metadata: Sequence[tuple[str, str]] = (),
    ) -> ResumableStream[watch_pb2.WatchPlanRequest, watch_pb2.WatchPlanResponse]:
        """Follows a plan: `WatchPlanResponse` messages, each `changes` (consecutive
        revisions with what changed), a `heartbeat` or, last, `plan_deleted`. From the
        revision after `from_revision` (None: from now on). After a disconnect, a server
        restart or a "too slow" cut the stream reopens by itself from the last revision
        it delivered, so each revision arrives exactly once (`retry`: the policy for the
        reopenings, by default patient enough for a restart; it does not go through the
        circuit breaker). A `from_revision` the server no longer retains raises
        `RevisionNotRetainedError` (`.oldest_retained_revision`). Use `with` so
        leaving early cancels the call."""
        return self.stream(
            self.plans.WatchPlan,
            watch_request(plan_id, from_revision),
            resume=watch_resume,
            timeout=timeout,
            retry=watch_policy(retry),
            metadata=call_metadata,
            use_breaker=False,
        )

    # -- planning ---------------------------------------------------------------------------

    def generate_plan(
        self,
        name: str,
        description: str,
        *,
        project_id: str = "",
        requirements: Iterable[str] = (),
        constraints: Iterable[str] = (),
        available_agents: Iterable[AgentArg] = (),
        context: Mapping[str, Any] | None = None,
        persist: bool = False,
        plan_id: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> generation_pb2.GeneratedPlan:
        """Generates a plan from a brief; with `persist`, stores it (idempotent by
        `request_id`). `context` is a plain dict (`{"environment": "production"}`); a
        `request_id` in it is the call's `x-request-id` (tracing), not the idempotency
        key. With `plan_id` (an existing plan), the tasks come with ids free in it, in
        dependency order: `create_task(..., task_id=t.id, dependencies=t.dependencies)`
        adds them one by one."""
        brief_context, call_metadata = split_context(context, call_metadata)
        request = build_request(
            planning_service_pb2.GeneratePlanRequest,
            brief=plan_brief(
                name,
                description,
                project_id,
                requirements,
                constraints,
                available_agents,
                brief_context,
            ),
            persist=persist,
            plan_id=plan_id,
            request_id=request_id or new_request_id(),
        )
        response = self._call(self.planning.GeneratePlan, request, timeout, retry, call_metadata)
        return response.result

    def stream_generate_plan(
        self,
        name: str,
        description: str,
        *,
        project_id: str = "",
        requirements: Iterable[str] = (),
        constraints: Iterable[str] = (),
        available_agents: Iterable[AgentArg] = (),
        context: Mapping[str, Any] | None = None,
        persist: bool = False,
        request_id: str | None = None,
        timeout: Timeout = None,
        retry: Retry = DEFAULT,
        call_metadata: Sequence[tuple[str, str]] = (),
    ) -> ResumableStream[
        planning_service_pb2.StreamGeneratePlanRequest,
        planning_service_pb2.StreamGeneratePlanResponse,
    ]:
        """Generates a plan like `generate_plan`, streaming progress events; the last one,
        `completed`, is the `GeneratedPlan`. Use `with` so leaving early cancels the
        generation (nothing is stored then). After a transport failure the stream reopens
        with the same request and skips the events already delivered."""
        brief_context, call_metadata = split_context(context, call_metadata)
        request = build_request(
            planning_service_pb2.StreamGeneratePlanRequest,
            brief=plan_brief(
                name,
                description,
                project_id,
                requirements,
                constraints,
                available_agents,
                brief_context,
            ),
            persist=persist,
            request_id=request_id or new_request_id(),
        )
        return self.stream(
            self.planning.StreamGeneratePlan,
            request,
            resume=stream_resume,
            seen=stream_seen,
            timeout=timeout,
            retry=retry,
            metadata=call_metadata,
        )

    def decompose_task(
        self,
        task_id: str = "",
        *,
        description: str = "",
        decomposition_level: EnumArg | None = None,
        context: Mapping[str, Any] | None = None,
        persist: bool = False,
        estimated_hours: float = 0.0,
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> planning_service_pb2.DecomposeTaskResponse:
        """Splits a stored task (`task_id`) or a free `description` into subtasks;
        `level` is `"SUMMARY"`, `"STANDARD"` or `"DETAILED"`. With `persist`, stores
        them as the task's children."""
        _, call_metadata = split_context(context, call_metadata)
        request = build_request(
            planning_service_pb2.DecomposeTaskRequest,
            task_id=task_id,
            description=description,
            level=(
                parse_enum(
                    planning_service_pb2.DecompositionLevel,
                    decomposition_level,
                    "decomposition_level",
                )
                if decomposition_level
                else 0
            ),
            persist=persist,
            estimated_hours=estimated_hours,
            request_id=request_id or new_request_id(),
        )
        return self._call(self.planning.DecomposeTask, request, timeout, retry, call_metadata)

    def estimate_task_duration(
        self,
        task_description: str,
        *,
        agent_id: str = "",
        scope: EnumArg | None = None,
        plan_id: str = "",
        project_id: str = "",
        context: Mapping[str, Any] | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> planning_service_pb2.EstimateTaskDurationResponse:
        """Estimates a described task's effort from finished work (`scope`: `"PLAN"` or
        `"PROJECT"`), with the agent's pace when `agent_id` is given."""
        ctx, call_metadata = split_context(context, call_metadata)
        scope = scope or ctx.get("scope")
        request = build_request(
            planning_service_pb2.EstimateTaskDurationRequest,
            task_description=task_description,
            agent_id=agent_id,
            scope=parse_enum(planning_service_pb2.EstimationScope, scope, "scope") if scope else 0,
            plan_id=plan_id or str(ctx.get("plan_id", "")),
            project_id=project_id or str(ctx.get("project_id", "")),
        )
        return self._call(
            self.planning.EstimateTaskDuration, request, timeout, retry, call_metadata
        )

    def optimize_plan(
        self,
        plan_id: str,
        *,
        optimization_goals: Iterable[EnumArg] = (),
        constraints: Iterable[EnumArg] = (),
        time_limit: float | None = None,
        apply: bool = False,
        request_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> planning_service_pb2.OptimizePlanResponse:
        """Optimizes a plan's schedule. `goals` (`"MINIMIZE_DURATION"`,
        `"BALANCE_WORKLOAD"`) in priority order, `constraints`
        (`"RESPECT_AGENT_CAPABILITIES"` ...), `time_limit` in seconds for the solver;
        with `apply`, writes the result to the tasks."""
        _, call_metadata = split_context(context, call_metadata)
        request = build_request(
            planning_service_pb2.OptimizePlanRequest,
            plan_id=plan_id,
            goals=enum_list(
                planning_service_pb2.OptimizationGoal, optimization_goals, "optimization_goals"
            ),
            constraints=enum_list(
                planning_service_pb2.OptimizationConstraint, constraints, "constraints"
            ),
            time_limit=duration(time_limit),
            apply=apply,
            request_id=request_id or new_request_id(),
        )
        return self._call(self.planning.OptimizePlan, request, timeout, retry, call_metadata)

    def analyze_plan(
        self,
        plan_id: str,
        *,
        analysis_types: Iterable[EnumArg] = (),
        monte_carlo_samples: int = 0,
        deadline_hours: float = 0.0,
        seed: int = 0,
        context: Mapping[str, Any] | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> planning_service_pb2.AnalyzePlanResponse:
        """Analyzes a plan's remaining work: `analysis_types` among `"CRITICAL_PATH"`,
        `"RESOURCE_UTILIZATION"`, `"RISK_ASSESSMENT"` (empty: all)."""
        _, call_metadata = split_context(context, call_metadata)
        request = build_request(
            planning_service_pb2.AnalyzePlanRequest,
            plan_id=plan_id,
            analysis_types=enum_list(
                planning_service_pb2.AnalysisType, analysis_types, "analysis_types"
            ),
            monte_carlo_samples=monte_carlo_samples,
            deadline_hours=deadline_hours,
            seed=seed,
        )
        return self._call(self.planning.AnalyzePlan, request, timeout, retry, call_metadata)

    def suggest_next_tasks(
        self,
        plan_id: str,
        agent_id: str,
        *,
        count: int = 0,
        context: Mapping[str, Any] | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> list[analysis_pb2.TaskSuggestion]:
        """The ready tasks `agent_id` should take next, best first (`count`: 0 means 3)."""
        _, call_metadata = split_context(context, call_metadata)
        request = build_request(
            planning_service_pb2.SuggestNextTasksRequest,
            plan_id=plan_id,
            agent_id=agent_id,
            count=count,
        )
        response = self._call(
            self.planning.SuggestNextTasks, request, timeout, retry, call_metadata
        )
        return list(response.suggestions)

    # -- operations -------------------------------------------------------------------------

    def get_service_status(
        self,
        *,
        window_seconds: int = 0,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> ops_service_pb2.GetServiceStatusResponse:
        """The server's version, uptime, per-method statistics and database health."""
        request = build_request(
            ops_service_pb2.GetServiceStatusRequest, window_seconds=window_seconds
        )
        return self._call(self.ops.GetServiceStatus, request, timeout, retry, call_metadata)

    # -- flows ------------------------------------------------------------------------------

    def create_flow(
        self,
        flow: FlowArg,
        *,
        flow_id: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_pb2.Flow:
        """Registers a flow (a `Flow` message or a dict in its JSON form, as in
        examples/flows/text_to_sql.json) as version 1; `flow_id` chooses its id."""
        request = flow_service_pb2.CreateFlowRequest(
            flow=flow_message(flow), flow_id=flow_id, request_id=request_id or new_request_id()
        )
        response = self._call(self.flows.CreateFlow, request, timeout, retry, call_metadata)
        return response.flow

    def get_flow(
        self,
        flow_id: str,
        *,
        version: int = 0,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_pb2.Flow:
        """A flow at its latest version, or at `version`."""
        request = build_request(flow_service_pb2.GetFlowRequest, flow_id=flow_id, version=version)
        response = self._call(self.flows.GetFlow, request, timeout, retry, call_metadata)
        return response.flow

    def get_flows(
        self,
        *,
        page: int | str | None = None,
        per_page: int | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_service_pb2.ListFlowsResponse:
        """One page of flows (oldest first); `page` as in `get_plans`."""
        build_request(flow_service_pb2.ListFlowsRequest, page_size=per_page or 0)

        def make(token: str) -> flow_service_pb2.ListFlowsRequest:
            return flow_service_pb2.ListFlowsRequest(page_size=per_page or 0, page_token=token)

        return self._walk(self.flows.ListFlows, make, page, timeout, retry, call_metadata)

    def update_flow(
        self,
        flow_id: str,
        flow: FlowArg,
        *,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_pb2.Flow:
        """Replaces the flow's definition: a new version. With `etag`, fails with
        `EtagMismatchError` if another version was stored since it was read."""
        request = flow_service_pb2.UpdateFlowRequest(
            flow=flow_message(flow, flow_id, etag), request_id=request_id or new_request_id()
        )
        response = self._call(self.flows.UpdateFlow, request, timeout, retry, call_metadata)
        return response.flow

    def delete_flow(
        self,
        flow_id: str,
        *,
        etag: str = "",
        force: bool = False,
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_service_pb2.DeleteFlowResponse:
        """Deletes a flow, its versions and runs; refused while runs are in progress
        unless `force`."""
        request = build_request(
            flow_service_pb2.DeleteFlowRequest,
            flow_id=flow_id,
            etag=etag,
            force=force,
            request_id=request_id or new_request_id(),
        )
        return self._call(self.flows.DeleteFlow, request, timeout, retry, call_metadata)

    def plan_execution_path(
        self,
        flow_id: str,
        user_message: str,
        *,
        state: Mapping[str, Any] | None = None,
        version: int = 0,
        fallback_enabled: bool | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_pb2.ExecutionPath:
        """The path the request needs through the flow (nothing is stored)."""
        request = build_request(
            flow_service_pb2.PlanExecutionPathRequest,
            flow_id=flow_id,
            version=version,
            user_message=user_message,
            state=struct_of(state, "state"),
            fallback_enabled=fallback_enabled,
        )
        response = self._call(self.flows.PlanExecutionPath, request, timeout, retry, call_metadata)
        return response.path

    def start_flow_run(
        self,
        flow_id: str,
        user_message: str,
        *,
        state: Mapping[str, Any] | None = None,
        version: int = 0,
        fallback_enabled: bool | None = None,
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_pb2.FlowRun:
        """Plans a path and starts a run along it."""
        request = build_request(
            flow_service_pb2.StartFlowRunRequest,
            flow_id=flow_id,
            version=version,
            user_message=user_message,
            state=struct_of(state, "state"),
            fallback_enabled=fallback_enabled,
            request_id=request_id or new_request_id(),
        )
        response = self._call(self.flows.StartFlowRun, request, timeout, retry, call_metadata)
        return response.run

    def advance_flow_run(
        self,
        run_id: str,
        node: str,
        *,
        outputs: Mapping[str, Any] | None = None,
        state_patch: Mapping[str, Any] | None = None,
        etag: str = "",
        request_id: str | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_service_pb2.AdvanceFlowRunResponse:
        """Records that `node` completed with `outputs`; the response has the run, the
        next node (empty once completed) and whether the rest was replanned."""
        request = build_request(
            flow_service_pb2.AdvanceFlowRunRequest,
            run_id=run_id,
            node=node,
            outputs=struct_of(outputs, "outputs"),
            state_patch=struct_of(state_patch, "state_patch"),
            etag=etag,
            request_id=request_id or new_request_id(),
        )
        return self._call(self.flows.AdvanceFlowRun, request, timeout, retry, call_metadata)

    def get_flow_run(
        self,
        run_id: str,
        *,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_pb2.FlowRun:
        """One run."""
        request = build_request(flow_service_pb2.GetFlowRunRequest, run_id=run_id)
        response = self._call(self.flows.GetFlowRun, request, timeout, retry, call_metadata)
        return response.run

    def get_flow_runs(
        self,
        *,
        flow_id: str = "",
        status: EnumArg | None = None,
        page: int | str | None = None,
        per_page: int | None = None,
        timeout: Timeout = DEFAULT,
        retry: Retry = DEFAULT,
        call_metadata: Metadata = None,
    ) -> flow_service_pb2.ListFlowRunsResponse:
        """One page of runs (oldest first), of one flow and in one status if given."""
        status_n = parse_enum(flow_pb2.FlowRunStatus, status, "status") if status is not None else 0
        build_request(
            flow_service_pb2.ListFlowRunsRequest, flow_id=flow_id, page_size=per_page or 0
        )

        def make(token: str) -> flow_service_pb2.ListFlowRunsRequest:
            return flow_service_pb2.ListFlowRunsRequest(
                flow_id=flow_id,
                status=flow_pb2.FlowRunStatus.ValueType(status_n),
                page_size=per_page or 0,
                page_token=token,
            )

        return self._walk(self.flows.ListFlowRuns, make, page, timeout, retry, call_metadata)

    # -- streams ----------------------------------------------------------------------------

    def stream(
        self,
        method: Callable[..., Any],
        request: Req,
        *,
        resume: Callable[[Req, Any], Req] | None = None,
        seen: Callable[[Any, Any], bool] | None = None,
        timeout: Timeout = None,
        retry: Retry = DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
        use_breaker: bool = True,
    ) -> ResumableStream[Req, Any]:
        """Opens a server-streaming `method` of a raw stub as a resumable stream
        (`ResumableStream`): resumed after transport failures (with
        `resume(request, last_message)`), guarded by the client's breaker, cancelled when
        the `with` block ends. Streams have no deadline unless `timeout` is given.
        `use_breaker=False`: the openings do not go through the circuit breaker."""
        chain = self.chain
        return ResumableStream(
            method,
            request,
            resume=resume,
            seen=seen,
            policy=self._stream_policy(retry),
            breaker=self.breaker if use_breaker else None,
            timeout=self._timeout_for(timeout),
            metadata=call_metadata(metadata, "metadata") if metadata else metadata,
            clock=chain.clock if chain is not None else None,
            jitter=chain.jitter if chain is not None else None,
            stats=self.retry_stats,
            on_retry=chain.on_retry if chain is not None else None,
        )
