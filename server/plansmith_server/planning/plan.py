"""Outputs of plan generation: the plan, its tasks, risks, gaps and explanation.

Every value is immutable and built only from the request and the library, so the same
request always yields an equal ``GeneratedPlan``. Hours are rounded to 0.01 h.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "PRIORITY_ORDER",
    "SEVERITY_ORDER",
    "AppliedRule",
    "CapabilityGap",
    "Explanation",
    "GeneratedPlan",
    "MethodChoice",
    "PlanWarning",
    "PlannedTask",
    "Priority",
    "RequirementCoverage",
    "Risk",
    "Severity",
]


class Priority(StrEnum):
    """Task priority; values equal the names (map 1:1 to the proto enum)."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class Severity(StrEnum):
    """Risk severity; values equal the names."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


PRIORITY_ORDER = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2, Priority.CRITICAL: 3}
SEVERITY_ORDER = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True)
class PlannedTask:
    """One task of a generated plan.

    Attributes:
        id: Local id, ``"t1"``, ``"t2"``... in a topological order of the plan.
        title: Short imperative title, unique within the plan.
        description: What to do and why.
        priority: LOW / MEDIUM / HIGH / CRITICAL.
        estimated_hours: Expected effort (PERT mean of the three-point estimate).
        optimistic_hours: Best case (<= estimated_hours).
        pessimistic_hours: Worst case (>= estimated_hours).
        dependencies: Local ids of the tasks that must finish first (sorted by id order).
        assigned_to: Agent id, or ``""`` when unassigned (capability gap / no agents).
        required_capabilities: Canonical capability names, sorted.
        acceptance_criteria: Checkable statements of done.
        requirement_indexes: 0-based indexes into ``PlanRequest.requirements`` served.
        source: Where the task came from: ``"library:<compound>/<method>/<primitive>"``,
            ``"library:<primitive>"`` (added alone for a requirement),
            ``"rule:<rule>/<primitive>"`` (context rule) or ``"generic:<step>"``.
        start_hours: Scheduled start, working hours from plan start.
        finish_hours: Scheduled finish, working hours from plan start.
        on_critical_path: Whether the task drives the plan's duration.
        tags: Library tags of the task (``prod_change``, ``rehearsal``, ``access_grant``...),
            which context rules and orderings act on.
    """

    id: str
    title: str
    description: str
    priority: Priority
    estimated_hours: float
    optimistic_hours: float
    pessimistic_hours: float
    dependencies: tuple[str, ...]
    assigned_to: str
    required_capabilities: tuple[str, ...]
    acceptance_criteria: tuple[str, ...]
    requirement_indexes: tuple[int, ...]
    source: str
    start_hours: float = 0.0
    finish_hours: float = 0.0
    on_critical_path: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Risk:
    """A risk to the plan.

    Attributes:
        severity: LOW / MEDIUM / HIGH / CRITICAL.
        description: What could go wrong.
        mitigation: What the plan (or the team) does about it.
        task_ids: Tasks the risk is about (may be empty for plan-level risks).
        source: ``"library"`` (from the method library) or ``"assessment"``.
    """

    severity: Severity
    description: str
    mitigation: str
    task_ids: tuple[str, ...] = ()
    source: str = "assessment"


@dataclass(frozen=True)
class CapabilityGap:
    """Work that no available agent can do (those tasks stay unassigned).

    Attributes:
        capabilities: The missing canonical capability names, sorted.
        task_ids: Tasks that need them.
        hours: Total estimated hours of those tasks.
        description: Human-readable summary.
    """

    capabilities: tuple[str, ...]
    task_ids: tuple[str, ...]
    hours: float
    description: str


@dataclass(frozen=True)
class RequirementCoverage:
    """How one requirement is covered.

    Attributes:
        index: 0-based index in ``PlanRequest.requirements``.
        requirement: The requirement text.
        task_ids: Tasks serving it (never empty in a valid plan).
        match: ``"library_task"`` (matched library tasks of the plan),
            ``"library_compound"`` (a whole compound task was planned for it),
            ``"library_primitive"`` (a single library task added for it) or
            ``"generic"`` (no library match: design -> build -> verify chain).
        matched: Name of the library entry matched (empty for generic).
        score: Text-similarity score of the match, 0-1 (0 for generic).
        note: One sentence on why.
    """

    index: int
    requirement: str
    task_ids: tuple[str, ...]
    match: str
    matched: str
    score: float
    note: str


@dataclass(frozen=True)
class AppliedRule:
    """A context rule, constraint or mandate that changed the plan.

    Attributes:
        name: Rule name (e.g. ``"production_safeguards"``, ``"mandate:react"``,
            ``"deadline"``).
        description: What it does.
        trigger: What triggered it (e.g. ``"context.environment = production"``).
        task_ids: Tasks it added or changed.
    """

    name: str
    description: str
    trigger: str
    task_ids: tuple[str, ...]


@dataclass(frozen=True)
class MethodChoice:
    """A compound task the planner expanded and the method it chose.

    Attributes:
        compound: Compound task name in the library.
        method: Chosen method name.
        reason: Why this method (conditions met, keyword match, default...).
        score: Similarity of the request text to the compound, 0-1.
        task_ids: Tasks produced by the expansion.
        trigger: What brought the compound in (``"description"``,
            ``"requirements[2]"``...).
    """

    compound: str
    method: str
    reason: str
    score: float
    task_ids: tuple[str, ...]
    trigger: str


@dataclass(frozen=True)
class Explanation:
    """Why the plan looks the way it does.

    Attributes:
        requirement_coverage: One entry per requirement, in request order.
        methods: Compound tasks expanded and the methods chosen.
        rules_applied: Context rules, mandates and deadlines applied.
        summary: A few human-readable sentences.
    """

    requirement_coverage: tuple[RequirementCoverage, ...]
    methods: tuple[MethodChoice, ...]
    rules_applied: tuple[AppliedRule, ...]
    summary: str


@dataclass(frozen=True)
class PlanWarning:
    """Something the caller should know (also streamed as a warning event).

    Attributes:
        code: Machine code, e.g. ``"CAPABILITY_GAP"``, ``"DEADLINE_AT_RISK"``,
            ``"NO_AGENTS"``, ``"CONSTRAINT_NOT_UNDERSTOOD"``, ``"GENERIC_DECOMPOSITION"``,
            ``"DEADLINE_NEEDS_NOW"``, ``"DUPLICATE_REQUIREMENT"``,
            ``"DOMAIN_NOT_RECOGNIZED"``, ``"ORDERING_CONFLICT"``.
        message: Human-readable text.
    """

    code: str
    message: str


@dataclass(frozen=True)
class GeneratedPlan:
    """The result of GeneratePlan.

    Attributes:
        name: Echo of the request name.
        description: Echo of the request description.
        objectives: Echo of the requirements (the plan's objectives).
        constraints: Echo of the constraints.
        tasks: Tasks in id order (``t1``, ``t2``...).
        estimated_duration_hours: Scheduled makespan in working hours (agents work in
            parallel, one task at a time each).
        duration_low_hours: Makespan with optimistic estimates (same schedule order).
        duration_high_hours: Makespan with pessimistic estimates.
        total_effort_hours: Sum of task estimates.
        deadline_hours: Tightest deadline found in constraints, in working hours
            (``None`` when none).
        confidence: Probability (0-1) that a reviewer accepts the plan's structure for
            this brief, calibrated on labelled briefs (see ``confidence.py``).
        risks: Sorted by severity (highest first), then first appearance.
        assumptions: Facts the planner assumed.
        capability_gaps: Work no given agent can do.
        warnings: Things the caller should know.
        explanation: Requirement coverage, methods chosen, rules applied.
        context: The effective context used (explicit + inferred), as sorted
            ``(key, value-as-text)`` pairs.
        domain: The library compound the brief was recognized as (``""`` when none
            fits: then a ``DOMAIN_NOT_RECOGNIZED`` warning says so).
        domain_score: Its recognition score, 0-1 (0 when none).
    """

    name: str
    description: str
    objectives: tuple[str, ...]
    constraints: tuple[str, ...]
    tasks: tuple[PlannedTask, ...]
    estimated_duration_hours: float
    duration_low_hours: float
    duration_high_hours: float
    total_effort_hours: float
    deadline_hours: float | None
    confidence: float
    risks: tuple[Risk, ...]
    assumptions: tuple[str, ...]
    capability_gaps: tuple[CapabilityGap, ...]
    warnings: tuple[PlanWarning, ...]
    explanation: Explanation
    context: tuple[tuple[str, str], ...]
    domain: str = ""
    domain_score: float = 0.0

    def task(self, task_id: str) -> PlannedTask:
        """The task with local id `task_id` (KeyError if absent)."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)
