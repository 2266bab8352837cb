"""Inputs of plan generation: the request, the agents and the tunable configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_CONFIG", "AgentSpec", "PlanRequest", "PlanningConfig"]


def _tuple_of_str(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class AgentSpec:
    """An agent (person or bot) that can be assigned tasks.

    Attributes:
        id: Unique id of the agent; assignments refer to it.
        name: Display name (used in explanations only).
        capabilities: Free-form skills or roles ("React", "Backend developer"...).
    """

    id: str
    name: str = ""
    capabilities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "capabilities", _tuple_of_str(self.capabilities))


@dataclass(frozen=True)
class PlanRequest:
    """A GeneratePlan request.

    Lists may be passed as lists; they are stored as tuples. ``context`` is a plain
    mapping (what a protobuf ``Struct`` converts to): keys such as ``environment``
    (``"production"``/``"staging"``...), ``tech_stack`` (list or comma-separated
    string), ``team_size`` (number), ``backup_required`` (bool), ``downtime_allowed``
    (bool), ``compliance`` (string or list, e.g. ``"PCI-DSS"``), ``service_count``
    (number), ``hours_per_day`` (number). Unknown keys are kept and ignored.

    Attributes:
        name: Plan name (required).
        description: What the plan is for (required).
        requirements: What the outcome must provide; each must end up covered by tasks.
        constraints: Deadlines ("within 2 weeks"), mandates ("must use React for the
            frontend") and free-form constraints (echoed, noted in assumptions).
        available_agents: Who can do the work.
        context: Extra facts about the environment (see above).
        project_id: Echoed only; the domain does not use it.
    """

    name: str
    description: str
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    available_agents: tuple[AgentSpec, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)
    project_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "requirements", _tuple_of_str(self.requirements))
        object.__setattr__(self, "constraints", _tuple_of_str(self.constraints))
        object.__setattr__(self, "available_agents", tuple(self.available_agents or ()))
        object.__setattr__(self, "context", dict(self.context or {}))


@dataclass(frozen=True)
class PlanningConfig:
    """Tunable knobs of the planner (all deterministic).

    Attributes:
        hours_per_day: Working hours in a day (deadline conversion, default 8).
        working_days_per_week: Working days in a week (5 = Monday to Friday).
        default_team_size: Parallel workers assumed when no agents and no
            ``context.team_size`` are given.
        max_requirements: Requests with more requirements are rejected.
        max_text_length: Longest accepted name/description/requirement/constraint.
        max_agents: Requests with more agents are rejected.
    """

    hours_per_day: float = 8.0
    working_days_per_week: int = 5
    default_team_size: int = 3
    max_requirements: int = 100
    max_text_length: int = 10_000
    max_agents: int = 200


DEFAULT_CONFIG = PlanningConfig()
