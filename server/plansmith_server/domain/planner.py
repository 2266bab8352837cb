"""The planner interface, and the embedded planner behind it.

A `PlannerBackend` turns a brief into plan events, decomposes and estimates tasks. The
embedded, deterministic HTN planner (`plansmith_server.planning`) is the default; an LLM
backend can implement the same protocol later and be chosen by routing rules, with the
embedded one as the fallback. Backends are async so a remote one fits without changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from plansmith_server import planning
from plansmith_server.planning import (
    CompletedTask,
    Decomposition,
    DurationEstimate,
    PlanEvent,
    PlanRequest,
    TaskToDecompose,
)


class PlannerBackend(Protocol):
    """What the planning service needs from a planner."""

    name: str

    def generate(self, request: PlanRequest, *, today: date) -> AsyncIterator[PlanEvent]:
        """Events of generating a plan; the last is a `CompletedEvent`. Raises
        `PlanningInputError` (before the first event) for a brief it cannot plan."""
        ...

    async def decompose(
        self, task: TaskToDecompose, level: str, *, context: Mapping[str, Any] | None = None
    ) -> Decomposition: ...

    async def estimate(
        self, description: str, *, agent_id: str, history: Sequence[CompletedTask]
    ) -> DurationEstimate: ...


class EmbeddedPlanner:
    """The deterministic HTN planner, run on the event loop (a plan takes a few ms), handing
    control back to the loop between events so one generation never stalls the others."""

    name = "embedded"

    def __init__(self) -> None:
        # Loading validates the method library: a broken entry stops the server at start-up
        # with a message naming the file and the entry.
        self.library = planning.load_library()

    async def generate(self, request: PlanRequest, *, today: date) -> AsyncIterator[PlanEvent]:
        for event in planning.generate_plan_events(request, now=today, library=self.library):
            yield event
            await asyncio.sleep(0)

    async def decompose(
        self, task: TaskToDecompose, level: str, *, context: Mapping[str, Any] | None = None
    ) -> Decomposition:
        return planning.decompose_task(task, level, context=context, library=self.library)

    async def estimate(
        self, description: str, *, agent_id: str, history: Sequence[CompletedTask]
    ) -> DurationEstimate:
        return planning.estimate_task_duration(
            description, agent_id=agent_id, history=history, library=self.library
        )
