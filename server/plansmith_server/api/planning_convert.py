"""Conversions for PlanningService: briefs in, generated plans and events out."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import cast

from google.protobuf import json_format, struct_pb2

from plansmith.v1 import analysis_pb2 as an_pb
from plansmith.v1 import generation_pb2 as gen_pb
from plansmith.v1 import planning_service_pb2 as pb
from plansmith.v1 import task_pb2
from plansmith_server import planning
from plansmith_server.api.convert import (
    agent_from_proto,
    draft_task_to_proto,
    plan_to_proto,
    task_to_proto,
)
from plansmith_server.backends import Attempt, AttemptEvent, Budget, Call
from plansmith_server.domain.generation import Brief, Generated, planned_task
from plansmith_server.domain.models import (
    AnalysisKind,
    DecompositionLevel,
    HistoryScope,
    Plan,
    PlanStatus,
    ScheduleConstraint,
    Unrecognized,
)
from plansmith_server.domain.schedules import Analysis, Optimization, PlanSnapshot
from plansmith_server.errors import FieldViolation, InvalidArgumentError
from plansmith_server.planning import AgentSpec, PlanRequest
from plansmith_server.scheduling import CpmResult, Goal, Suggestion

_SEVERITY = {
    s: getattr(gen_pb, f"RISK_SEVERITY_{s}") for s in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
}
_PHASE = {p: getattr(gen_pb, f"PLANNING_PHASE_{p.upper()}") for p in planning.PHASES}
_SOLVER_KIND = {
    "cpsat": an_pb.SOLVER_KIND_CPSAT,
    "heuristic": an_pb.SOLVER_KIND_HEURISTIC,
    "baseline": an_pb.SOLVER_KIND_BASELINE,
}
_ESTIMATION_METHOD = {
    "history": pb.ESTIMATION_METHOD_HISTORY,
    "library": pb.ESTIMATION_METHOD_LIBRARY,
    "default": pb.ESTIMATION_METHOD_DEFAULT,
    "llm": pb.ESTIMATION_METHOD_MODEL,
}


_GOAL: dict[int, Goal] = {
    pb.OPTIMIZATION_GOAL_MINIMIZE_DURATION: Goal.MINIMIZE_DURATION,
    pb.OPTIMIZATION_GOAL_BALANCE_WORKLOAD: Goal.BALANCE_WORKLOAD,
}
_LEVEL: dict[int, DecompositionLevel] = {
    pb.DECOMPOSITION_LEVEL_UNSPECIFIED: DecompositionLevel.STANDARD,
    pb.DECOMPOSITION_LEVEL_SUMMARY: DecompositionLevel.SUMMARY,
    pb.DECOMPOSITION_LEVEL_STANDARD: DecompositionLevel.STANDARD,
    pb.DECOMPOSITION_LEVEL_DETAILED: DecompositionLevel.DETAILED,
}

_CONSTRAINT: dict[int, ScheduleConstraint] = {
    pb.OPTIMIZATION_CONSTRAINT_MAINTAIN_DEPENDENCIES: ScheduleConstraint.DEPENDENCIES,
    pb.OPTIMIZATION_CONSTRAINT_RESPECT_AGENT_CAPABILITIES: ScheduleConstraint.CAPABILITIES,
}
_ANALYSIS: dict[int, AnalysisKind] = {
    pb.ANALYSIS_TYPE_CRITICAL_PATH: AnalysisKind.CRITICAL_PATH,
    pb.ANALYSIS_TYPE_RESOURCE_UTILIZATION: AnalysisKind.UTILIZATION,
    pb.ANALYSIS_TYPE_RISK_ASSESSMENT: AnalysisKind.RISK,
}
_SCOPE: dict[int, HistoryScope] = {
    pb.ESTIMATION_SCOPE_PLAN: HistoryScope.PLAN,
    pb.ESTIMATION_SCOPE_PROJECT: HistoryScope.PROJECT,
}


def constraints_from_proto(constraints: Sequence[int]) -> list[ScheduleConstraint | Unrecognized]:
    """The domain's scheduling constraints (a number the API does not define: `Unrecognized`)."""
    return [_CONSTRAINT.get(c) or Unrecognized(c) for c in constraints]


def analyses_from_proto(types: Sequence[int]) -> list[AnalysisKind | Unrecognized]:
    """The parts of an analysis asked for (a number the API does not define: `Unrecognized`)."""
    return [_ANALYSIS.get(t) or Unrecognized(t) for t in types]


def scope_from_proto(scope: int) -> HistoryScope | Unrecognized | None:
    """The history scope of an estimate; None for UNSPECIFIED (the domain's default)."""
    if scope == pb.ESTIMATION_SCOPE_UNSPECIFIED:
        return None
    return _SCOPE.get(scope) or Unrecognized(scope)


def goals_from_proto(goals: Sequence[int]) -> list[Goal | Unrecognized]:
    """The domain's goals; a number the API does not define (UNSPECIFIED included) is
    carried as `Unrecognized` for the domain to refuse with the request's other problems."""
    return [_GOAL.get(g) or Unrecognized(g) for g in goals]


def level_from_proto(level: int) -> DecompositionLevel | Unrecognized:
    """The domain's decomposition level (UNSPECIFIED means STANDARD)."""
    return _LEVEL.get(level) or Unrecognized(level)


def estimation_method(method: str) -> pb.EstimationMethod.ValueType:
    """The enum of an estimate's method string (`history+agent_pace` is `HISTORY`: the pace
    has a field of its own; `llm:<backend>` is `MODEL`)."""
    return _ESTIMATION_METHOD.get(
        method.partition("+")[0].partition(":")[0], pb.ESTIMATION_METHOD_UNSPECIFIED
    )


def brief_from_proto(b: gen_pb.PlanBrief) -> Brief:
    agents = tuple(agent_from_proto(a) for a in b.available_agents)
    return Brief(
        PlanRequest(
            name=b.name,
            description=b.description,
            requirements=tuple(b.requirements),
            constraints=tuple(b.constraints),
            available_agents=tuple(AgentSpec(a.id, a.name, a.capabilities) for a in agents),
            context=_context(b.context),
            project_id=b.project_id,
        ),
        agents,
    )


def _context(context: struct_pb2.Struct) -> dict[str, object]:
    """The brief's free-form context as JSON values; NaN and infinities, which have none
    (protobuf refuses to write them), are the caller's error, named by their path."""
    try:
        return json_format.MessageToDict(context)
    except ValueError:
        path = _non_finite(context, "brief.context") or "brief.context"
        raise InvalidArgumentError(
            [FieldViolation(path, "numbers must be finite (NaN and infinity have no JSON form)")]
        ) from None


def _non_finite(value: struct_pb2.Struct | struct_pb2.ListValue, path: str) -> str | None:
    """The path of the first NaN or infinity inside `value`."""
    items = (
        ((f"{path}.{k}", v) for k, v in value.fields.items())
        if isinstance(value, struct_pb2.Struct)
        else ((f"{path}[{i}]", v) for i, v in enumerate(value.values))
    )
    for where, v in items:
        kind = v.WhichOneof("kind")
        if kind == "number_value" and not math.isfinite(v.number_value):
            return where
        if kind in ("struct_value", "list_value"):
            found = _non_finite(getattr(v, kind), where)
            if found:
                return found
    return None


def severity(value: object) -> gen_pb.RiskSeverity.ValueType:
    return cast(gen_pb.RiskSeverity.ValueType, _SEVERITY[str(getattr(value, "value", value))])


def risk_to_proto(r: planning.Risk) -> gen_pb.Risk:
    title = r.description.split(". ")[0].rstrip(".")
    return gen_pb.Risk(
        severity=severity(r.severity),
        title=title[:200],
        description=r.description,
        mitigation=r.mitigation,
        task_ids=list(r.task_ids),
    )


def generated_task_to_proto(
    t: planning.PlannedTask, stored: task_pb2.Task | None = None
) -> gen_pb.GeneratedTask:
    return gen_pb.GeneratedTask(
        task=stored if stored is not None else draft_task_to_proto(planned_task(t, "")),
        requirement_indexes=list(t.requirement_indexes),
        method=t.source,
    )


def generated_to_proto(g: Generated, brief: Brief) -> gen_pb.GeneratedPlan:
    plan, stored = g.plan, g.stored
    ids = {k: v.id for k, v in stored.tasks.items()} if stored else dict(g.free_ids)

    def tid(local: str) -> str:
        return ids.get(local, local)

    titles = {t.id: t.title for t in plan.tasks}

    if stored is not None:
        plan_msg = plan_to_proto(stored.plan)
    else:
        req = brief.request
        plan_msg = plan_to_proto(
            Plan(
                id="",
                project_id=req.project_id,
                name=req.name,
                description=req.description,
                objectives=tuple(req.requirements),
                constraints=tuple(req.constraints),
                status=PlanStatus.DRAFT,
                agents=brief.agents,
            )
        )
        plan_msg.ClearField("create_time")
        plan_msg.ClearField("update_time")
        plan_msg.etag = ""
    if stored is not None:
        # The stored tasks are what the plan holds. A retry of a call recorded by an
        # older release reruns the planner, which may now plan more or fewer tasks:
        # requirements and method come from the rerun's task of the same local id
        # where there is one (the analysis may differ; see docs on idempotency).
        rerun = {t.id: t for t in plan.tasks}
        tasks = [
            generated_task_to_proto(rerun[local], task_to_proto(task))
            if local in rerun
            else gen_pb.GeneratedTask(task=task_to_proto(task))
            # Local ids in plan order: t2 before t10.
            for local, task in sorted(stored.tasks.items(), key=lambda kv: (len(kv[0]), kv[0]))
        ]
    else:
        tasks = [generated_task_to_proto(t) for t in plan.tasks]
    msg = gen_pb.GeneratedPlan(
        plan=plan_msg,
        tasks=tasks,
        estimated_duration_hours=plan.estimated_duration_hours,
        deadline_hours=plan.deadline_hours or 0.0,
        confidence=plan.confidence,
        assumptions=list(plan.assumptions),
        warnings=[gen_pb.GenerationWarning(code=w.code, message=w.message) for w in plan.warnings],
        duration_low_hours=plan.duration_low_hours,
        duration_high_hours=plan.duration_high_hours,
        total_effort_hours=plan.total_effort_hours,
        context_used=dict(plan.context),
        backend=g.backend,
    )
    if not stored and ids:  # ids free in an existing plan (GeneratePlan's plan_id)
        for gt in msg.tasks:
            gt.task.id = tid(gt.task.id)
            gt.task.dependencies[:] = [tid(d) for d in gt.task.dependencies]
    for r in plan.risks:
        m = risk_to_proto(r)
        m.task_ids[:] = [tid(x) for x in r.task_ids]
        m.task_titles[:] = [titles.get(x, "") for x in r.task_ids]
        msg.risks.append(m)
    for gap in plan.capability_gaps:
        for task_id in gap.task_ids:
            msg.capability_gaps.append(
                gen_pb.CapabilityGap(
                    task_id=tid(task_id),
                    missing_capabilities=list(gap.capabilities),
                    task_title=titles.get(task_id, ""),
                )
            )
    e = plan.explanation
    msg.explanation.summary = e.summary
    for c in e.requirement_coverage:
        how = c.match + (f": {c.note}" if c.note else "")
        msg.explanation.coverage.append(
            gen_pb.RequirementCoverage(
                requirement_index=c.index,
                requirement=c.requirement,
                task_ids=[tid(x) for x in c.task_ids],
                matched_by=how,
            )
        )
    msg.explanation.applied_rules.extend(f"{r.name}: {r.description}" for r in e.rules_applied)
    msg.explanation.methods.extend(f"{m.compound}/{m.method}: {m.reason}" for m in e.methods)
    return msg


def event_to_proto(event: object, brief: Brief) -> pb.StreamGeneratePlanResponse:
    """One planner event as a stream message (without its sequence number)."""
    if isinstance(event, planning.PhaseEvent):
        return pb.StreamGeneratePlanResponse(
            progress=gen_pb.PhaseProgress(
                phase=_PHASE[event.phase], percent=int(event.percent), message=event.message
            )
        )
    if isinstance(event, planning.TaskProposedEvent):
        return pb.StreamGeneratePlanResponse(task_proposed=generated_task_to_proto(event.task))
    if isinstance(event, planning.TaskAssignedEvent):
        return pb.StreamGeneratePlanResponse(
            assignment=gen_pb.TaskAssignment(
                task_id=event.task_id, agent_id=event.agent_id, reason=event.reason
            )
        )
    if isinstance(event, planning.WarningEvent):
        return pb.StreamGeneratePlanResponse(
            warning=gen_pb.GenerationWarning(code=event.code, message=event.message)
        )
    if isinstance(event, Generated):
        return pb.StreamGeneratePlanResponse(completed=generated_to_proto(event, brief))
    if isinstance(event, AttemptEvent):
        return pb.StreamGeneratePlanResponse(attempt=attempt_to_proto(event.attempt))
    raise TypeError(f"unexpected planner event {type(event).__name__}")


# ---- backends ------------------------------------------------------------------------------


def attempt_to_proto(a: Attempt) -> gen_pb.BackendAttempt:
    return gen_pb.BackendAttempt(
        backend=a.backend,
        outcome=gen_pb.AttemptOutcome.Value(f"ATTEMPT_OUTCOME_{a.outcome}"),
        reason=a.reason,
        duration_ms=round(a.duration_ms, 3),
        tokens=a.tokens,
        cost=a.cost,
    )


def call_from_proto(request: object, time_remaining: float | None) -> Call:
    """The routing part of a generate, decompose or estimate request, and its deadline."""
    # The ignores: `request` is any of the requests with `budget` and `backend` fields.
    b = request.budget  # type: ignore[attr-defined]
    problems = []
    if not math.isfinite(b.max_cost) or b.max_cost < 0:
        problems.append(FieldViolation("budget.max_cost", "must be a finite number >= 0"))
    if b.max_tokens < 0:
        problems.append(FieldViolation("budget.max_tokens", "must not be negative"))
    if problems:
        raise InvalidArgumentError(problems)
    return Call(
        backend=request.backend,  # type: ignore[attr-defined]
        budget=Budget(b.max_cost, b.max_tokens),
        deadline=time.monotonic() + time_remaining if time_remaining is not None else None,
    )


# ---- schedules and analyses --------------------------------------------------------------

_SCHED_SEVERITY = {1: "LOW", 2: "MEDIUM", 3: "HIGH", 4: "CRITICAL"}


def optimization_to_proto(o: Optimization) -> pb.OptimizePlanResponse:
    r = o.result
    title = o.titles.get
    return pb.OptimizePlanResponse(
        schedule=[
            an_pb.ScheduledTask(
                task_id=a.activity_id,
                start_offset_hours=a.start,
                end_offset_hours=a.end,
                agent_id=a.agent or "",
                task_title=title(a.activity_id, ""),
            )
            for a in r.activities
        ],
        duration_before_hours=o.before_hours,
        duration_after_hours=r.makespan,
        lower_bound_hours=r.lower_bound,
        proven_optimal=r.optimal,
        optimality_gap=r.gap,
        workloads=[
            an_pb.AgentWorkload(
                agent_id=w.agent, busy_hours=w.busy_hours, utilization=w.utilization
            )
            for w in r.workloads
        ],
        reassignments=[
            an_pb.Reassignment(task_id=t, from_agent_id=a, to_agent_id=b, task_title=title(t, ""))
            for t, a, b in o.reassignments
        ],
        solver=an_pb.SolverStats(
            solver=r.solver,
            kind=_SOLVER_KIND.get(r.solver, an_pb.SOLVER_KIND_UNSPECIFIED),
            status=r.status.name,
            wall_time_seconds=r.stats.wall_time_s,
            branches=int(r.stats.branches or 0),
            conflicts=int(r.stats.conflicts or 0),
            note=r.stats.fallback_reason or "",
        ),
        critical_chain=list(r.critical_chain),
        critical_chain_titles=[title(t, "") for t in r.critical_chain],
        unschedulable=[
            an_pb.UnschedulableTask(
                task_id=u.activity_id,
                task_title=title(u.activity_id, ""),
                reason=o.reasons.get(u.activity_id, u.reason),
                missing_capabilities=list(o.missing.get(u.activity_id, ())),
                blocked_by_task_ids=list(u.blocked_by),
            )
            for u in r.unschedulable
        ],
        plan_revision=o.plan_revision,
        partial=bool(r.unschedulable),
        unscheduled_hours=o.unscheduled_hours,
    )


def analysis_to_proto(a: Analysis) -> pb.AnalyzePlanResponse:
    out = pb.AnalyzePlanResponse()
    titles = {t.id: t.title for t in a.snapshot.tasks}

    def title(task_id: str) -> str:
        return titles.get(task_id, "")

    def chain(ids: Sequence[str]) -> an_pb.TaskChain:
        return an_pb.TaskChain(task_ids=list(ids), task_titles=[title(t) for t in ids])

    if a.cpm is not None:
        cp = out.critical_path
        cp.duration_hours = float(a.cpm.project_duration)
        for t in a.cpm.timings:
            cp.timings.append(
                an_pb.TaskTiming(
                    task_id=t.task_id,
                    remaining_hours=float(t.duration),
                    earliest_start_hours=float(t.earliest_start),
                    earliest_finish_hours=float(t.earliest_finish),
                    latest_start_hours=float(t.latest_start),
                    latest_finish_hours=float(t.latest_finish),
                    slack_hours=float(t.slack),
                    critical=bool(t.critical),
                    task_title=title(t.task_id),
                )
            )
        cp.critical_task_ids.extend(a.cpm.critical_task_ids)
        cp.critical_task_titles.extend(title(t) for t in a.cpm.critical_task_ids)
        for path in a.cpm.critical_paths:
            cp.critical_paths.append(chain(path))
        if a.current is not None:
            cp.critical_chain.CopyFrom(chain(a.current.critical_chain))
            cp.resource_constrained_duration_hours = a.current.makespan
    if a.utilization is not None:
        u = a.utilization
        ru = out.resource_utilization
        ru.span_hours = u.span_hours
        groups: dict[str, list[tuple[str, ...]]] = {}
        for o in u.overallocations:
            groups.setdefault(o.agent, []).append(o.task_ids)
        for ag in u.agents:
            ru.agents.append(
                an_pb.AgentUtilization(
                    agent_id=ag.agent,
                    assigned_hours=ag.assigned_hours,
                    remaining_hours=ag.remaining_hours,
                    utilization=ag.utilization,
                    idle_hours=ag.idle_hours,
                    overlapping_tasks=[chain(g) for g in groups.get(ag.agent, [])],
                )
            )
        ru.unassigned_task_ids.extend(u.unassigned_task_ids)
        ru.unassigned_task_titles.extend(title(t) for t in u.unassigned_task_ids)
        held = {c for caps in a.snapshot.capabilities.values() for c in caps}
        required = {t.id: t.required_capabilities for t in a.snapshot.tasks}
        for gap in u.capability_gaps:
            ru.capability_gaps.append(
                gen_pb.CapabilityGap(
                    task_id=gap.task_id,
                    missing_capabilities=list(
                        planning.missing_capabilities(held, required.get(gap.task_id, ()))
                    ),
                    task_title=title(gap.task_id),
                )
            )
    if a.risk is not None:
        f = a.risk.forecast
        ra = out.risk_assessment
        ra.samples = f.samples
        ra.seed = a.seed  # as asked: the forecast's is the unsigned form of a negative one
        ra.p50_hours, ra.p80_hours, ra.p95_hours = f.p50, f.p80, f.p95
        ra.deadline_hours = f.deadline_hours or 0.0
        ra.deadline_probability = (
            f.probability_meet_deadline if f.probability_meet_deadline is not None else 1.0
        )
        variance = sum(d.std_hours**2 for d in f.drivers) or 1.0
        for d in f.drivers:
            ra.top_drivers.append(
                an_pb.RiskDriver(
                    task_id=d.task_id,
                    criticality_index=d.criticality,
                    contribution=d.std_hours**2 / variance,
                    task_title=title(d.task_id),
                )
            )
        for task_id in sorted(f.criticality):
            ra.criticality.append(
                an_pb.RiskDriver(
                    task_id=task_id,
                    criticality_index=f.criticality[task_id],
                    task_title=title(task_id),
                )
            )
        for item in a.risk.items:
            ra.risks.append(
                gen_pb.Risk(
                    severity=severity(_SCHED_SEVERITY[int(item.severity)]),
                    title=item.kind.value.replace("_", " ").capitalize(),
                    description=item.message,
                    mitigation=item.recommendation,
                    task_ids=list(item.task_ids),
                    task_titles=[title(t) for t in item.task_ids],
                )
            )
        ra.score = float(a.risk.score)
        ra.level = severity(_SCHED_SEVERITY[int(a.risk.level)])
    return out


def suggestions_to_proto(
    snap: PlanSnapshot, suggestions: Sequence[Suggestion], cpm: CpmResult
) -> pb.SuggestNextTasksResponse:
    titles = {t.id: t.title for t in snap.tasks}
    slack = {t.task_id: float(t.slack) for t in cpm.timings}
    return pb.SuggestNextTasksResponse(
        suggestions=[
            an_pb.TaskSuggestion(
                task_id=s.task_id,
                title=titles.get(s.task_id, ""),
                score=s.score,
                reason=s.reason,
                critical=s.critical,
                slack_hours=slack.get(s.task_id, 0.0),
                assigned_to_agent=s.assigned_to_agent,
            )
            for s in suggestions
        ]
    )
