"""The embedded, deterministic planning domain (hierarchical task network).

Public API (pure Python, no gRPC):

* :func:`generate_plan` / :func:`generate_plan_events` -- GeneratePlan, one-shot or
  streamed as events;
* :func:`decompose_task` -- DecomposeTask;
* :func:`estimate_task_duration` -- EstimateTaskDuration;
* :func:`load_library` -- load and validate the method library (call at start-up);
* :func:`validate_plan` -- structural checks of a generated plan;
* :func:`normalize_capability` / :func:`agent_can_do` -- capability matching;
* :class:`PlanningInputError` -- the caller's input cannot be planned.

See ``docs/planning.md``.
"""

from __future__ import annotations

from .capabilities import (
    agent_can_do,
    expand_capabilities,
    missing_capabilities,
    normalize_capability,
)
from .constraints import parse_deadline_hours
from .decomposition import (
    Decomposition,
    DecompositionLevel,
    Subtask,
    TaskToDecompose,
    decompose_task,
)
from .errors import (
    REASON_INVALID_ESTIMATE_REQUEST,
    REASON_INVALID_PLAN_REQUEST,
    REASON_INVALID_TASK,
    REASON_TASK_DESCRIPTION_TOO_VAGUE,
    LibraryError,
    PlanningInputError,
)
from .estimation import CompletedTask, DurationEstimate, EstimateBasis, estimate_task_duration
from .events import (
    PHASES,
    CompletedEvent,
    PhaseEvent,
    PlanEvent,
    TaskAssignedEvent,
    TaskProposedEvent,
    WarningEvent,
)
from .generator import generate_plan, generate_plan_events
from .library import MethodLibrary, load_library, validate_library
from .plan import (
    AppliedRule,
    CapabilityGap,
    Explanation,
    GeneratedPlan,
    MethodChoice,
    PlannedTask,
    PlanWarning,
    Priority,
    RequirementCoverage,
    Risk,
    Severity,
)
from .request import DEFAULT_CONFIG, AgentSpec, PlanningConfig, PlanRequest
from .validator import validate_plan

__all__ = [
    "DEFAULT_CONFIG",
    "PHASES",
    "REASON_INVALID_ESTIMATE_REQUEST",
    "REASON_INVALID_PLAN_REQUEST",
    "REASON_INVALID_TASK",
    "REASON_TASK_DESCRIPTION_TOO_VAGUE",
    "AgentSpec",
    "AppliedRule",
    "CapabilityGap",
    "CompletedEvent",
    "CompletedTask",
    "Decomposition",
    "DecompositionLevel",
    "DurationEstimate",
    "EstimateBasis",
    "Explanation",
    "GeneratedPlan",
    "LibraryError",
    "MethodChoice",
    "MethodLibrary",
    "PhaseEvent",
    "PlanEvent",
    "PlanRequest",
    "PlanWarning",
    "PlannedTask",
    "PlanningConfig",
    "PlanningInputError",
    "Priority",
    "RequirementCoverage",
    "Risk",
    "Severity",
    "Subtask",
    "TaskAssignedEvent",
    "TaskProposedEvent",
    "TaskToDecompose",
    "WarningEvent",
    "agent_can_do",
    "decompose_task",
    "estimate_task_duration",
    "expand_capabilities",
    "generate_plan",
    "generate_plan_events",
    "load_library",
    "missing_capabilities",
    "normalize_capability",
    "parse_deadline_hours",
    "validate_library",
    "validate_plan",
]
