"""The LLM backend over real HTTP against a local OpenAI-compatible server: each scripted
behaviour leads to its documented outcome."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import grpc
import pytest

from plansmith.v1 import agent_pb2, generation_pb2, ops_service_pb2
from plansmith.v1 import ops_service_pb2_grpc as ops_grpc
from plansmith.v1 import plan_service_pb2 as ps
from plansmith.v1 import plan_service_pb2_grpc as ps_grpc
from plansmith.v1 import planning_service_pb2 as pb
from plansmith.v1 import planning_service_pb2_grpc as pb_grpc
from tests.backends.conftest import API_KEY, backend_toml, every_request_to
from tests.conftest import details_of
from tests.support.openai_server import Reply

G = generation_pb2

BRIEF = generation_pb2.PlanBrief(
    name="Orders API",
    description="Build a REST API for orders with a PostgreSQL database",
    requirements=["Orders can be created and listed", "Data is stored in PostgreSQL"],
    available_agents=[
        agent_pb2.Agent(id="ann", capabilities=["Python", "PostgreSQL"]),
        agent_pb2.Agent(id="bob", capabilities=["Python"]),
    ],
)


def task(id, title, deps=(), agent="ann", reqs=(0,), caps=("Python",), hours=8.0):
    return {
        "id": id,
        "title": title,
        "description": f"{title}.",
        "priority": "HIGH",
        "optimistic_hours": hours / 2,
        "estimated_hours": hours,
        "pessimistic_hours": hours * 2,
        "dependencies": list(deps),
        "assigned_to": agent,
        "required_capabilities": list(caps),
        "acceptance_criteria": [f"{title} done"],
        "requirement_indexes": list(reqs),
    }


def plan_json(*tasks: dict) -> str:
    return json.dumps({"tasks": list(tasks), "risks": [], "assumptions": ["From the model."]})


GOOD = plan_json(
    task("schema", "Design the schema", caps=("PostgreSQL",), reqs=(1,)),
    task("api", "Build the endpoints", deps=("schema",), agent="bob", reqs=(0,)),
    task("tests", "Test the API", deps=("api",), agent="bob", reqs=(0, 1), hours=4),
)
CYCLE = plan_json(task("a", "Design", deps=("b",), reqs=(0, 1)), task("b", "Build", deps=("a",)))
UNKNOWN_AGENT = plan_json(task("a", "Design", agent="zed", reqs=(0, 1)))


async def generate(running, **kw):
    timeout = kw.pop("timeout", 30)
    async with grpc.aio.insecure_channel(running.address) as ch:
        return await pb_grpc.PlanningServiceStub(ch).GeneratePlan(
            pb.GeneratePlanRequest(brief=BRIEF, **kw), timeout=timeout
        )


async def status(running) -> dict[str, ops_service_pb2.BackendStatus]:
    async with grpc.aio.insecure_channel(running.address) as ch:
        r = await ops_grpc.OpsServiceStub(ch).GetServiceStatus(
            ops_service_pb2.GetServiceStatusRequest()
        )
    return {b.name: b for b in r.backends}


def outcomes(attempts) -> list[tuple[str, int]]:
    return [(a.backend, a.outcome) for a in attempts]


async def test_a_good_plan_is_used_and_validated(llm, plansmith):
    llm.script("good", Reply(GOOD))
    running = await plansmith(backend_toml("llm", "good") + every_request_to("llm"))
    r = await generate(running)
    assert r.result.backend == "llm"
    assert outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_SUCCEEDED)]
    assert r.attempts[0].tokens > 0
    titles = [t.task.title for t in r.result.tasks]
    assert titles == ["Design the schema", "Build the endpoints", "Test the API"]
    ids = [t.task.id for t in r.result.tasks]
    assert ids == ["t1", "t2", "t3"] and list(r.result.tasks[1].task.dependencies) == ["t1"]
    assert r.result.tasks[1].task.assigned_to == "bob"
    # Scheduled with the model's agents: the chain is 8 + 8 + 4 hours.
    assert r.result.estimated_duration_hours == 20
    assert 0 < r.result.confidence <= 1
    sent = llm.bodies("good")[0]
    assert sent["response_format"]["type"] == "json_schema"
    schema = sent["response_format"]["json_schema"]["schema"]
    item = schema["properties"]["tasks"]["items"]
    assert item["properties"]["assigned_to"]["enum"] == ["ann", "bob", ""]
    assert set(item["required"]) == set(item["properties"]) and not item["additionalProperties"]
    assert llm.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_the_stream_shows_progress_attempts_then_the_plan_events(llm, plansmith):
    llm.script("good", Reply(GOOD * 1 + " " * 1500))
    running = await plansmith(backend_toml("llm", "good") + every_request_to("llm"))
    async with grpc.aio.insecure_channel(running.address) as ch:
        events = [
            e
            async for e in pb_grpc.PlanningServiceStub(ch).StreamGeneratePlan(
                pb.StreamGeneratePlanRequest(brief=BRIEF)
            )
        ]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert any("characters of the plan received" in e.progress.message for e in events)
    attempt_at = kinds.index("attempt")
    assert events[attempt_at].attempt.outcome == G.ATTEMPT_OUTCOME_SUCCEEDED
    assert kinds.count("task_proposed") == 3 and kinds.count("assignment") == 3
    assert attempt_at < kinds.index("task_proposed")
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[-1].completed.backend == "llm"


async def test_invalid_json_is_repaired_with_one_re_ask(llm, plansmith):
    llm.script("m", Reply("{not json"), Reply(GOOD))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    r = await generate(running)
    assert r.result.backend == "llm"
    assert outcomes(r.attempts) == [
        ("llm", G.ATTEMPT_OUTCOME_RETRIED),
        ("llm", G.ATTEMPT_OUTCOME_SUCCEEDED),
    ]
    assert "not JSON" in r.attempts[0].reason
    repair = llm.bodies("m")[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "{not json"}
    assert "not JSON" in repair[-1]["content"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [(CYCLE, "dependency cycle"), (UNKNOWN_AGENT, "assigned_to is 'zed'")],
)
async def test_an_invalid_plan_twice_falls_back_without_hurting_the_breaker(
    llm, plansmith, content, problem
):
    llm.script("m", Reply(content))
    running = await plansmith(
        backend_toml("llm", "m", breaker_failures=1) + every_request_to("llm")
    )
    for _ in range(2):
        r = await generate(running)
        assert r.result.backend == "embedded"
        assert outcomes(r.attempts) == [
            ("llm", G.ATTEMPT_OUTCOME_RETRIED),
            ("llm", G.ATTEMPT_OUTCOME_INVALID_OUTPUT),
        ]
        assert problem in r.attempts[1].reason
    assert problem in llm.bodies("m")[1]["messages"][-1]["content"]  # the re-ask says why
    s = (await status(running))["llm"]
    assert s.breaker_state == ops_service_pb2.BREAKER_STATE_CLOSED and s.failures == 0
    assert s.fallbacks == 2 and s.calls == 4


async def test_truncated_output_is_its_own_outcome(llm, plansmith):
    llm.script("m", Reply(GOOD[:100], finish_reason="length"))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    r = await generate(running)
    assert r.result.backend == "embedded"
    assert outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_TRUNCATED)]
    assert "cut off" in r.attempts[0].reason


async def test_429_with_a_long_retry_after_opens_the_breaker_for_that_long(llm, plansmith):
    llm.script("m", Reply(status=429, headers={"Retry-After": "120"}))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    r = await generate(running)
    assert r.result.backend == "embedded"
    assert outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_FAILED)]
    assert "HTTP 429" in r.attempts[0].reason and "Retry-After 120" in r.attempts[0].reason
    start = time.monotonic()
    again = await generate(running)
    assert time.monotonic() - start < 1.0  # straight to the embedded planner
    assert outcomes(again.attempts) == [("llm", G.ATTEMPT_OUTCOME_SKIPPED_BREAKER_OPEN)]
    assert len(llm.requests) == 1  # not asked again
    s = (await status(running))["llm"]
    assert s.breaker_state == ops_service_pb2.BREAKER_STATE_OPEN
    assert 100 < s.open_seconds_left <= 120


async def test_429_with_a_short_retry_after_is_waited_out(llm, plansmith):
    llm.script("m", Reply(status=429, headers={"Retry-After": "1"}), Reply(GOOD))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    start = time.monotonic()
    r = await generate(running)
    assert time.monotonic() - start >= 1.0
    assert r.result.backend == "llm"
    assert outcomes(r.attempts) == [
        ("llm", G.ATTEMPT_OUTCOME_RETRIED),
        ("llm", G.ATTEMPT_OUTCOME_SUCCEEDED),
    ]


async def test_5xx_falls_back_and_opens_the_breaker_after_its_threshold(llm, plansmith):
    llm.script("m", Reply(status=500))
    toml = backend_toml("llm", "m", breaker_failures=2) + every_request_to("llm")
    running = await plansmith(toml)
    for _ in range(2):
        r = await generate(running)
        assert r.result.backend == "embedded"
        assert outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_FAILED)]
        assert r.attempts[0].reason.startswith("HTTP 500")
    r = await generate(running)
    assert outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_SKIPPED_BREAKER_OPEN)]
    s = (await status(running))["llm"]
    assert (s.calls, s.failures, s.fallbacks) == (2, 2, 3)
    assert s.breaker_state == ops_service_pb2.BREAKER_STATE_OPEN and "HTTP 500" in s.last_error


async def test_a_hang_is_cut_by_the_backend_timeout(llm, plansmith):
    llm.script("m", Reply(hang=True))
    toml = backend_toml("llm", "m", timeout_seconds=0.5) + every_request_to("llm")
    running = await plansmith(toml)
    r = await generate(running)
    assert r.result.backend == "embedded"
    assert outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_FAILED)]
    assert "timed out" in r.attempts[0].reason


async def test_a_hang_is_cut_by_the_callers_deadline(llm, plansmith):
    llm.script("m", Reply(hang=True))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))  # 60 s
    start = time.monotonic()
    r = await generate(running, timeout=1.5)
    took = time.monotonic() - start
    assert r.result.backend == "embedded" and took < 1.5
    assert outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_FAILED)]


async def test_fallback_order_follows_the_rule(llm, plansmith):
    llm.script("down", Reply(status=503))
    llm.script("good", Reply(GOOD))
    toml = (
        backend_toml("first", "down")
        + backend_toml("second", "good")
        + '[[rules]]\nname = "r"\nbackend = "first"\nfallback = ["second"]\n'
    )
    running = await plansmith(toml)
    r = await generate(running)
    assert r.result.backend == "second"
    assert outcomes(r.attempts) == [
        ("first", G.ATTEMPT_OUTCOME_FAILED),
        ("second", G.ATTEMPT_OUTCOME_SUCCEEDED),
    ]


async def test_a_budget_skips_a_backend_that_would_cost_too_much(llm, plansmith):
    llm.script("good", Reply(GOOD))
    toml = backend_toml("llm", "good", price_output_per_1k=0.01) + every_request_to("llm")
    running = await plansmith(toml)
    r = await generate(running, budget=G.GenerationBudget(max_cost=0.001))
    assert r.result.backend == "embedded"
    assert outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_SKIPPED_OVER_BUDGET)]
    assert "exceeds the budget" in r.attempts[0].reason
    assert not llm.requests
    ok = await generate(running, budget=G.GenerationBudget(max_cost=1.0))
    assert ok.result.backend == "llm" and 0 < ok.attempts[0].cost <= 1.0


async def test_a_request_may_name_a_backend_and_unknown_names_are_refused(llm, plansmith):
    llm.script("good", Reply(GOOD))
    running = await plansmith(backend_toml("llm", "good"))  # no rule: embedded by default
    assert (await generate(running)).result.backend == "embedded"
    assert (await generate(running, backend="llm")).result.backend == "llm"
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await generate(running, backend="gpt-9")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = details_of(e.value)["ErrorInfo"]
    assert info.reason == "UNKNOWN_BACKEND" and info.metadata["configured"] == "llm,embedded"


async def test_misconfiguration_opens_the_breaker_and_the_key_never_leaks(llm, plansmith, caplog):
    caplog.set_level(logging.DEBUG)
    # A server that echoes the key back in its error must not make us repeat it.
    llm.script("m", Reply(status=401, body={"error": {"message": f"bad key {API_KEY}"}}))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    r = await generate(running)
    assert outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_FAILED)]
    assert "HTTP 401" in r.attempts[0].reason and "[redacted]" in r.attempts[0].reason
    s = (await status(running))["llm"]
    assert s.breaker_state == ops_service_pb2.BREAKER_STATE_OPEN
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await generate(running, backend="nope")
    seen = [str(r), str(s), caplog.text, str(e.value), repr(running.router.config)]
    assert all(API_KEY not in text for text in seen)


async def test_decompose_and_estimate_through_the_model(llm, plansmith):
    subtasks = [
        {
            "id": x,
            "title": f"Step {x}",
            "description": "d",
            "priority": "MEDIUM",
            "optimistic_hours": 1,
            "estimated_hours": 2,
            "pessimistic_hours": 4,
            "dependencies": [] if x == "a" else ["a"],
            "required_capabilities": [],
            "acceptance_criteria": [],
        }
        for x in ("a", "b", "c")
    ]
    llm.script("d", Reply(json.dumps({"subtasks": subtasks, "explanation": "why"})))
    llm.script(
        "e",
        Reply(
            json.dumps(
                {
                    "estimate_hours": 6,
                    "low_hours": 4,
                    "high_hours": 9,
                    "confidence": 0.6,
                    "similar_task_ids": [],
                    "explanation": "like others",
                }
            )
        ),
    )
    running = await plansmith(backend_toml("dec", "d") + backend_toml("est", "e"))
    async with grpc.aio.insecure_channel(running.address) as ch:
        stub = pb_grpc.PlanningServiceStub(ch)
        d = await stub.DecomposeTask(
            pb.DecomposeTaskRequest(
                description="Set up CI",
                level=pb.DECOMPOSITION_LEVEL_SUMMARY,
                estimated_hours=12,
                backend="dec",
            )
        )
        assert d.backend == "dec" and d.method == "llm:dec"
        assert [t.id for t in d.subtasks] == ["s1", "s2", "s3"]
        assert sum(t.estimated_hours for t in d.subtasks) == pytest.approx(12)
        e = await stub.EstimateTaskDuration(
            pb.EstimateTaskDurationRequest(task_description="Write a runbook", backend="est")
        )
        assert (e.backend, e.method, e.estimate_hours) == ("est", "llm:est", 6)


async def test_a_retried_persist_returns_the_first_generation(llm, plansmith):
    other = plan_json(task("x", "Something else entirely", reqs=(0, 1)))
    llm.script("m", Reply(GOOD), Reply(other))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    first = await generate(running, persist=True, request_id="llm-gen-1")
    again = await generate(running, persist=True, request_id="llm-gen-1")
    assert again.result == first.result and len(llm.requests) == 1
    async with grpc.aio.insecure_channel(running.address) as ch:
        events = [
            e
            async for e in pb_grpc.PlanningServiceStub(ch).StreamGeneratePlan(
                pb.StreamGeneratePlanRequest(brief=BRIEF, persist=True, request_id="llm-gen-1")
            )
        ]
        assert events[-1].completed == first.result and len(llm.requests) == 1
        listed = await ps_grpc.PlanServiceStub(ch).ListPlans(ps.ListPlansRequest())
        assert listed.total_size == 1


async def test_without_routing_nothing_changes(server, llm):
    assert [b.name for b in server.router.status()] == ["embedded"]
    r = await generate(server)
    assert r.result.backend == "embedded" and not r.attempts


async def test_a_concurrent_breaker_skip_costs_no_time(llm, plansmith):
    llm.script("m", Reply(status=503))
    running = await plansmith(
        backend_toml("llm", "m", breaker_failures=1) + every_request_to("llm")
    )
    await generate(running)
    start = time.monotonic()
    results = await asyncio.gather(*(generate(running) for _ in range(5)))
    assert time.monotonic() - start < 2.0
    assert all(
        outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_SKIPPED_BREAKER_OPEN)] for r in results
    )


async def test_half_open_lets_one_trial_through_and_skips_the_others(llm, plansmith):
    # 429 asking for 1 s (more than we wait) opens the breaker for 1 s; then the trial
    # hangs until its timeout while two other requests arrive.
    llm.script("m", Reply(status=429, headers={"Retry-After": "1"}), Reply(hang=True))
    toml = backend_toml("llm", "m", max_retry_wait_seconds=0, timeout_seconds=1.0)
    running = await plansmith(toml + every_request_to("llm"))
    first = await generate(running)
    assert outcomes(first.attempts) == [("llm", G.ATTEMPT_OUTCOME_FAILED)]

    async def half_open() -> bool:
        return (await status(running))["llm"].breaker_state == (
            ops_service_pb2.BREAKER_STATE_HALF_OPEN
        )

    from tests.conftest import wait_for

    await wait_for(half_open, within=5)
    trial = asyncio.ensure_future(generate(running))

    async def trial_sent() -> bool:
        return len(llm.requests) == 2

    await wait_for(trial_sent)
    others = await asyncio.gather(generate(running), generate(running))
    assert all(
        outcomes(r.attempts) == [("llm", G.ATTEMPT_OUTCOME_SKIPPED_BREAKER_OPEN)] for r in others
    )
    assert outcomes((await trial).attempts) == [("llm", G.ATTEMPT_OUTCOME_FAILED)]
    assert len(llm.requests) == 2


async def test_caller_errors_never_reach_the_model(llm, plansmith):
    llm.script("good", Reply(GOOD))
    running = await plansmith(backend_toml("llm", "good") + every_request_to("llm"))
    vague = pb.GeneratePlanRequest(brief=generation_pb2.PlanBrief(name="x", description="Deploy"))
    async with grpc.aio.insecure_channel(running.address) as ch:
        stub = pb_grpc.PlanningServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.GeneratePlan(vague)
        assert details_of(e.value)["ErrorInfo"].reason == "TASK_DESCRIPTION_TOO_VAGUE"
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.GeneratePlan(
                pb.GeneratePlanRequest(brief=BRIEF, budget=G.GenerationBudget(max_cost=-1))
            )
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details_of(e.value)["BadRequest"].field_violations[0].field == "budget.max_cost"
    assert not llm.requests
    assert (await status(running))["llm"].failures == 0
