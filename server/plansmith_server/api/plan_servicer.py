"""PlanService: converts each request, calls the domain, converts the result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from plansmith.v1 import execution_pb2 as ex
from plansmith.v1 import plan_service_pb2 as pb
from plansmith.v1 import watch_pb2
from plansmith_server.api import convert, watch_convert
from plansmith_server.api.handlers import Encoded
from plansmith_server.domain.execution import Execution
from plansmith_server.domain.plans import Plans
from plansmith_server.domain.tasks import Tasks
from plansmith_server.domain.watch import Batch, Heartbeat, PlanFeed
from plansmith_server.lru import LruCache


class PlanServicer:
    """The `plansmith.v1.PlanService` implementation (registered via `handlers.add_service`)."""

    def __init__(
        self,
        plans: Plans,
        tasks: Tasks,
        execution: Execution | None = None,
        feed: PlanFeed | None = None,
    ) -> None:
        self.plans = plans
        self.tasks = tasks
        self.execution = execution or Execution(plans, tasks)
        self.feed = feed
        self.encodings = convert.TaskEncodings()

    def caches(self) -> dict[str, LruCache[Any, Any]]:
        """The caches kept here, by name, for the status report."""
        return {"task_encodings": self.encodings.cache}

    async def CreatePlan(
        self, request: pb.CreatePlanRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreatePlanResponse:
        plan = await self.plans.create_plan(
            convert.plan_from_proto(request.plan), convert.mutation(request)
        )
        return pb.CreatePlanResponse(plan=convert.plan_to_proto(plan))

    async def GetPlan(
        self, request: pb.GetPlanRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPlanResponse:
        plan = await self.plans.get_plan(request.plan_id)
        return pb.GetPlanResponse(plan=convert.plan_to_proto(plan))

    async def ListPlans(
        self, request: pb.ListPlansRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPlansResponse:
        page = await self.plans.list_plans(
            project_id=request.project_id,
            status=request.status,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListPlansResponse(
            plans=[convert.plan_to_proto(p) for p in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def UpdatePlan(
        self, request: pb.UpdatePlanRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdatePlanResponse:
        fields = convert.update_fields(request.plan, list(request.update_mask.paths), "plan")
        plan = await self.plans.update_plan(
            convert.plan_from_proto(request.plan),
            fields,
            etag=request.plan.etag,
            m=convert.mutation(request),
        )
        return pb.UpdatePlanResponse(plan=convert.plan_to_proto(plan))

    async def DeletePlan(
        self, request: pb.DeletePlanRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeletePlanResponse:
        result = await self.plans.delete_plan(
            request.plan_id, request.etag, convert.mutation(request)
        )
        return pb.DeletePlanResponse(
            plan_id=result.plan_id, deleted_task_count=result.deleted_task_count
        )

    async def CreateTask(
        self, request: pb.CreateTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateTaskResponse:
        result = await self.tasks.create_task(
            request.plan_id,
            convert.new_task_from_proto(request.task),
            convert.mutation(request),
            task_id=request.task_id,
        )
        return pb.CreateTaskResponse(
            task=convert.task_to_proto(result.task), plan_revision=result.plan_revision
        )

    async def BatchCreateTasks(
        self, request: pb.BatchCreateTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchCreateTasksResponse:
        result = await self.tasks.batch_create_tasks(
            request.plan_id,
            [convert.new_task_from_proto(t) for t in request.tasks],
            convert.mutation(request),
        )
        return pb.BatchCreateTasksResponse(
            tasks=[convert.task_to_proto(t) for t in result.tasks],
            plan_revision=result.plan_revision,
        )

    async def GetTask(
        self, request: pb.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> Encoded:
        # Remembered (nothing committed since it was read): answered without awaiting the
        # domain and the store or opening a transaction, which under load gave GetTask
        # a tenth more throughput.
        task = self.tasks.task_now(request.task_id) or await self.tasks.get_task(request.task_id)
        # GetTaskResponse.task is field 1, like a list's tasks: the same cached encoding.
        return Encoded(self.encodings.one(task))

    async def ListTasks(
        self, request: pb.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> Encoded:
        page = await self.tasks.list_tasks(
            request.plan_id,
            project_id=request.project_id,
            status=request.status,
            assigned_to=request.assigned_to,
            priority=request.priority,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return Encoded(self.encodings.list_response(page))

    async def UpdateTask(
        self, request: pb.UpdateTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateTaskResponse:
        fields = convert.update_fields(request.task, list(request.update_mask.paths), "task")
        result = await self.tasks.update_task(
            convert.task_from_proto(request.task),
            fields,
            etag=request.task.etag,
            m=convert.mutation(request),
        )
        return pb.UpdateTaskResponse(
            task=convert.task_to_proto(result.task), plan_revision=result.plan_revision
        )

    async def DeleteTask(
        self, request: pb.DeleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteTaskResponse:
        result = await self.tasks.delete_task(
            request.task_id, etag=request.etag, force=request.force, m=convert.mutation(request)
        )
        return pb.DeleteTaskResponse(
            task_id=result.task_id,
            detached_task_ids=list(result.detached_task_ids),
            plan_revision=result.plan_revision,
        )

    # ---- execution and replanning -------------------------------------------------------

    async def StartTask(
        self, request: ex.StartTaskRequest, context: grpc.aio.ServicerContext
    ) -> ex.StartTaskResponse:
        r = await self.execution.start_task(
            request.task_id, request.agent_id, etag=request.etag, m=convert.mutation(request)
        )
        return ex.StartTaskResponse(
            task=convert.task_to_proto(r.task), plan_revision=r.plan_revision
        )

    async def CompleteTask(
        self, request: ex.CompleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> ex.CompleteTaskResponse:
        r = await self.execution.complete_task(
            request.task_id,
            actual_hours=request.actual_hours,
            outputs=dict(request.outputs),
            etag=request.etag,
            m=convert.mutation(request),
        )
        return ex.CompleteTaskResponse(
            task=convert.task_to_proto(r.task), plan_revision=r.plan_revision
        )

    async def ReportTaskFailure(
        self, request: ex.ReportTaskFailureRequest, context: grpc.aio.ServicerContext
    ) -> ex.ReportTaskFailureResponse:
        r = await self.execution.report_failure(
            request.task_id,
            convert.failure_from_proto(request.failure),
            etag=request.etag,
            dry_run=request.dry_run,
            m=convert.mutation(request),
        )
        return ex.ReportTaskFailureResponse(
            record=convert.record_to_proto(r.record),
            task=convert.task_to_proto(r.task),
            plan_revision=r.plan_revision,
        )

    async def SetAgentAvailability(
        self, request: ex.SetAgentAvailabilityRequest, context: grpc.aio.ServicerContext
    ) -> ex.SetAgentAvailabilityResponse:
        until = convert.time_us(request.until, "until") if request.HasField("until") else 0
        r = await self.execution.set_availability(
            request.plan_id,
            request.agent_id,
            available=request.available,
            until=until,
            reason=request.reason,
            m=convert.mutation(request),
        )
        return ex.SetAgentAvailabilityResponse(
            availability=convert.availability_to_proto(r.availability),
            records=[convert.record_to_proto(x) for x in r.records],
            plan_revision=r.plan_revision,
        )

    async def Heartbeat(
        self, request: ex.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> ex.HeartbeatResponse:
        a = await self.execution.heartbeat(request.plan_id, request.agent_id)
        timeout = Duration()
        timeout.FromMicroseconds(self.execution.heartbeat_timeout)
        return ex.HeartbeatResponse(availability=convert.availability_to_proto(a), timeout=timeout)

    async def ApplyReplan(
        self, request: ex.ApplyReplanRequest, context: grpc.aio.ServicerContext
    ) -> ex.ApplyReplanResponse:
        r = await self.execution.apply_replan(
            request.plan_id, request.record_id, etag=request.etag, m=convert.mutation(request)
        )
        return ex.ApplyReplanResponse(
            record=convert.record_to_proto(r.record), plan_revision=r.plan_revision
        )

    async def ListReplanRecords(
        self, request: ex.ListReplanRecordsRequest, context: grpc.aio.ServicerContext
    ) -> ex.ListReplanRecordsResponse:
        records, token, total = await self.execution.list_records(
            request.plan_id,
            task_id=request.task_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return ex.ListReplanRecordsResponse(
            records=[convert.record_to_proto(x) for x in records],
            next_page_token=token,
            total_size=total,
        )

    async def WatchPlan(
        self, request: watch_pb2.WatchPlanRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Encoded | watch_pb2.WatchPlanResponse]:
        assert self.feed is not None, "WatchPlan needs the server's PlanFeed"
        start = request.from_revision if request.HasField("from_revision") else None
        async for event in self.feed.watch(request.plan_id, start):
            if isinstance(event, Batch):
                yield Encoded(watch_convert.batch_message(event))
            elif isinstance(event, Heartbeat):
                yield watch_convert.heartbeat_message(event)
            else:
                yield watch_convert.deleted_message(event)
