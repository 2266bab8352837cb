"""The `Store` contract (server/plansmith_server/domain/store.py): every implementation
of the port runs these tests. A new implementation adds itself to `STORES` (a name and
an async factory that opens a fresh, empty store in a temporary directory)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from plansmith_server.domain.models import Agent, Plan, PlanStatus, Schedule, Task
from plansmith_server.storage import dsn
from plansmith_server.storage.memory import MemoryStore
from plansmith_server.storage.postgres import PostgresStore
from plansmith_server.storage.sqlite import SqliteStore


async def _sqlite(tmp: Path) -> Any:
    store = SqliteStore(str(tmp / "contract.db"))
    await store.open()
    return store


async def _sqlite_in_memory(tmp: Path) -> Any:
    store = SqliteStore(":memory:")
    await store.open()
    return store


async def _memory(tmp: Path) -> Any:
    return MemoryStore()


async def _postgresql(tmp: Path, request: pytest.FixtureRequest) -> Any:
    store = PostgresStore(dsn.parse(request.getfixturevalue("pg_dsn")))
    await store.open(wait=True)
    return store


STORES: dict[str, Callable[[Path], Awaitable[Any]]] = {
    "sqlite": _sqlite,
    "sqlite-memory": _sqlite_in_memory,
    "memory": _memory,
}

# Factories that need other fixtures (the run's PostgreSQL: a new database each).
STORES_WITH_FIXTURES: dict[str, Callable[[Path, pytest.FixtureRequest], Awaitable[Any]]] = {
    "postgresql": _postgresql,
}


@pytest.fixture(params=sorted([*STORES, *STORES_WITH_FIXTURES]))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param in STORES_WITH_FIXTURES:
        s = await STORES_WITH_FIXTURES[request.param](tmp_path, request)
    else:
        s = await STORES[request.param](tmp_path)
    try:
        yield s
    finally:
        await s.close()


def plan(i: int = 0, **kw: Any) -> Plan:
    kw.setdefault("project_id", "")
    return Plan(id=f"pln_{i}", name=f"plan {i}", revision=1, **kw)


def task(i: int, plan_id: str = "pln_0", **kw: Any) -> Task:
    return Task(id=f"tsk_{i}", plan_id=plan_id, title=f"task {i}", **kw)


FULL_PLAN = Plan(
    id="pln_full",
    project_id="prj_1",
    name="Full",
    description="every field set",
    objectives=("ship", "learn"),
    constraints=("budget",),
    metadata={"k": "v", "x": "y"},
    status=PlanStatus.ACTIVE,
    agents=(Agent("a1", "Ann", ("python", "sql")), Agent("a2")),
    create_time=11,
    update_time=12,
    version=3,
    revision=4,
)


def full_task(plan_id: str, deps: tuple[str, ...] = ()) -> Task:
    from plansmith_server.domain.models import TaskPriority, TaskStatus

    return Task(
        id="tsk_full",
        plan_id=plan_id,
        title="Full",
        description="every field",
        priority=TaskPriority.HIGH,
        status=TaskStatus.IN_PROGRESS,
        estimated_hours=5.5,
        actual_hours=1.25,
        progress=40,
        dependencies=deps,
        assigned_to="a1",
        required_capabilities=("python",),
        parent_task_id="",
        metadata={"m": "1"},
        optimistic_hours=3.0,
        pessimistic_hours=9.0,
        acceptance_criteria=("tests pass",),
        schedule=Schedule(1.0, 6.5),
        create_time=21,
        update_time=22,
        version=2,
    )
