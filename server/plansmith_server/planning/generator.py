"""Plan generation: one-shot and streamed.

:func:`generate_plan_events` is a plain synchronous generator. It validates the
request (raising :class:`~.errors.PlanningInputError` on the first ``next()``, before
any event), yields a first event before any heavy work, and holds all state in local
variables -- stopping it early leaves nothing behind. :func:`generate_plan` drains it
and returns the final plan, so both always agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime

from .assessment import assess_plan
from .assignment import assign_and_schedule
from .constraints import analyze_constraints
from .context import (
    ContextFact,
    build_effective_context,
    context_constraints,
    describe_fact,
    normalize_context,
)
from .events import (
    CompletedEvent,
    PhaseEvent,
    PlanEvent,
    TaskAssignedEvent,
    TaskProposedEvent,
    WarningEvent,
)
from .htn import DraftPlan, build_task_graph
from .library import MethodLibrary, load_library
from .plan import AppliedRule, Explanation, GeneratedPlan, PlanWarning
from .request import DEFAULT_CONFIG, PlanningConfig, PlanRequest
from .request_validation import validate_plan_request
from .slots import extract_slots

__all__ = ["generate_plan", "generate_plan_events"]


def generate_plan(
    request: PlanRequest,
    *,
    now: date | datetime | None = None,
    config: PlanningConfig = DEFAULT_CONFIG,
    library: MethodLibrary | None = None,
) -> GeneratedPlan:
    """Generate a plan in one call.

    Args:
        request: What to plan.
        now: Reference time for absolute deadlines ("by 2027-01-15"); never read from
            the clock so that the same input gives the same plan.
        config: Planner knobs (hours per day...).
        library: Method library (default: the packaged one, loaded once).

    Returns:
        The plan; equal to the ``CompletedEvent.plan`` of :func:`generate_plan_events`.

    Raises:
        PlanningInputError: Invalid or too vague request.
    """
    for event in generate_plan_events(request, now=now, config=config, library=library):
        if isinstance(event, CompletedEvent):
            return event.plan
    raise RuntimeError("plan generation ended without a result")  # pragma: no cover


def generate_plan_events(
    request: PlanRequest,
    *,
    now: date | datetime | None = None,
    config: PlanningConfig = DEFAULT_CONFIG,
    library: MethodLibrary | None = None,
) -> Iterator[PlanEvent]:
    """Generate a plan as a stream of events (see :mod:`.events` for the sequence).

    Args:
        request: What to plan.
        now: Reference time for absolute deadlines.
        config: Planner knobs.
        library: Method library (default: the packaged one).

    Yields:
        Phase, task, assignment and warning events, then one ``CompletedEvent``.

    Raises:
        PlanningInputError: On the first ``next()``, before any event is yielded.
    """
    validate_plan_request(request, config)
    yield PhaseEvent("analyzing", 0, "Reading requirements, constraints and context")

    lib = library if library is not None else load_library()
    explicit, _ = normalize_context(request.context)
    hours_per_day = float(explicit.get("hours_per_day", config.hours_per_day))
    texts = (request.name, request.description, *request.requirements, *request.constraints)
    text = " ".join(texts)
    context = build_effective_context(explicit, text)
    team_size = context.get("team_size")
    slots = extract_slots(
        texts,
        request.context,
        lib.technologies,
        float(team_size) if isinstance(team_size, (int, float)) else None,
    )
    context = context.with_facts(
        ContextFact(
            key, value, "inferred", next(c.phrase for c in slots.counts if f"count:{c.noun}" == key)
        )
        for key, value in slots.count_values().items()
    )
    from_context = context_constraints(request.context)
    all_constraints = (*request.constraints, *(sentence for _, sentence in from_context))
    tech_stack = context.get("tech_stack", ())
    constraints = analyze_constraints(
        all_constraints,
        now=now,
        hours_per_day=hours_per_day,
        working_days_per_week=config.working_days_per_week,
        tech_stack=tech_stack
        if (fact := context.fact("tech_stack")) and fact.origin == "context"
        else (),
    )
    warnings: list[PlanWarning] = []
    assumptions: list[str] = [
        f"Durations are in working hours: {hours_per_day:g} h per day, "
        f"{config.working_days_per_week} working days per week.",
        "Estimates are three-point (optimistic / most likely / pessimistic); task estimates are "
        "the PERT mean.",
    ]
    for note in constraints.notes:
        warnings.append(
            PlanWarning(
                "DEADLINE_NEEDS_NOW" if "reference time" in note else "CONSTRAINT_NOT_UNDERSTOOD",
                note,
            )
        )
    for offset, (field, sentence) in enumerate(from_context):
        if len(request.constraints) + offset not in constraints.understood:
            warnings.append(
                PlanWarning(
                    "CONSTRAINT_NOT_UNDERSTOOD",
                    f"{field} ('{sentence}') could not be read as a deadline or an effort budget; "
                    "give a date, a duration ('6 weeks') or hours ('200 hours').",
                )
            )
    if slots.mentioned():
        assumptions.append("Specifics read from the brief: " + "; ".join(slots.mentioned()) + ".")
    for index, constraint in enumerate(request.constraints):
        if index not in constraints.understood:
            warnings.append(
                PlanWarning(
                    "CONSTRAINT_NOT_UNDERSTOOD",
                    f"constraints[{index}] ('{constraint}') is not machine-interpreted; it is "
                    "echoed in the plan but not enforced.",
                )
            )
            assumptions.append(
                f"Constraint '{constraint}' is kept as a note for the team; the planner did not "
                "enforce it."
            )
    for tech in constraints.prohibitions:
        assumptions.append(
            f"'{tech}' must not be used (from the constraints); no task requires it."
        )
    for fact in context.facts:
        if fact.origin == "inferred":
            assumptions.append(f"Assumed {describe_fact(fact)}.")
    if context.get("environment") is None:
        assumptions.append(
            "No target environment was stated; production safeguards were not added."
        )
    for warning in warnings:
        yield WarningEvent(warning.code, warning.message, 5)

    yield PhaseEvent("decomposing", 20, "Matching the method library and decomposing into tasks")
    draft = build_task_graph(request, lib, context, constraints, slots)
    warnings.extend(draft.warnings)
    assumptions.extend(draft.assumptions)
    for warning in draft.warnings:
        yield WarningEvent(warning.code, warning.message, 25)
    count = len(draft.tasks)
    for i, task in enumerate(draft.tasks):
        yield TaskProposedEvent(task, 25 + (30 * (i + 1)) // max(count, 1))

    yield PhaseEvent("assigning", 55, "Assigning tasks to agents")
    workers = (
        int(team_size)
        if isinstance(team_size, (int, float)) and team_size >= 1
        else config.default_team_size
    )
    schedule = assign_and_schedule(draft.tasks, request.available_agents, anonymous_workers=workers)
    for i, assignment in enumerate(schedule.assignments):
        yield TaskAssignedEvent(
            assignment.task_id,
            assignment.agent_id,
            assignment.reason,
            55 + (20 * (i + 1)) // max(count, 1),
        )
    assumptions.append(f"Schedule assumes {schedule.workers}.")
    if schedule.gaps:
        assumptions.append(
            "Unassigned (capability-gap) tasks are scheduled as if one extra person per missing "
            "skill set were available."
        )
    if not request.available_agents:
        source = "context.team_size" if isinstance(team_size, (int, float)) else "default team size"
        assumptions.append(
            f"No agents were given; {workers} parallel worker(s) assumed ({source})."
        )

    yield PhaseEvent("scheduling", 75, "Scheduling tasks and computing the critical path")
    by_agent = {a.task_id: a.agent_id for a in schedule.assignments}
    tasks = tuple(
        replace(
            t,
            assigned_to=by_agent[t.id],
            start_hours=schedule.start[t.id],
            finish_hours=schedule.finish[t.id],
            on_critical_path=t.id in schedule.critical,
        )
        for t in draft.tasks
    )

    yield PhaseEvent("assessing", 90, "Assessing risks and confidence")
    assessment = assess_plan(
        tasks,
        draft.task_risks,
        draft.coverage,
        schedule,
        constraints,
        agents_given=bool(request.available_agents),
        hours_per_day=hours_per_day,
        recognition=draft.recognition,
    )
    for warning in assessment.warnings:
        yield WarningEvent(warning.code, warning.message, 95)
    warnings.extend(assessment.warnings)
    assumptions.extend(assessment.assumptions)

    rules = list(draft.rules)
    if constraints.deadline is not None:
        d = constraints.deadline
        rules.append(
            AppliedRule(
                "deadline",
                f"Deadline of {d.hours:g} working hours ({d.description}).",
                f"constraint '{d.constraint}'",
                (),
            )
        )
    explanation = Explanation(
        requirement_coverage=draft.coverage,
        methods=draft.methods,
        rules_applied=tuple(rules),
        summary=_summary(
            request, draft, schedule.makespan, hours_per_day, assessment.confidence, rules
        ),
    )
    best = draft.recognition.best if draft.recognition is not None else None
    plan = GeneratedPlan(
        name=request.name,
        description=request.description,
        objectives=request.requirements,
        constraints=request.constraints,
        tasks=tasks,
        estimated_duration_hours=schedule.makespan,
        duration_low_hours=schedule.makespan_low,
        duration_high_hours=schedule.makespan_high,
        total_effort_hours=round(sum(t.estimated_hours for t in tasks), 2),
        deadline_hours=constraints.deadline.hours if constraints.deadline else None,
        confidence=assessment.confidence,
        risks=assessment.risks,
        assumptions=tuple(dict.fromkeys(assumptions)),
        capability_gaps=schedule.gaps,
        warnings=tuple(warnings),
        explanation=explanation,
        context=context.as_pairs(),
        domain=best.compound if best is not None else "",
        domain_score=best.score if best is not None else 0.0,
    )
    yield CompletedEvent(plan)


def _summary(
    request: PlanRequest,
    draft: DraftPlan,
    makespan: float,
    hours_per_day: float,
    confidence: float,
    rules: Sequence[AppliedRule],
) -> str:
    parts = []
    if draft.methods:
        chosen = ", ".join(f"{m.compound} ({m.method})" for m in draft.methods)
        parts.append(f"Planned with library method(s): {chosen}.")
    counts: dict[str, int] = {}
    for c in draft.coverage:
        counts[c.match] = counts.get(c.match, 0) + 1
    if draft.coverage:
        detail = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
        parts.append(f"{len(draft.coverage)} requirement(s) covered ({detail}).")
    if rules:
        parts.append("Rules applied: " + ", ".join(r.name for r in rules) + ".")
    parts.append(
        f"{len(draft.tasks)} tasks, about {makespan:g} working hours "
        f"(~{makespan / hours_per_day:.1f} days) end to end; "
        f"confidence {confidence:.2f}."
    )
    return " ".join(parts)
