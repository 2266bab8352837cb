"""Risk assessment and confidence of a scheduled plan.

Risks come from two places: the library (each primitive task's known risks) and the
assessment of the plan as a whole -- deadline vs. scheduled duration, capability gaps,
load concentrated on one agent, wide estimate ranges, requirements planned generically.
Confidence is the calibrated probability that a reviewer accepts the plan's structure
(``confidence.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .assignment import Schedule
from .confidence import confidence_features, plan_confidence
from .constraints import ConstraintAnalysis
from .library import RiskTemplate
from .plan import SEVERITY_ORDER, PlannedTask, PlanWarning, RequirementCoverage, Risk, Severity
from .recognition import Recognition

__all__ = ["MAX_LIBRARY_RISKS", "Assessment", "assess_plan"]

MAX_LIBRARY_RISKS = 12
"""Library risks kept (highest severity first) so the risk list stays readable."""


@dataclass(frozen=True)
class Assessment:
    """Risks, confidence, and extra warnings/assumptions from the assessment."""

    risks: tuple[Risk, ...]
    confidence: float
    warnings: tuple[PlanWarning, ...]
    assumptions: tuple[str, ...]


def assess_plan(
    tasks: Sequence[PlannedTask],
    task_risks: Sequence[tuple[str, RiskTemplate]],
    coverage: Sequence[RequirementCoverage],
    schedule: Schedule,
    constraints: ConstraintAnalysis,
    *,
    agents_given: bool,
    hours_per_day: float,
    recognition: Recognition | None = None,
) -> Assessment:
    """Assess a scheduled plan.

    Args:
        tasks: Final tasks (assigned and scheduled).
        task_risks: Library risks per task id.
        coverage: Requirement coverage.
        schedule: The schedule.
        constraints: Understood constraints (deadline, budget).
        agents_given: Whether the request named any agents.
        hours_per_day: For expressing durations in days.
    """
    risks: list[Risk] = []
    warnings: list[PlanWarning] = []
    assumptions: list[str] = []
    total_effort = sum(t.estimated_hours for t in tasks)

    deadline = constraints.deadline
    if deadline is not None:
        days = schedule.makespan / hours_per_day
        if deadline.hours <= 0:
            risks.append(
                Risk(
                    Severity.CRITICAL,
                    f"The deadline in '{deadline.constraint}' has already passed.",
                    "Agree a new date with the stakeholders before starting.",
                    (),
                    "assessment",
                )
            )
            warnings.append(
                PlanWarning(
                    "DEADLINE_AT_RISK", f"The deadline '{deadline.constraint}' is already past."
                )
            )
        elif schedule.makespan > deadline.hours:
            ratio = schedule.makespan / deadline.hours
            severity = Severity.CRITICAL if ratio > 1.5 else Severity.HIGH
            critical = tuple(t.id for t in tasks if t.on_critical_path)
            risks.append(
                Risk(
                    severity,
                    f"Scheduled duration {schedule.makespan:g} h (~{days:.1f} working days) "
                    "exceeds the deadline of "
                    f"{deadline.hours:g} h from '{deadline.constraint}' by {ratio - 1:.0%}.",
                    "Cut or defer scope, add agents with the critical-path skills, or move the "
                    "deadline; "
                    "the critical-path tasks are the ones to act on.",
                    critical,
                    "assessment",
                )
            )
            warnings.append(
                PlanWarning(
                    "DEADLINE_AT_RISK",
                    f"Estimated duration {schedule.makespan:g} h exceeds the deadline "
                    f"({deadline.hours:g} h).",
                )
            )
        elif schedule.makespan_high > deadline.hours:
            risks.append(
                Risk(
                    Severity.MEDIUM,
                    f"The expected duration ({schedule.makespan:g} h) fits the deadline "
                    f"({deadline.hours:g} h) but the "
                    f"pessimistic one ({schedule.makespan_high:g} h) does not.",
                    "Track critical-path progress weekly and decide early on scope cuts.",
                    tuple(t.id for t in tasks if t.on_critical_path),
                    "assessment",
                )
            )
    if constraints.budget_hours is not None and total_effort > constraints.budget_hours:
        risks.append(
            Risk(
                Severity.HIGH,
                f"Total effort {total_effort:.1f} h exceeds the stated budget of "
                f"{constraints.budget_hours:g} h.",
                "Reduce scope or renegotiate the budget before committing.",
                (),
                "assessment",
            )
        )
        warnings.append(
            PlanWarning("BUDGET_AT_RISK", f"Total effort {total_effort:.1f} h exceeds the budget.")
        )

    for gap in schedule.gaps:
        risks.append(
            Risk(
                Severity.HIGH,
                f"No available agent can do work needing {', '.join(gap.capabilities)} "
                f"({gap.hours:g} h in "
                f"{len(gap.task_ids)} task(s)).",
                "Bring in someone with these skills, train an agent, or descope these tasks; they "
                "stay unassigned.",
                gap.task_ids,
                "assessment",
            )
        )
        warnings.append(PlanWarning("CAPABILITY_GAP", gap.description))
    if not agents_given:
        warnings.append(PlanWarning("NO_AGENTS", "No agents were given; tasks are unassigned."))

    real_load = [(a, h) for a, h in schedule.load if h > 0]
    if len(schedule.load) > 1 and total_effort > 0:
        top_agent, top_hours = max(
            real_load, key=lambda item: (item[1], item[0]), default=("", 0.0)
        )
        if top_hours / total_effort > 0.6:
            risks.append(
                Risk(
                    Severity.MEDIUM,
                    f"Agent {top_agent} carries {top_hours / total_effort:.0%} of the effort and "
                    "is a single point of failure.",
                    "Spread knowledge with pairing and reviews; cross-train another agent on these "
                    "skills.",
                    tuple(t.id for t in tasks if t.assigned_to == top_agent),
                    "assessment",
                )
            )

    generic = [c for c in coverage if c.match == "generic"]
    if generic:
        risks.append(
            Risk(
                Severity.MEDIUM,
                f"{len(generic)} requirement(s) matched nothing in the method library and were "
                "planned generically; "
                "their estimates are rough.",
                "Refine these requirements with the requester and re-plan or re-estimate them.",
                tuple(tid for c in generic for tid in c.task_ids),
                "assessment",
            )
        )

    # Library risks: highest severity first, then plan order; de-duplicated by text.
    seen: dict[str, int] = {}
    library: list[Risk] = []
    for task_id, template in task_risks:
        if template.description in seen:
            i = seen[template.description]
            library[i] = Risk(
                library[i].severity,
                library[i].description,
                library[i].mitigation,
                (*library[i].task_ids, task_id),
                "library",
            )
            continue
        seen[template.description] = len(library)
        library.append(
            Risk(
                Severity(template.severity),
                template.description,
                template.mitigation,
                (task_id,),
                "library",
            )
        )
    order = {id(r): i for i, r in enumerate(library)}
    library.sort(key=lambda r: (-SEVERITY_ORDER[r.severity], order[id(r)]))
    risks.extend(library[:MAX_LIBRARY_RISKS])
    stable = {id(r): i for i, r in enumerate(risks)}
    risks.sort(key=lambda r: (-SEVERITY_ORDER[r.severity], stable[id(r)]))

    # Schedule, budget and staffing problems are risks above, not doubts about the
    # plan's structure: confidence is only about the latter (see confidence.py).
    confidence = plan_confidence(confidence_features(recognition, coverage))
    return Assessment(tuple(risks), confidence, tuple(warnings), tuple(assumptions))
