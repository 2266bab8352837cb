"""Events of streamed plan generation.

:func:`plansmith_server.planning.generator.generate_plan_events` yields, in order:

1. ``PhaseEvent("analyzing", 0)`` -- emitted before any heavy work;
2. ``WarningEvent`` for problems found while reading the request (if any);
3. ``PhaseEvent("decomposing", 20)``, then one ``TaskProposedEvent`` per task (final
   ids, dependencies, estimates; not yet assigned or scheduled);
4. ``PhaseEvent("assigning", 55)``, then one ``TaskAssignedEvent`` per task;
5. ``PhaseEvent("scheduling", 75)``;
6. ``PhaseEvent("assessing", 90)``, then ``WarningEvent`` for assessment findings;
7. ``CompletedEvent`` carrying the same ``GeneratedPlan`` the one-shot call returns.

Every event has a ``kind`` string and a ``percent`` (0-100, non-decreasing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .plan import GeneratedPlan, PlannedTask

__all__ = [
    "PHASES",
    "CompletedEvent",
    "PhaseEvent",
    "PlanEvent",
    "TaskAssignedEvent",
    "TaskProposedEvent",
    "WarningEvent",
]

PHASES = ("analyzing", "decomposing", "assigning", "scheduling", "assessing")


@dataclass(frozen=True)
class PhaseEvent:
    """A new phase started.

    Attributes:
        phase: One of :data:`PHASES`.
        percent: Overall progress.
        message: Human-readable status line.
    """

    phase: str
    percent: int
    message: str
    kind: str = field(default="phase", init=False)


@dataclass(frozen=True)
class TaskProposedEvent:
    """A task of the plan (final id/dependencies; ``assigned_to`` still empty)."""

    task: PlannedTask
    percent: int
    kind: str = field(default="task_proposed", init=False)


@dataclass(frozen=True)
class TaskAssignedEvent:
    """A task got an agent (or could not: ``agent_id`` empty, ``reason`` says why)."""

    task_id: str
    agent_id: str
    reason: str
    percent: int
    kind: str = field(default="task_assigned", init=False)


@dataclass(frozen=True)
class WarningEvent:
    """Something the caller should know (same code/message as ``PlanWarning``)."""

    code: str
    message: str
    percent: int
    kind: str = field(default="warning", init=False)


@dataclass(frozen=True)
class CompletedEvent:
    """The final plan; always the last event."""

    plan: GeneratedPlan
    percent: int = 100
    kind: str = field(default="completed", init=False)


PlanEvent = PhaseEvent | TaskProposedEvent | TaskAssignedEvent | WarningEvent | CompletedEvent
