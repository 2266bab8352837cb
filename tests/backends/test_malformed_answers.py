"""Whatever a model server sends back, a request ends with a plan: a malformed answer is
an attempt with its reason, then the next backend (the embedded planner), never INTERNAL."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from plansmith.v1 import generation_pb2, ops_service_pb2
from plansmith.v1 import planning_service_pb2 as pb
from plansmith.v1 import planning_service_pb2_grpc as pb_grpc
from tests.backends.conftest import backend_toml, every_request_to
from tests.backends.test_llm_backend import BRIEF, GOOD, generate, plan_json, status, task
from tests.support.openai_server import Reply

G = generation_pb2
FAILED, INVALID = G.ATTEMPT_OUTCOME_FAILED, G.ATTEMPT_OUTCOME_INVALID_OUTPUT


def completion(content: object, usage: object = None, raw_usage: str = "") -> str:
    body = json.dumps(
        {
            "id": "c1",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": usage,
        }
    )
    return body.replace('"usage": null', f'"usage": {raw_usage}') if raw_usage else body


LONG_NUMBER = '{"x":' + "1" * 5000 + "}"
DEEP = "[" * 100_000
HUGE_HOURS = plan_json(task("a", "Design", reqs=(0, 1))).replace("16.0", "1" + "0" * 400)
SURROGATE_TITLE = plan_json(task("a", "\ud800", reqs=(0, 1)))
TOO_MANY = plan_json(*(task(f"t{i}", f"Task {i}", reqs=(0, 1)) for i in range(301)))

ESTIMATE = json.dumps(
    {
        "estimate_hours": 6,
        "low_hours": 4,
        "high_hours": 9,
        "confidence": 0.6,
        "similar_task_ids": [],
        "explanation": "like others",
    }
)

# Plans (asked streamed): the content, and a word of the reason recorded.
PLANS = {
    "a 5000-digit number": (LONG_NUMBER, "not JSON"),
    "deeply nested content": (DEEP, "not JSON"),
    "hours of 10**400": (HUGE_HOURS, "must be a number"),
    "a lone surrogate in a title": (SURROGATE_TITLE, "must be a string"),
    "more than 300 tasks": (TOO_MANY, "more than 300"),
}

# Estimates (asked unary): the reply, the backend that answers, the outcome, a reason word.
BODIES = {
    "a 5000-digit number as the body": (Reply(raw=LONG_NUMBER), "embedded", INVALID, "chat"),
    "a deeply nested body": (Reply(raw=DEEP), "embedded", INVALID, "chat completion"),
    "a 500 with a lone surrogate": (
        Reply(status=500, body={"error": {"message": "\ud800 down"}}),
        "embedded",
        FAILED,
        "HTTP 500: ? down",
    ),
    "a 500 with a deeply nested body": (Reply(status=500, raw=DEEP), "embedded", FAILED, "500"),
    "content as an object": (Reply(raw=completion({"a": 1})), "embedded", INVALID, "text"),
    "content as a number": (Reply(raw=completion(5)), "embedded", INVALID, "text"),
    "a 5000-digit number as content": (
        Reply(raw=completion(LONG_NUMBER)),
        "embedded",
        INVALID,
        "not JSON",
    ),
    "an estimate of 1e300 hours": (
        Reply(ESTIMATE.replace('"high_hours": 9', '"high_hours": 1e300')),
        "embedded",
        INVALID,
        "must be a number",
    ),
    "usage as a list": (Reply(raw=completion(ESTIMATE, usage=[1])), "est", None, ""),
    "usage tokens as text": (
        Reply(raw=completion(ESTIMATE, usage={"prompt_tokens": "abc"})),
        "est",
        None,
        "",
    ),
    "usage tokens of 1e400": (
        Reply(raw=completion(ESTIMATE, raw_usage='{"prompt_tokens": 1e400}')),
        "est",
        None,
        "",
    ),
    "usage tokens of 1e30": (
        Reply(raw=completion(ESTIMATE, usage={"prompt_tokens": 1e30, "completion_tokens": 10**30})),
        "est",
        None,
        "",
    ),
}


async def estimate(running):
    async with grpc.aio.insecure_channel(running.address) as ch:
        return await pb_grpc.PlanningServiceStub(ch).EstimateTaskDuration(
            pb.EstimateTaskDurationRequest(task_description="Write a runbook", backend="est"),
            timeout=30,
        )


@pytest.mark.parametrize("case", list(PLANS))
async def test_a_malformed_plan_falls_back_with_its_reason(llm, plansmith, case):
    content, word = PLANS[case]
    llm.script("m", Reply(content))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    r = await generate(running)
    assert r.result.backend == "embedded" and r.result.tasks
    assert [a.outcome for a in r.attempts] == [G.ATTEMPT_OUTCOME_RETRIED, INVALID]
    assert word in r.attempts[-1].reason


@pytest.mark.parametrize("case", list(BODIES))
async def test_a_malformed_answer_falls_back_with_its_reason(llm, plansmith, case):
    reply, backend, outcome, word = BODIES[case]
    llm.script("e", reply)
    running = await plansmith(backend_toml("est", "e"))
    r = await estimate(running)
    assert r.backend == backend and r.estimate_hours > 0
    last = r.attempts[-1]
    if outcome is None:
        assert last.outcome == G.ATTEMPT_OUTCOME_SUCCEEDED
        assert 0 <= last.tokens <= 2**32
    else:
        assert last.outcome == outcome and word in last.reason
    s = (await status(running))["est"]
    assert s.breaker_state == ops_service_pb2.BREAKER_STATE_CLOSED


def chunk(**kw: object) -> str:
    return json.dumps({"id": "c1", "object": "chat.completion.chunk", **kw})


def content_chunk(content: object) -> str:
    return chunk(choices=[{"index": 0, "delta": {"content": content}, "finish_reason": None}])


STREAMED = {
    "a chunk that is a list": ("[1]",),
    "a choice that is a string": (chunk(choices=["a"]),),
    "content as a number": (content_chunk(5),),
    "content as a list": (content_chunk(["a"]),),
    "a deeply nested chunk": (DEEP,),
    "a delta that is a list": (chunk(choices=[{"delta": ["a"]}]),),
}


async def stream(running):
    async with grpc.aio.insecure_channel(running.address) as ch:
        return [
            e
            async for e in pb_grpc.PlanningServiceStub(ch).StreamGeneratePlan(
                pb.StreamGeneratePlanRequest(brief=BRIEF), timeout=30
            )
        ]


@pytest.mark.parametrize("case", list(STREAMED))
async def test_a_malformed_streamed_chunk_falls_back_with_its_reason(llm, plansmith, case):
    llm.script("m", Reply(events=(content_chunk("{"), *STREAMED[case], "[DONE]")))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    events = await stream(running)
    attempts = [e.attempt for e in events if e.WhichOneof("event") == "attempt"]
    assert [a.outcome for a in attempts] == [INVALID]
    assert "chunk" in attempts[0].reason
    assert events[-1].completed.backend == "embedded"
    r = await generate(running)  # the unary call streams from the model too
    assert r.result.backend == "embedded"
    assert [a.outcome for a in r.attempts] == [INVALID]


async def test_streamed_usage_that_is_not_an_object_is_ignored(llm, plansmith):
    events = (content_chunk(GOOD), chunk(choices=[], usage=[1]), "[DONE]")
    llm.script("m", Reply(events=events))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    out = await stream(running)
    assert out[-1].completed.backend == "llm"


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_oversize_answer_is_refused_while_it_arrives(llm, plansmith, streamed):
    big = " " * 300_000
    llm.script("m", Reply(events=(*(content_chunk(big) for _ in range(5)), "[DONE]")))
    llm.script("e", Reply(raw=completion(ESTIMATE + " " * 1_100_000)))
    running = await plansmith(
        backend_toml("llm", "m") + backend_toml("est", "e") + every_request_to("llm")
    )
    start = time.monotonic()
    if streamed:
        events = await stream(running)
        attempts = [e.attempt for e in events if e.WhichOneof("event") == "attempt"]
        backend = events[-1].completed.backend
    else:
        r = await estimate(running)
        attempts, backend = list(r.attempts), r.backend
    assert time.monotonic() - start < 10
    assert backend == "embedded"
    assert [a.outcome for a in attempts] == [INVALID]
    assert "longer than" in attempts[0].reason
