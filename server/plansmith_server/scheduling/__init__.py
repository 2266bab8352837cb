"""Scheduling and plan-analysis domain: pure Python (numpy; OR-Tools optional).

Nothing here imports grpc or generated protobuf code. Entry points:

- Scheduling: :func:`make_scheduler`, :class:`SchedulingProblem`, :class:`ScheduleResult`,
  :func:`validate_schedule`, :func:`current_assignment_schedule`, :func:`better_of`,
  :func:`problem_from_tasks`, :func:`load_sm` (PSPLIB).
- Analysis of a plan (:class:`PlanTask`): :func:`cpm_for_tasks` / :func:`analyze_cpm`,
  :func:`schedule_current_plan` (resource-aware critical chain),
  :func:`analyze_utilization`, :func:`assess_risk` / :func:`forecast`,
  :func:`suggest_next_tasks`.
"""

from __future__ import annotations

from .baseline import apply_assignments, better_of, current_assignment_schedule
from .cpm import CpmResult, TaskTiming, analyze_cpm, cpm_arrays, cpm_for_tasks
from .current_plan import current_plan_problem, schedule_current_plan
from .errors import (
    DependencyCycleError,
    InfeasibleProblemError,
    InvalidProblemError,
    SchedulingError,
)
from .factory import (
    CPSAT_MAX_MODEL_SIZE,
    FallbackScheduler,
    Scheduler,
    make_scheduler,
    preload_solver,
)
from .heuristic import HeuristicScheduler
from .model import (
    Activity,
    AgentWorkload,
    Goal,
    LowerBounds,
    Resource,
    ScheduledActivity,
    ScheduleResult,
    ScheduleStatus,
    SchedulingProblem,
    SolverStats,
    UnschedulableActivity,
)
from .montecarlo import Distribution
from .plan import PlanTask, Priority, TaskStatus, problem_from_tasks
from .psplib import load_sm, parse_sm
from .risk import (
    Forecast,
    RiskDriver,
    RiskItem,
    RiskKind,
    RiskReport,
    Severity,
    assess_risk,
    forecast,
)
from .stop import StopToken
from .suggestions import Suggestion, suggest_next_tasks
from .utilization import (
    AgentUtilization,
    CapabilityGap,
    Overallocation,
    UtilizationReport,
    analyze_utilization,
)
from .validation import InvalidScheduleError, assert_valid_schedule, validate_schedule

__all__ = [
    "CPSAT_MAX_MODEL_SIZE",
    "Activity",
    "AgentUtilization",
    "AgentWorkload",
    "CapabilityGap",
    "CpmResult",
    "DependencyCycleError",
    "Distribution",
    "FallbackScheduler",
    "Forecast",
    "Goal",
    "HeuristicScheduler",
    "InfeasibleProblemError",
    "InvalidProblemError",
    "InvalidScheduleError",
    "LowerBounds",
    "Overallocation",
    "PlanTask",
    "Priority",
    "Resource",
    "RiskDriver",
    "RiskItem",
    "RiskKind",
    "RiskReport",
    "ScheduleResult",
    "ScheduleStatus",
    "ScheduledActivity",
    "Scheduler",
    "SchedulingError",
    "SchedulingProblem",
    "Severity",
    "SolverStats",
    "StopToken",
    "Suggestion",
    "TaskStatus",
    "TaskTiming",
    "UnschedulableActivity",
    "UtilizationReport",
    "analyze_cpm",
    "analyze_utilization",
    "apply_assignments",
    "assert_valid_schedule",
    "assess_risk",
    "better_of",
    "cpm_arrays",
    "cpm_for_tasks",
    "current_assignment_schedule",
    "current_plan_problem",
    "forecast",
    "load_sm",
    "make_scheduler",
    "parse_sm",
    "preload_solver",
    "problem_from_tasks",
    "schedule_current_plan",
    "suggest_next_tasks",
    "validate_schedule",
]
