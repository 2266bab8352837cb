"""FlowService: converts each request, calls the flows domain, converts the result."""

from __future__ import annotations

from typing import Any

import grpc

from plansmith.v1 import flow_service_pb2 as pb
from plansmith_server.api import flow_convert as fc
from plansmith_server.api.convert import mutation as _mutation
from plansmith_server.flows.book import FlowBook


def _fallback(request: Any) -> bool:
    return request.fallback_enabled if request.HasField("fallback_enabled") else True


class FlowServicer:
    """The `plansmith.v1.FlowService` implementation (registered via `handlers.add_service`)."""

    def __init__(self, book: FlowBook) -> None:
        self.book = book

    async def CreateFlow(
        self, request: pb.CreateFlowRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateFlowResponse:
        flow = await self.book.create_flow(
            fc.flow_from_proto(request.flow), request.flow_id, _mutation(request)
        )
        return pb.CreateFlowResponse(flow=fc.flow_to_proto(flow))

    async def GetFlow(
        self, request: pb.GetFlowRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFlowResponse:
        flow = await self.book.get_flow(request.flow_id, request.version)
        return pb.GetFlowResponse(flow=fc.flow_to_proto(flow))

    async def ListFlows(
        self, request: pb.ListFlowsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListFlowsResponse:
        page = await self.book.list_flows(request.page_size, request.page_token)
        return pb.ListFlowsResponse(
            flows=[fc.flow_to_proto(f) for f in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def UpdateFlow(
        self, request: pb.UpdateFlowRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateFlowResponse:
        flow = await self.book.update_flow(
            fc.flow_from_proto(request.flow), request.flow.etag, _mutation(request)
        )
        return pb.UpdateFlowResponse(flow=fc.flow_to_proto(flow))

    async def DeleteFlow(
        self, request: pb.DeleteFlowRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteFlowResponse:
        result = await self.book.delete_flow(
            request.flow_id, request.etag, request.force, _mutation(request)
        )
        return pb.DeleteFlowResponse(
            flow_id=result.flow_id, deleted_versions=result.versions, deleted_runs=result.runs
        )

    async def PlanExecutionPath(
        self, request: pb.PlanExecutionPathRequest, context: grpc.aio.ServicerContext
    ) -> pb.PlanExecutionPathResponse:
        path = await self.book.plan_path(
            request.flow_id,
            request.version,
            request.user_message,
            fc.state_from_proto(request.state),
            _fallback(request),
        )
        return pb.PlanExecutionPathResponse(path=fc.path_to_proto(path))

    async def StartFlowRun(
        self, request: pb.StartFlowRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartFlowRunResponse:
        run = await self.book.start_run(
            request.flow_id,
            request.version,
            request.user_message,
            fc.state_from_proto(request.state),
            _fallback(request),
            _mutation(request),
        )
        return pb.StartFlowRunResponse(run=fc.run_to_proto(run))

    async def AdvanceFlowRun(
        self, request: pb.AdvanceFlowRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.AdvanceFlowRunResponse:
        result = await self.book.advance_run(
            request.run_id,
            request.node,
            fc.state_from_proto(request.outputs),
            fc.state_from_proto(request.state_patch),
            request.etag,
            _mutation(request),
        )
        return pb.AdvanceFlowRunResponse(
            run=fc.run_to_proto(result.run),
            next_node=result.next_node,
            replanned=result.replanned,
        )

    async def GetFlowRun(
        self, request: pb.GetFlowRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFlowRunResponse:
        run = await self.book.get_run(request.run_id)
        return pb.GetFlowRunResponse(run=fc.run_to_proto(run))

    async def ListFlowRuns(
        self, request: pb.ListFlowRunsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListFlowRunsResponse:
        page = await self.book.list_runs(
            request.flow_id, request.status, request.page_size, request.page_token
        )
        return pb.ListFlowRunsResponse(
            runs=[fc.run_to_proto(r) for r in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )
