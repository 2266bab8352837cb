"""Conversions for PlanningService: briefs in, generated plans and events out."""

from __future__ import annotations

from typing import cast

from google.protobuf import json_format

from plansmith.v1 import generation_pb2 as gen_pb
from plansmith.v1 import planning_service_pb2 as pb
from plansmith.v1 import task_pb2
from plansmith_server import planning
from plansmith_server.api.convert import agent_from_proto, plan_to_proto, task_to_proto
from plansmith_server.domain.generation import Brief, Generated, planned_task
from plansmith_server.domain.models import Plan, PlanStatus
from plansmith_server.planning import AgentSpec, PlanRequest

_SEVERITY = {
    s: getattr(gen_pb, f"RISK_SEVERITY_{s}") for s in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
}
_PHASE = {p: getattr(gen_pb, f"PLANNING_PHASE_{p.upper()}") for p in planning.PHASES}


def brief_from_proto(b: gen_pb.PlanBrief) -> Brief:
    agents = tuple(agent_from_proto(a) for a in b.available_agents)
    return Brief(
        PlanRequest(
            name=b.name,
            description=b.description,
            requirements=tuple(b.requirements),
            constraints=tuple(b.constraints),
            available_agents=tuple(AgentSpec(a.id, a.name, a.capabilities) for a in agents),
            context=json_format.MessageToDict(b.context),
            project_id=b.project_id,
        ),
        agents,
    )


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
        task=stored if stored is not None else task_to_proto(planned_task(t, "")),
        requirement_indexes=list(t.requirement_indexes),
        method=t.source,
    )


def generated_to_proto(g: Generated, brief: Brief) -> gen_pb.GeneratedPlan:
    plan, stored = g.plan, g.stored
    ids = {k: v.id for k, v in stored.tasks.items()} if stored else {}

    def tid(local: str) -> str:
        return ids.get(local, local)

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
    msg = gen_pb.GeneratedPlan(
        plan=plan_msg,
        tasks=[
            generated_task_to_proto(t, task_to_proto(stored.tasks[t.id]) if stored else None)
            for t in plan.tasks
        ],
        estimated_duration_hours=plan.estimated_duration_hours,
        deadline_hours=plan.deadline_hours or 0.0,
        confidence=plan.confidence,
        assumptions=list(plan.assumptions),
        warnings=[gen_pb.GenerationWarning(code=w.code, message=w.message) for w in plan.warnings],
        duration_low_hours=plan.duration_low_hours,
        duration_high_hours=plan.duration_high_hours,
        total_effort_hours=plan.total_effort_hours,
        context_used=dict(plan.context),
    )
    for r in plan.risks:
        m = risk_to_proto(r)
        m.task_ids[:] = [tid(x) for x in r.task_ids]
        msg.risks.append(m)
    for gap in plan.capability_gaps:
        for task_id in gap.task_ids:
            msg.capability_gaps.append(
                gen_pb.CapabilityGap(
                    task_id=tid(task_id), missing_capabilities=list(gap.capabilities)
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
    raise TypeError(f"unexpected planner event {type(event).__name__}")
