"""A guided tour of the Plansmith Python client.

Run a server (`plansmith-server --listen 127.0.0.1:50051 --db :memory:`), then:

    python clients/python/examples/quickstart.py [HOST:PORT]

The target also comes from PLANSMITH_TARGET. Each step prints what it did; the script
exits non-zero if anything behaves unexpectedly, which is how the tests run it.
"""

from __future__ import annotations

import asyncio
import os
import sys

from plansmith import (
    AsyncPlansmithClient,
    BreakerPolicy,
    CircuitOpenError,
    DeadlineExceededError,
    EtagMismatchError,
    IdempotencyKeyReusedError,
    PlansmithError,
    PreconditionFailedError,
    ResourceNotFoundError,
    ServiceUnavailableError,
    ValidationError,
    bind_request_id,
    short_name,
)
from plansmith.v1 import plan_pb2, task_pb2


def step(title: str) -> None:
    print(f"\n== {title}")


async def tour(target: str) -> None:
    # 1. Connect. The client retries transient failures, guards the target with a circuit
    #    breaker and gives every call a 30 s deadline unless told otherwise.
    async with AsyncPlansmithClient.connect(target, timeout=10) as client:
        step("Create a plan with its agents")
        plan = await client.create_plan(
            name="Launch the web shop",
            project_id="shop",
            description="Everything needed to take payments online",
            objectives=["Accept card payments", "Go live before the holidays"],
            agents=[
                {"id": "alice", "name": "Alice", "capabilities": ["python", "payments"]},
                {"id": "bob", "name": "Bob", "capabilities": ["react"]},
            ],
        )
        print(f"plan {plan.id}: {plan.name} ({short_name(plan_pb2.PlanStatus, plan.status)})")

        step("Add tasks with dependencies")
        design = await client.create_task(
            "Design the checkout",
            plan_id=plan.id,
            priority="HIGH",
            estimated_hours=6,
            assigned_to="alice",
        )
        backend = await client.create_task(
            "Payment API",
            plan_id=plan.id,
            priority="CRITICAL",
            estimated_hours=16,
            dependencies=[design.id],
            assigned_to="alice",
        )
        # Several at once, all or none; ids in the batch are local references.
        ui, tests = await client.batch_create_tasks(
            plan.id,
            [
                {
                    "id": "ui",
                    "title": "Checkout UI",
                    "dependencies": [design.id],
                    "assigned_to": "bob",
                    "estimated_hours": 12,
                },
                {
                    "id": "e2e",
                    "title": "End-to-end tests",
                    "dependencies": ["ui", backend.id],
                    "priority": "MEDIUM",
                    "estimated_hours": 8,
                },
            ],
        )
        for t in (design, backend, ui, tests):
            print(
                f"{t.id}  {t.title:<20} {short_name(task_pb2.TaskPriority, t.priority):<8}"
                f" after {list(t.dependencies)}"
            )

        step("Update only what changed (the client builds the update mask)")
        design = await client.update_task(design.id, status="IN_PROGRESS", progress=50)
        print(
            f"{design.title}: {short_name(task_pb2.TaskStatus, design.status)}, {design.progress}%"
        )

        step("Page through the tasks")
        first = await client.get_tasks(plan.id, per_page=3)
        print(f"page 1: {[t.title for t in first.tasks]} of {first.total_size}")
        second = await client.get_tasks(plan.id, per_page=3, page=first.next_page_token)
        print(f"page 2: {[t.title for t in second.tasks]}")
        titles = [t.title async for t in client.iter_tasks(plan.id, per_page=2)]
        print(f"all, two per page: {titles}")
        assert len(titles) == 4

        step("Handle each kind of error")
        with bind_request_id("quickstart-lookup"):  # the id the server logs the call under
            try:
                await client.get_task("tsk_does_not_exist")
            except ResourceNotFoundError as err:
                print(
                    f"not found: {err.resource_type} {err.resource_id!r}"
                    f" (request id {err.request_id})"
                )
                assert err.request_id == "quickstart-lookup"

        try:
            await client.create_task("", plan_id=plan.id)  # a title is required
        except ValidationError as err:
            for v in err.validation_errors:
                print(f"invalid: {v.field}: {v.description}")

        stale_etag = design.etag
        await client.update_task(design.id, progress=60)
        try:
            await client.update_task(design.id, progress=70, etag=stale_etag)
        except EtagMismatchError:
            fresh = await client.get_task(design.id)
            design = await client.update_task(design.id, progress=70, etag=fresh.etag)
            print(f"stale etag: re-read and retried, now {design.progress}%")

        await client.create_plan(name="Side project", request_id="quickstart-key")
        try:
            await client.create_plan(name="Another", request_id="quickstart-key")
        except IdempotencyKeyReusedError as err:
            print(f"idempotency key reused: {err.reason}")

        try:
            await client.delete_task(design.id)
        except PreconditionFailedError as err:
            print(f"refused: {err.reason}: {[v.subject for v in err.violations]}")
        detached = await client.delete_task(design.id, force=True)
        print(f"deleted with force; detached {list(detached.detached_task_ids)}")

        try:
            await client.get_plan(plan.id, timeout=0.000001)
        except DeadlineExceededError as err:
            print(f"deadline exceeded: {err.status_code.name}")

        step("Clean up")
        result = await client.delete_plan(plan.id)
        print(f"deleted plan {result.plan_id} with {result.deleted_task_count} tasks")

    step("When the server is down")
    # Nothing listens on port 1. A retry waits for the channel to reconnect (a restart
    # costs latency, not an error), so a server that stays away costs the deadline.
    async with AsyncPlansmithClient.connect(
        "127.0.0.1:1",
        timeout=1,
        breaker=BreakerPolicy(failure_threshold=3, reset_timeout=30),
        on_retry=lambda e: print(
            f"  retry {e.attempt} in {e.delay:.3f}s: {e.error.status_code.name}"
        ),
    ) as down:
        try:
            await down.get_plan("pln_x")
        except DeadlineExceededError as err:
            print(f"gave up at the deadline: {type(err.last_error).__name__}")
        try:
            await down.get_plan("pln_x", retry=None)  # no retry: fails at once
        except ServiceUnavailableError as err:
            print(f"unavailable: {err.status_code.name}")
        try:
            await down.get_plan("pln_x")
        except CircuitOpenError as err:
            print(f"circuit open: failing fast for {err.retry_after:.0f}s more")
        print(f"retry counters: {down.retry_stats.snapshot()}")


def main() -> int:
    target = (
        sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PLANSMITH_TARGET", "localhost:50051")
    )
    try:
        asyncio.run(tour(target))
    except PlansmithError as err:
        print(f"unexpected error: {err!r}", file=sys.stderr)
        return 1
    print("\ndone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
