"""PlanningService: converts each request, calls the planning domain, converts the result."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import grpc

from plansmith.v1 import generation_pb2 as gen_pb
from plansmith.v1 import planning_service_pb2 as pb
from plansmith_server.api import convert
from plansmith_server.api.planning_convert import (
    analyses_from_proto,
    analysis_to_proto,
    attempt_to_proto,
    brief_from_proto,
    call_from_proto,
    constraints_from_proto,
    estimation_method,
    event_to_proto,
    generated_to_proto,
    goals_from_proto,
    level_from_proto,
    optimization_to_proto,
    scope_from_proto,
    suggestions_to_proto,
)
from plansmith_server.domain.generation import Generated, GenerationInfo, PlanGenerator
from plansmith_server.domain.schedules import Schedules


class PlanningServicer:
    """The `plansmith.v1.PlanningService` implementation."""

    def __init__(self, planning: PlanGenerator, schedules: Schedules) -> None:
        self.planning = planning
        self.schedules = schedules

    async def GeneratePlan(
        self, request: pb.GeneratePlanRequest, context: grpc.aio.ServicerContext
    ) -> pb.GeneratePlanResponse:
        brief = brief_from_proto(request.brief)
        call = call_from_proto(request, context.time_remaining())
        async for event in self.planning.generate(
            brief,
            persist=request.persist,
            m=convert.mutation(request),
            plan_id=request.plan_id,
            call=call,
        ):
            if isinstance(event, Generated):
                return pb.GeneratePlanResponse(
                    result=generated_to_proto(event, brief),
                    attempts=[attempt_to_proto(a) for a in event.attempts],
                )
        raise RuntimeError("generation ended without a plan")

    async def StreamGeneratePlan(
        self, request: pb.StreamGeneratePlanRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamGeneratePlanResponse]:
        brief = brief_from_proto(request.brief)
        # Same fields and numbers as GeneratePlanRequest: one fingerprint for both, so a
        # request_id first used on one can be retried on the other.
        unary = pb.GeneratePlanRequest.FromString(request.SerializeToString())
        call = call_from_proto(request, context.time_remaining())
        # Set when the call ends; checked in the transaction that would store the plan, so
        # a stream cancelled before its last event stores nothing.
        gone = threading.Event()
        # grpc's stubs type the callback as a class (_DoneCallback) no function matches.
        context.add_done_callback(lambda _: gone.set())  # type: ignore[arg-type]
        sequence = 0
        info = GenerationInfo("")
        async for event in self.planning.generate(
            brief, persist=request.persist, m=convert.mutation(unary), call=call, gone=gone
        ):
            if isinstance(event, GenerationInfo):
                info = event
                continue
            if sequence == 0:
                # The brief passed validation (the planner checks it before its first event).
                sequence += 1
                yield pb.StreamGeneratePlanResponse(
                    sequence=sequence,
                    started=gen_pb.GenerationStarted(
                        requirement_count=len(brief.request.requirements),
                        replayed=info.replay_after is not None,
                    ),
                    generation_id=info.generation_id,
                )
                if info.replay_after is not None:
                    # The plan's events keep the numbers they had the first time.
                    sequence += info.replay_after
            sequence += 1
            msg = event_to_proto(event, brief)
            msg.sequence = sequence
            msg.generation_id = info.generation_id
            yield msg

    async def DecomposeTask(
        self, request: pb.DecomposeTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.DecomposeTaskResponse:
        r = await self.planning.decompose(
            task_id=request.task_id,
            description=request.description,
            level=level_from_proto(request.level),
            persist=request.persist,
            estimated_hours=request.estimated_hours,
            m=convert.mutation(request),
            call=call_from_proto(request, context.time_remaining()),
        )
        stored = r.plan_revision > 0
        return pb.DecomposeTaskResponse(
            subtasks=[
                convert.task_to_proto(t) if stored else convert.draft_task_to_proto(t)
                for t in r.subtasks
            ],
            method=r.method,
            rewired_task_ids=list(r.rewired_task_ids),
            plan_revision=r.plan_revision,
            backend=r.backend,
            attempts=[attempt_to_proto(a) for a in r.attempts],
        )

    async def EstimateTaskDuration(
        self, request: pb.EstimateTaskDurationRequest, context: grpc.aio.ServicerContext
    ) -> pb.EstimateTaskDurationResponse:
        routed = await self.planning.estimate(
            description=request.task_description,
            agent_id=request.agent_id,
            scope=scope_from_proto(request.scope),
            plan_id=request.plan_id,
            project_id=request.project_id,
            call=call_from_proto(request, context.time_remaining()),
        )
        e = routed.value
        b = e.basis
        return pb.EstimateTaskDurationResponse(
            estimate_hours=e.estimate_hours,
            low_hours=e.low_hours,
            high_hours=e.high_hours,
            confidence=e.confidence,
            method=b.method,
            estimation_method=estimation_method(b.method),
            similar_task_ids=list(b.similar_task_ids),
            agent_pace=b.agent_pace if b.agent_pace is not None else 1.0,
            explanation=b.note,
            backend=routed.backend,
            attempts=[attempt_to_proto(a) for a in routed.attempts],
        )

    async def OptimizePlan(
        self, request: pb.OptimizePlanRequest, context: grpc.aio.ServicerContext
    ) -> pb.OptimizePlanResponse:
        limit = None
        if request.HasField("time_limit"):
            limit = convert.duration_seconds(request.time_limit, "time_limit")
        o = await self.schedules.optimize(
            request.plan_id,
            goals=goals_from_proto(request.goals),
            constraints=constraints_from_proto(request.constraints),
            time_limit=limit,
            apply=request.apply,
            m=convert.mutation(request),
        )
        return optimization_to_proto(o)

    async def AnalyzePlan(
        self, request: pb.AnalyzePlanRequest, context: grpc.aio.ServicerContext
    ) -> pb.AnalyzePlanResponse:
        a = await self.schedules.analyze(
            request.plan_id,
            types=analyses_from_proto(request.analysis_types),
            samples=request.monte_carlo_samples,
            deadline_hours=request.deadline_hours,
            seed=request.seed,
        )
        return analysis_to_proto(a)

    async def SuggestNextTasks(
        self, request: pb.SuggestNextTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.SuggestNextTasksResponse:
        snap, suggestions, cpm = await self.schedules.suggest(
            request.plan_id, request.agent_id, request.count
        )
        return suggestions_to_proto(snap, suggestions, cpm)
