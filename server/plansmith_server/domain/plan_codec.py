"""A generated plan as JSON and back: what a request_id's record keeps, so that a retry
returns the first generation instead of making a new one (a model does not repeat
itself)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from plansmith_server import planning


def encode(plan: planning.GeneratedPlan) -> dict[str, Any]:
    return asdict(plan)


def _task(d: dict[str, Any]) -> planning.PlannedTask:
    return planning.PlannedTask(
        **{
            **d,
            "priority": planning.Priority(d["priority"]),
            "dependencies": tuple(d["dependencies"]),
            "required_capabilities": tuple(d["required_capabilities"]),
            "acceptance_criteria": tuple(d["acceptance_criteria"]),
            "requirement_indexes": tuple(d["requirement_indexes"]),
        }
    )


def decode(d: dict[str, Any]) -> planning.GeneratedPlan:
    e = d["explanation"]
    return planning.GeneratedPlan(
        name=d["name"],
        description=d["description"],
        objectives=tuple(d["objectives"]),
        constraints=tuple(d["constraints"]),
        tasks=tuple(_task(t) for t in d["tasks"]),
        estimated_duration_hours=d["estimated_duration_hours"],
        duration_low_hours=d["duration_low_hours"],
        duration_high_hours=d["duration_high_hours"],
        total_effort_hours=d["total_effort_hours"],
        deadline_hours=d["deadline_hours"],
        confidence=d["confidence"],
        risks=tuple(
            planning.Risk(
                planning.Severity(r["severity"]),
                r["description"],
                r["mitigation"],
                tuple(r["task_ids"]),
                r["source"],
            )
            for r in d["risks"]
        ),
        assumptions=tuple(d["assumptions"]),
        capability_gaps=tuple(
            planning.CapabilityGap(
                tuple(g["capabilities"]), tuple(g["task_ids"]), g["hours"], g["description"]
            )
            for g in d["capability_gaps"]
        ),
        warnings=tuple(planning.PlanWarning(w["code"], w["message"]) for w in d["warnings"]),
        explanation=planning.Explanation(
            requirement_coverage=tuple(
                planning.RequirementCoverage(**{**c, "task_ids": tuple(c["task_ids"])})
                for c in e["requirement_coverage"]
            ),
            methods=tuple(
                planning.MethodChoice(**{**m, "task_ids": tuple(m["task_ids"])})
                for m in e["methods"]
            ),
            rules_applied=tuple(
                planning.AppliedRule(**{**r, "task_ids": tuple(r["task_ids"])})
                for r in e["rules_applied"]
            ),
            summary=e["summary"],
        ),
        context=tuple((k, v) for k, v in d["context"]),
    )
