"""A StreamGeneratePlan whose plan came from a model is never spliced from two
generations: the server replays what it recorded under the request_id, with the original
sequence numbers, and the client resumes over it; a new generation is refused."""

from __future__ import annotations

import grpc
import pytest

from plansmith import AsyncPlansmithClient, StreamNotResumableError
from plansmith._base import stream_seen
from plansmith.v1 import planning_service_pb2 as pb
from plansmith.v1 import planning_service_pb2_grpc as pb_grpc
from plansmith_server.app import start
from plansmith_server.backends import config as routing_config
from plansmith_server.config import Config
from tests.backends.conftest import API_KEY, backend_toml, every_request_to
from tests.backends.test_llm_backend import BRIEF, GOOD, plan_json, task
from tests.client.conftest import FakeClock
from tests.support.openai_server import Reply

STREAM = "/plansmith.v1.PlanningService/StreamGeneratePlan"


class BreakAfterFirstTask(grpc.aio.ServerInterceptor):
    """Breaks the first StreamGeneratePlan (UNAVAILABLE) right after its first task event."""

    def __init__(self) -> None:
        self.broken = False

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if details.method != STREAM or self.broken:
            return handler
        inner = handler.unary_stream

        async def wrapped(request, context):
            async for msg in inner(request, context):
                yield msg
                if msg.WhichOneof("event") == "task_proposed" and not self.broken:
                    self.broken = True
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "injected break")

        return grpc.unary_stream_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


async def routed_server(llm, db_path, interceptors=()):
    cfg = routing_config.parse(
        (backend_toml("llm", "m") + every_request_to("llm")).replace("{url}", llm.base_url),
        "t.toml",
        {"TEST_KEY": API_KEY},
    )
    return await start(
        Config(listen="127.0.0.1:0", db_path=db_path),
        routing=cfg,
        extra_interceptors=list(interceptors),
    )


async def test_a_reopened_stream_replays_the_recorded_plan_with_its_numbers(llm, db_path):
    other = plan_json(task("x", "Something else entirely", reqs=(0, 1)))
    llm.script("m", Reply(GOOD), Reply(other))
    running = await routed_server(llm, db_path)
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            stub = pb_grpc.PlanningServiceStub(ch)
            req = pb.StreamGeneratePlanRequest(brief=BRIEF, request_id="resume-1")
            first = [e async for e in stub.StreamGeneratePlan(req)]
            again = [e async for e in stub.StreamGeneratePlan(req)]
    finally:
        await running.stop(grace=0.5)
    assert len(llm.requests) == 1  # the model was asked once
    gen = first[0].generation_id
    assert gen.startswith("gen_") and all(e.generation_id == gen for e in first + again)
    assert not first[0].started.replayed and again[0].started.replayed
    tail_from = next(i for i, e in enumerate(first) if e.WhichOneof("event") == "task_proposed")
    # The replay is the first stream's plan events, number for number.
    assert again[1:] == first[tail_from - 1 :][-(len(again) - 1) :]
    assert again[-1].completed == first[-1].completed
    assert again[1].sequence > 2  # the numbers continue where the first stream had them


async def test_the_client_resumes_a_model_stream_without_splicing(llm, db_path):
    other = plan_json(task("x", "Something else entirely", reqs=(0, 1)))
    llm.script("m", Reply(GOOD), Reply(other))
    breaker = BreakAfterFirstTask()
    running = await routed_server(llm, db_path, [breaker])
    try:
        async with AsyncPlansmithClient.connect(
            running.address, clock=FakeClock(), breaker=None
        ) as client:
            async with client.stream_generate_plan(
                BRIEF.name,
                BRIEF.description,
                requirements=list(BRIEF.requirements),
                available_agents=[
                    {"id": a.id, "capabilities": list(a.capabilities)}
                    for a in BRIEF.available_agents
                ],
            ) as stream:
                events = [e async for e in stream]
                assert stream.openings == 2
    finally:
        await running.stop(grace=0.5)
    assert breaker.broken and len(llm.requests) == 1
    sequences = [e.sequence for e in events]
    assert sequences == sorted(set(sequences))  # nothing twice
    assert len({e.generation_id for e in events}) == 1
    titles = [e.task_proposed.task.title for e in events if e.HasField("task_proposed")]
    assert titles == ["Design the schema", "Build the endpoints", "Test the API"]
    assert [t.task.title for t in events[-1].completed.tasks] == titles


def test_events_of_another_generation_are_refused():
    a = pb.StreamGeneratePlanResponse(sequence=5, generation_id="gen_a")
    assert stream_seen(a, pb.StreamGeneratePlanResponse(sequence=5, generation_id="gen_a"))
    assert not stream_seen(a, pb.StreamGeneratePlanResponse(sequence=6, generation_id="gen_a"))
    with pytest.raises(StreamNotResumableError) as e:
        stream_seen(a, pb.StreamGeneratePlanResponse(sequence=1, generation_id="gen_b"))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    embedded = pb.StreamGeneratePlanResponse(sequence=3)
    assert stream_seen(embedded, pb.StreamGeneratePlanResponse(sequence=2))
