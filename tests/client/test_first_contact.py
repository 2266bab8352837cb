"""What a caller coming from the planning-system client guide writes works, or fails at
once with the client's own errors: a URL target, status names of the guide, metadata
with lists and numbers, argument mistakes caught by `except ValidationError`."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from plansmith import (
    ArgumentError,
    AsyncPlansmithClient,
    PlansmithClient,
    ValidationError,
    decode_metadata,
    encode_metadata,
)
from plansmith.v1 import plan_pb2

# -- a URL target ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme_form", ["http://{}/api", "http://{}", "{}"])
async def test_a_url_target_is_its_host_and_port(fault_server, kind, scheme_form):
    target = scheme_form.format(fault_server.address)
    if kind == "async":
        async with AsyncPlansmithClient.connect(target, timeout=5) as client:
            plan = await client.create_plan("Through a URL")
            assert (await client.get_plan(plan.id)).name == "Through a URL"
    else:

        def run() -> str:
            with PlansmithClient.connect(target, timeout=5) as client:
                plan = client.create_plan("Through a URL")
                return client.get_plan(plan.id).name

        assert await asyncio.to_thread(run) == "Through a URL"


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("ftp://127.0.0.1:50061/api", "use host:port"),
        ("http://127.0.0.1/api", "names no port"),
        ("http:///api", "names no host"),
        ("", "use host:port"),
        (" localhost:50051", "use host:port"),
    ],
)
@pytest.mark.parametrize("cls", [AsyncPlansmithClient, PlansmithClient], ids=["async", "sync"])
async def test_a_target_that_cannot_be_one_fails_at_once(target, says, cls):
    start = time.monotonic()
    with pytest.raises(ValidationError, match=says) as info:
        cls.connect(target)
    assert time.monotonic() - start < 0.5
    assert isinstance(info.value, ArgumentError)
    assert info.value.validation_errors[0].field == "target"


@pytest.mark.parametrize("cls", [AsyncPlansmithClient, PlansmithClient], ids=["async", "sync"])
async def test_bad_default_metadata_fails_at_connect(cls):
    for metadata in ([("X-Team", "web")], [("x-team", 1)], "x-team"):
        with pytest.raises(ValidationError) as info:
            cls.connect("127.0.0.1:1", metadata=metadata)
        assert info.value.validation_errors[0].field == "metadata"


# -- argument errors are the client's ValidationError ------------------------------------


async def test_argument_mistakes_are_validation_errors_and_send_nothing(client, faults):
    plan = await client.create_plan("P")
    task = await client.create_task("t", plan_id=plan.id)
    faults.calls.clear()
    cases = [
        ("status", lambda: client.update_plan(plan.id, status="WIP")),
        ("status", lambda: client.get_plans(status="STARTED")),
        ("priority", lambda: client.create_task("u", plan_id=plan.id, priority="URGENT")),
        ("priority", lambda: client.create_task("u", plan_id=plan.id, priority=True)),
        ("call_metadata", lambda: client.get_task(task.id, call_metadata=[("x-team", 5)])),
        ("call_metadata", lambda: client.get_task(task.id, call_metadata=[("X-Team", "a")])),
        ("call_metadata", lambda: client.get_task(task.id, call_metadata=[("x-t", "a\nb")])),
        ("call_metadata", lambda: client.get_task(task.id, call_metadata=[("x-t-bin", "a")])),
        ("metadata['when']", lambda: client.update_task(task.id, metadata={"when": object()})),
        ("metadata['points']", lambda: client.update_task(task.id, metadata={"points": 1e999})),
        ("task_id", lambda: client.get_task(42)),
        ("title", lambda: client.create_task(7, plan_id=plan.id)),
        ("time_limit", lambda: client.optimize_plan(plan.id, time_limit="5s")),
        ("analysis_types", lambda: client.analyze_plan(plan.id, analysis_types=["CRITICAL"])),
        ("context", lambda: client.generate_plan("G", "d", context={"when": object()})),
        ("page", lambda: client.get_plans(page=0)),
    ]
    for field, call in cases:
        with pytest.raises(ValidationError) as info:
            await call()
        err = info.value
        assert isinstance(err, ArgumentError) and isinstance(err, ValueError), (field, err)
        assert err.validation_errors[0].field == field, (field, err.validation_errors)
        assert str(err).startswith(f"{field}: "), str(err)
    assert sum(faults.calls.values()) == 0, faults.calls


async def test_the_guides_except_clause_catches_a_bad_status(client):
    # The guide's error handling: `except ValidationError as e: print(e.validation_errors)`.
    plan = await client.create_plan("P")
    try:
        await client.update_plan(plan.id, status="STARTED")
    except ValidationError as e:
        assert "use one of" in e.validation_errors[0].description
    else:
        pytest.fail("no ValidationError")


# -- the guide's status names and metadata -----------------------------------------------


async def test_plan_status_in_progress_is_active(client):
    plan = await client.create_plan("P", project_id="guide")
    await client.create_plan("Q", project_id="guide")
    updated = await client.update_plan(plan.id, status="IN_PROGRESS")
    assert updated.status == plan_pb2.PLAN_STATUS_ACTIVE
    active = await client.get_plans(project_id="guide", status="IN_PROGRESS")
    assert [p.id for p in active.plans] == [plan.id]
    created = await client.create_plan("R", status="PLAN_STATUS_IN_PROGRESS")
    assert created.status == plan_pb2.PLAN_STATUS_ACTIVE


async def test_metadata_with_lists_and_numbers_round_trips(client, faults):
    plan = await client.create_plan(
        "P", metadata={"priority": "high", "client": "Acme Corp", "budget": 12000.5}
    )
    written = {
        "skills_required": ["UI/UX", "HTML", "CSS"],
        "resources": ["design-system.pdf"],
        "points": 3,
        "reviewed": False,
        "owner": {"team": "web", "size": 4},
        "note": "42",  # a string that looks like JSON stays a string
    }
    task = await client.create_task("Design homepage", plan_id=plan.id, metadata=written)
    assert decode_metadata(task.metadata) == written
    again = await client.get_task(task.id)
    assert decode_metadata(again.metadata) == written
    # Strings are stored exactly as given; other values as JSON text, listed.
    assert again.metadata["note"] == "42"
    assert json.loads(again.metadata["skills_required"]) == ["UI/UX", "HTML", "CSS"]
    assert json.loads(again.metadata["plansmith.json"]) == sorted(
        ["owner", "points", "resources", "reviewed", "skills_required"]
    )
    assert decode_metadata((await client.get_plan(plan.id)).metadata)["budget"] == 12000.5
    # Only strings: sent exactly as before, nothing added.
    updated = await client.update_task(task.id, metadata={"client": "Acme"})
    assert dict(updated.metadata) == {"client": "Acme"}
    assert dict(faults.requests["UpdateTask"][-1].task.metadata) == {"client": "Acme"}


def test_metadata_encoding_refuses_the_reserved_key_with_json_values():
    assert encode_metadata({"plansmith.json": "x"}) == {"plansmith.json": "x"}
    with pytest.raises(ValidationError, match="reserved"):
        encode_metadata({"plansmith.json": "x", "n": 1})
    # Someone else's edits: a listed key that no longer parses stays text.
    assert decode_metadata({"n": "one", "plansmith.json": '["n"]'}) == {"n": "one"}
