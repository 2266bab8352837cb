"""What we ask a model for and how its answer becomes a plan, a decomposition or an estimate.

The JSON schemas take their enums from our vocabulary (priorities, severities, the brief's
agent ids, known capability names), so a server with constrained decoding cannot step
outside it. Whatever the model says is still checked: a plan goes through
`planning.validate_plan`, the same validator as the embedded planner's plans (unique ids,
known dependencies, no cycle, sane estimates, agents that exist and hold the capabilities,
every requirement covered). Problems found become `BackendOutputError.problems`, which a
repair re-ask sends back to the model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from plansmith_server import planning
from plansmith_server.backends.errors import BackendOutputError
from plansmith_server.planning import (
    CompletedTask,
    Decomposition,
    DurationEstimate,
    EstimateBasis,
    GeneratedPlan,
    PlannedTask,
    PlanRequest,
    Subtask,
    TaskToDecompose,
)
from plansmith_server.planning.assessment import assess_plan
from plansmith_server.planning.assignment import Schedule, TaskAssignment
from plansmith_server.planning.capabilities import known_technologies
from plansmith_server.planning.constraints import analyze_constraints
from plansmith_server.planning.decomposition import LEVEL_RANGES, distribute_hours

PRIORITIES = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
MAX_VOCABULARY = 400
HOURS_PER_DAY = 8.0


def _strings() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}}


def _enum_or_string(values: Sequence[str]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)} if values else {"type": "string"}


def vocabulary(*extra: Sequence[str]) -> list[str]:
    """Capability names the model may use: the given ones first, then known technologies."""
    names = [c for group in extra for c in group]
    names += sorted(known_technologies())
    return list(dict.fromkeys(names))[:MAX_VOCABULARY]


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    # Strict structured output needs every property required and no others allowed.
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


# ---- plans ---------------------------------------------------------------------------


def plan_schema(request: PlanRequest) -> dict[str, Any]:
    agents = [a.id for a in request.available_agents]
    caps = vocabulary([c for a in request.available_agents for c in a.capabilities])
    task = _object(
        {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "priority": {"type": "string", "enum": PRIORITIES},
            "optimistic_hours": {"type": "number"},
            "estimated_hours": {"type": "number"},
            "pessimistic_hours": {"type": "number"},
            "dependencies": _strings(),
            "assigned_to": {"type": "string", "enum": [*agents, ""]},
            "required_capabilities": {"type": "array", "items": _enum_or_string(caps)},
            "acceptance_criteria": _strings(),
            "requirement_indexes": {"type": "array", "items": {"type": "integer"}},
        }
    )
    risk = _object(
        {
            "severity": {"type": "string", "enum": PRIORITIES},
            "description": {"type": "string"},
            "mitigation": {"type": "string"},
            "task_ids": _strings(),
        }
    )
    return _object(
        {
            "tasks": {"type": "array", "items": task},
            "risks": {"type": "array", "items": risk},
            "assumptions": _strings(),
        }
    )


PLAN_INSTRUCTIONS = (
    "You are a senior project planner. Plan the work in the brief as a set of tasks. "
    "Answer with JSON only, matching the schema. Rules: task ids are short unique strings; "
    "dependencies name ids of tasks that must finish first and never form a cycle; hours are "
    "working hours with 0 < optimistic_hours <= estimated_hours <= pessimistic_hours; "
    "assigned_to is the id of an agent holding every required capability of the task, or "
    '"" when no agent does; requirement_indexes are 0-based indexes into the brief\'s '
    "requirements, and every requirement must be served by at least one task; titles are "
    "unique."
)


def plan_prompt(request: PlanRequest) -> str:
    return json.dumps(
        {
            "name": request.name,
            "description": request.description,
            "requirements": {str(i): r for i, r in enumerate(request.requirements)},
            "constraints": list(request.constraints),
            "agents": [
                {"id": a.id, "name": a.name, "capabilities": list(a.capabilities)}
                for a in request.available_agents
            ],
            "context": dict(request.context),
        },
        ensure_ascii=False,
        default=str,
    )


MAX_NUMBER = 10**15
"""A number above this (or not finite) in an answer is invalid: no plan needs it, and
larger ones break float arithmetic (`float(10**400)` raises) and int64 fields."""

MAX_ITEMS = 300
"""The most items an array of an answer may hold (tasks, subtasks, dependencies, ...)."""


def _load(content: Any) -> Any:
    if not isinstance(content, str):
        raise BackendOutputError("the answer is not text")
    try:
        return json.loads(content)
    except (ValueError, RecursionError) as exc:
        where = f" at {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        why = getattr(exc, "msg", None) or type(exc).__name__
        raise BackendOutputError(f"the answer is not JSON ({why}{where})") from None


def _shape(data: Any, schema: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """The schema's types, checked (a server without constrained decoding may ignore it)."""
    kind = schema.get("type")
    ok = {
        "object": isinstance(data, dict),
        "array": isinstance(data, list),
        "string": isinstance(data, str) and _is_unicode(data),
        "integer": isinstance(data, int) and not isinstance(data, bool) and abs(data) <= MAX_NUMBER,
        "number": isinstance(data, (int, float))
        and not isinstance(data, bool)
        and abs(data) <= MAX_NUMBER,
    }.get(str(kind), True)
    if not ok:
        problems.append(f"{where} must be a {kind}")
        return
    if kind == "object":
        for key in schema.get("required", ()):
            if key not in data:
                problems.append(f"{where}.{key} is missing")
        for key, sub in schema.get("properties", {}).items():
            if key in data:
                _shape(data[key], sub, f"{where}.{key}", problems)
    elif kind == "array":
        if len(data) > MAX_ITEMS:
            problems.append(f"{where} has {len(data)} items, more than {MAX_ITEMS}")
            return
        for i, item in enumerate(data):
            _shape(item, schema["items"], f"{where}[{i}]", problems)
    elif "enum" in schema and data not in schema["enum"]:
        shown = ", ".join(repr(x) for x in schema["enum"][:20])
        problems.append(f"{where} is {repr(data)[:80]}, not one of {shown}")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def checked(content: str, schema: Mapping[str, Any]) -> Any:
    data = _load(content)
    problems: list[str] = []
    _shape(data, schema, "answer", problems)
    if problems:
        raise BackendOutputError(f"the answer does not match the schema: {problems[0]}", problems)
    return data


def _topological(ids: list[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """`ids` in dependency order (stable); assumes no cycle (checked before)."""
    done: list[str] = []
    seen: set[str] = set()
    for root in ids:
        stack = [(root, iter(deps[root]))]
        if root in seen:
            continue
        seen.add(root)
        while stack:
            node, it = stack[-1]
            nxt = next((d for d in it if d not in seen and d in deps), None)
            if nxt is None:
                stack.pop()
                done.append(node)
            else:
                seen.add(nxt)
                stack.append((nxt, iter(deps[nxt])))
    return done


def plan_from_answer(
    content: str, request: PlanRequest, schema: Mapping[str, Any], *, today: date, source: str
) -> GeneratedPlan:
    """The model's answer as a validated, scheduled and assessed plan."""
    data = checked(content, schema)
    raw_tasks = data["tasks"]
    if not raw_tasks:
        raise BackendOutputError("the plan has no tasks")
    tasks = [
        PlannedTask(
            id=t["id"],
            title=t["title"].strip(),
            description=t["description"],
            priority=planning.Priority(t["priority"]),
            estimated_hours=round(float(t["estimated_hours"]), 2),
            optimistic_hours=round(float(t["optimistic_hours"]), 2),
            pessimistic_hours=round(float(t["pessimistic_hours"]), 2),
            dependencies=tuple(dict.fromkeys(t["dependencies"])),
            assigned_to=t["assigned_to"],
            required_capabilities=tuple(sorted(set(t["required_capabilities"]))),
            acceptance_criteria=tuple(t["acceptance_criteria"]),
            requirement_indexes=tuple(sorted(set(t["requirement_indexes"]))),
            source=f"llm:{source}",
        )
        for t in raw_tasks
    ]
    draft = _bare_plan(request, tasks)
    problems = planning.validate_plan(draft, request.available_agents, request.requirements)
    if any(not t.title for t in tasks):
        problems.append("every task needs a title")
    if problems:
        raise BackendOutputError(f"the plan is not valid: {problems[0]}", problems)
    # Local ids t1, t2, ... in dependency order, as the embedded planner numbers them.
    order = _topological([t.id for t in tasks], {t.id: t.dependencies for t in tasks})
    new_id = {old: f"t{i + 1}" for i, old in enumerate(order)}
    by_old = {t.id: t for t in tasks}
    tasks = [
        PlannedTask(
            **{
                **by_old[old].__dict__,
                "id": new_id[old],
                "dependencies": tuple(
                    sorted((new_id[d] for d in by_old[old].dependencies), key=lambda x: int(x[1:]))
                ),
            }
        )
        for old in order
    ]
    risks = [
        planning.Risk(
            severity=planning.Severity(r["severity"]),
            description=r["description"],
            mitigation=r["mitigation"],
            task_ids=tuple(new_id[x] for x in r["task_ids"] if x in new_id),
            source="library",
        )
        for r in data["risks"]
    ]
    return _finish(request, tasks, risks, list(data["assumptions"]), today, source)


def _bare_plan(request: PlanRequest, tasks: Sequence[PlannedTask]) -> GeneratedPlan:
    return GeneratedPlan(
        name=request.name,
        description=request.description,
        objectives=request.requirements,
        constraints=request.constraints,
        tasks=tuple(tasks),
        estimated_duration_hours=0.0,
        duration_low_hours=0.0,
        duration_high_hours=0.0,
        total_effort_hours=0.0,
        deadline_hours=None,
        confidence=0.0,
        risks=(),
        assumptions=(),
        capability_gaps=(),
        warnings=(),
        explanation=planning.Explanation((), (), (), ""),
        context=(),
    )


def schedule(tasks: Sequence[PlannedTask], agents: Sequence[planning.AgentSpec]) -> Schedule:
    """A list schedule keeping the model's assignments: an agent does one task at a time;
    unassigned work starts as soon as its dependencies allow (as if someone were hired)."""
    by_id = {t.id: t for t in tasks}
    caps = {a.id: a.capabilities for a in agents}

    def run(duration: Any) -> tuple[dict[str, float], dict[str, float]]:
        free: dict[str, float] = {}
        start: dict[str, float] = {}
        finish: dict[str, float] = {}
        for t in tasks:  # dependency order
            begin = max((finish[d] for d in t.dependencies), default=0.0)
            if t.assigned_to:
                begin = max(begin, free.get(t.assigned_to, 0.0))
            start[t.id] = round(begin, 2)
            finish[t.id] = round(begin + duration(t), 2)
            if t.assigned_to:
                free[t.assigned_to] = finish[t.id]
        return start, finish

    start, finish = run(lambda t: t.estimated_hours)
    _, low = run(lambda t: t.optimistic_hours)
    _, high = run(lambda t: t.pessimistic_hours)
    makespan = max(finish.values(), default=0.0)
    # The chain that sets the duration: walk back from the last finish through whichever
    # predecessor (a dependency or the agent's previous task) ends when the task starts.
    critical: set[str] = set()
    current = max(finish, key=lambda k: finish[k]) if finish else None
    while current is not None:
        critical.add(current)
        t = by_id[current]
        before = [d for d in t.dependencies] + [
            o.id
            for o in tasks
            if t.assigned_to
            and o.assigned_to == t.assigned_to
            and finish[o.id] <= start[t.id]
            and o.id != t.id
        ]
        current = next((p for p in before if abs(finish[p] - start[t.id]) < 0.005), None)
    gaps: dict[tuple[str, ...], list[str]] = {}
    assignments = []
    for t in tasks:
        if t.assigned_to:
            assignments.append(TaskAssignment(t.id, t.assigned_to, "chosen by the model"))
            continue
        able = [a for a, c in caps.items() if planning.agent_can_do(c, t.required_capabilities)]
        if agents and not able:
            held = {c for a in agents for c in a.capabilities}
            missing = planning.missing_capabilities(held, t.required_capabilities)
            gaps.setdefault(tuple(missing) or t.required_capabilities, []).append(t.id)
            assignments.append(
                TaskAssignment(t.id, "", f"no available agent has: {', '.join(missing)}")
            )
        else:
            assignments.append(TaskAssignment(t.id, "", "left unassigned by the model"))
    load: dict[str, float] = {a.id: 0.0 for a in agents}
    for t in tasks:
        if t.assigned_to:
            load[t.assigned_to] = load.get(t.assigned_to, 0.0) + t.estimated_hours
    return Schedule(
        assignments=tuple(assignments),
        start=start,
        finish=finish,
        makespan=round(makespan, 2),
        makespan_low=round(max(low.values(), default=0.0), 2),
        makespan_high=round(max(high.values(), default=0.0), 2),
        critical=frozenset(critical),
        gaps=tuple(
            planning.CapabilityGap(
                capabilities=missing,
                task_ids=tuple(ids),
                hours=round(sum(by_id[i].estimated_hours for i in ids), 2),
                description=f"No available agent has {', '.join(missing)}; {len(ids)} task(s) "
                f"({', '.join(ids)}) are unassigned.",
            )
            for missing, ids in sorted(gaps.items())
        ),
        load=tuple(sorted((a, round(h, 2)) for a, h in load.items())),
        workers=f"{len(agents)} agent(s) as assigned by the model, one task at a time each"
        if agents
        else "no agents were given: each task as soon as its dependencies allow",
    )


def _finish(
    request: PlanRequest,
    tasks: list[PlannedTask],
    model_risks: list[planning.Risk],
    model_assumptions: list[str],
    today: date,
    source: str,
) -> GeneratedPlan:
    sched = schedule(tasks, request.available_agents)
    tasks = [
        PlannedTask(
            **{
                **t.__dict__,
                "start_hours": sched.start[t.id],
                "finish_hours": sched.finish[t.id],
                "on_critical_path": t.id in sched.critical,
            }
        )
        for t in tasks
    ]
    constraints = analyze_constraints(
        request.constraints, now=today, hours_per_day=HOURS_PER_DAY, working_days_per_week=5
    )
    coverage = tuple(
        planning.RequirementCoverage(
            index=i,
            requirement=r,
            task_ids=tuple(t.id for t in tasks if i in t.requirement_indexes),
            match="model",
            matched=source,
            score=0.0,
            note=f"the model {source} assigned these tasks to the requirement",
        )
        for i, r in enumerate(request.requirements)
    )
    assessment = assess_plan(
        tasks,
        (),
        coverage,
        sched,
        constraints,
        agents_given=bool(request.available_agents),
        hours_per_day=HOURS_PER_DAY,
    )
    risks = sorted(
        [*model_risks, *assessment.risks],
        key=lambda r: -planning.plan.SEVERITY_ORDER[r.severity],
    )
    makespan = sched.makespan
    summary = (
        f"Planned by the model backend {source!r} and checked by the server's validator. "
        f"{len(tasks)} tasks, about {makespan:g} working hours "
        f"(~{makespan / HOURS_PER_DAY:.1f} days) end to end; "
        f"confidence {assessment.confidence:.2f}."
    )
    return GeneratedPlan(
        name=request.name,
        description=request.description,
        objectives=request.requirements,
        constraints=request.constraints,
        tasks=tuple(tasks),
        estimated_duration_hours=makespan,
        duration_low_hours=sched.makespan_low,
        duration_high_hours=sched.makespan_high,
        total_effort_hours=round(sum(t.estimated_hours for t in tasks), 2),
        deadline_hours=constraints.deadline.hours if constraints.deadline else None,
        confidence=assessment.confidence,
        risks=tuple(risks),
        assumptions=tuple(
            dict.fromkeys(
                [
                    f"Durations are in working hours: {HOURS_PER_DAY:g} h per day, 5 working "
                    "days per week.",
                    f"Schedule assumes {sched.workers}.",
                    *model_assumptions,
                    *assessment.assumptions,
                ]
            )
        ),
        capability_gaps=sched.gaps,
        warnings=tuple(assessment.warnings),
        explanation=planning.Explanation(coverage, (), (), summary),
        context=tuple(sorted((str(k), str(v)) for k, v in request.context.items())),
    )


# ---- decomposition ---------------------------------------------------------------------


def decompose_schema(task: TaskToDecompose) -> dict[str, Any]:
    sub = _object(
        {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "priority": {"type": "string", "enum": PRIORITIES},
            "optimistic_hours": {"type": "number"},
            "estimated_hours": {"type": "number"},
            "pessimistic_hours": {"type": "number"},
            "dependencies": _strings(),
            "required_capabilities": {
                "type": "array",
                "items": _enum_or_string(vocabulary(task.required_capabilities)),
            },
            "acceptance_criteria": _strings(),
        }
    )
    return _object({"subtasks": {"type": "array", "items": sub}, "explanation": {"type": "string"}})


def decompose_prompt(task: TaskToDecompose, level: str) -> str:
    low, high = LEVEL_RANGES[planning.DecompositionLevel(level)]
    return json.dumps(
        {
            "task": {
                "title": task.title,
                "description": task.description,
                "estimated_hours": task.estimated_hours,
                "required_capabilities": list(task.required_capabilities),
            },
            "subtasks_wanted": f"{low} to {high}",
        },
        ensure_ascii=False,
    )


DECOMPOSE_INSTRUCTIONS = (
    "Split the task into ordered subtasks. Answer with JSON only, matching the schema. "
    "Subtask ids are short unique strings; dependencies name ids of subtasks that must finish "
    "first and never form a cycle; 0 < optimistic_hours <= estimated_hours <= "
    "pessimistic_hours; give as many subtasks as `subtasks_wanted` says."
)


def decomposition_from_answer(
    content: str, task: TaskToDecompose, level: str, schema: Mapping[str, Any], source: str
) -> Decomposition:
    data = checked(content, schema)
    raw = data["subtasks"]
    low, high = LEVEL_RANGES[planning.DecompositionLevel(level)]
    problems: list[str] = []
    if not low <= len(raw) <= high:
        problems.append(f"{len(raw)} subtasks; the level asks for {low} to {high}")
    ids = [s["id"] for s in raw]
    if len(set(ids)) != len(ids):
        problems.append("subtask ids are not unique")
    titles = [s["title"] for s in raw]
    if len(set(titles)) != len(titles):
        problems.append("subtask titles are not unique")
    deps = {s["id"]: [d for d in s["dependencies"]] for s in raw}
    for s in raw:
        for d in s["dependencies"]:
            if d not in deps or d == s["id"]:
                problems.append(f"{s['id']} depends on unknown task '{d}'")
        if not 0 < s["optimistic_hours"] <= s["estimated_hours"] <= s["pessimistic_hours"]:
            problems.append(
                f"{s['id']}: estimates must satisfy 0 < optimistic <= estimated <= pessimistic"
            )
    if not problems:
        order = _topological(ids, deps)
        if any(order.index(d) > order.index(s["id"]) for s in raw for d in s["dependencies"]):
            problems.append("the dependencies form a cycle")
    if problems:
        raise BackendOutputError(f"the decomposition is not valid: {problems[0]}", problems)
    by_id = {s["id"]: s for s in raw}
    new_id = {old: f"s{i + 1}" for i, old in enumerate(order)}
    weights = [float(by_id[o]["estimated_hours"]) for o in order]
    total = task.estimated_hours if task.estimated_hours else sum(weights)
    # The subtasks add up to the parent's estimate exactly, as the embedded planner's do.
    hours = distribute_hours(total, weights)
    sinks = {o for o in order} - {d for s in raw for d in s["dependencies"]}
    subtasks = []
    for o, h in zip(order, hours, strict=True):
        s = by_id[o]
        scale = h / float(s["estimated_hours"])
        subtasks.append(
            Subtask(
                id=new_id[o],
                title=s["title"],
                description=s["description"],
                estimated_hours=h,
                optimistic_hours=min(h, round(float(s["optimistic_hours"]) * scale, 2)) or h,
                pessimistic_hours=max(h, round(float(s["pessimistic_hours"]) * scale, 2)),
                dependencies=tuple(
                    sorted((new_id[d] for d in s["dependencies"]), key=lambda x: int(x[1:]))
                ),
                required_capabilities=tuple(sorted(set(s["required_capabilities"]))),
                priority=planning.Priority(s["priority"]),
                acceptance_criteria=tuple(s["acceptance_criteria"]),
                is_sink=o in sinks,
            )
        )
    return Decomposition(
        subtasks=tuple(subtasks),
        sink_ids=tuple(new_id[o] for o in order if o in sinks),
        source_ids=tuple(new_id[o] for o in order if not by_id[o]["dependencies"]),
        total_hours=round(sum(hours), 2),
        method=f"llm:{source}",
        explanation=data["explanation"],
    )


# ---- estimation --------------------------------------------------------------------------

HISTORY_IN_PROMPT = 50


def estimate_schema(history: Sequence[CompletedTask]) -> dict[str, Any]:
    ids = [h.id for h in history[:HISTORY_IN_PROMPT]]
    return _object(
        {
            "estimate_hours": {"type": "number"},
            "low_hours": {"type": "number"},
            "high_hours": {"type": "number"},
            "confidence": {"type": "number"},
            "similar_task_ids": {"type": "array", "items": _enum_or_string(ids)},
            "explanation": {"type": "string"},
        }
    )


def estimate_prompt(description: str, agent_id: str, history: Sequence[CompletedTask]) -> str:
    return json.dumps(
        {
            "task": description,
            "agent": agent_id,
            "finished_tasks": [
                {
                    "id": h.id,
                    "title": h.title,
                    "estimated_hours": h.estimated_hours,
                    "actual_hours": h.actual_hours,
                    "agent": h.assigned_agent,
                }
                for h in history[:HISTORY_IN_PROMPT]
            ],
        },
        ensure_ascii=False,
    )


ESTIMATE_INSTRUCTIONS = (
    "Estimate the effort of the task in working hours from the finished tasks. Answer with "
    "JSON only, matching the schema: 0 < low_hours <= estimate_hours <= high_hours (about the "
    "10th and 90th percentiles), confidence between 0 and 1, similar_task_ids from the "
    "finished tasks."
)


def estimate_from_answer(
    content: str, history: Sequence[CompletedTask], schema: Mapping[str, Any], source: str
) -> DurationEstimate:
    data = checked(content, schema)
    problems = []
    if not 0 < data["low_hours"] <= data["estimate_hours"] <= data["high_hours"]:
        problems.append("estimates must satisfy 0 < low_hours <= estimate_hours <= high_hours")
    if not 0 <= data["confidence"] <= 1:
        problems.append("confidence must be between 0 and 1")
    known = {h.id for h in history}
    unknown = [x for x in data["similar_task_ids"] if x not in known]
    if unknown:
        problems.append(f"similar_task_ids names unknown tasks: {', '.join(unknown[:5])}")
    if problems:
        raise BackendOutputError(f"the estimate is not valid: {problems[0]}", problems)
    return DurationEstimate(
        estimate_hours=round(float(data["estimate_hours"]), 2),
        low_hours=round(float(data["low_hours"]), 2),
        high_hours=round(float(data["high_hours"]), 2),
        confidence=round(float(data["confidence"]), 2),
        basis=EstimateBasis(
            method=f"llm:{source}",
            similar_task_ids=tuple(dict.fromkeys(data["similar_task_ids"])),
            note=data["explanation"],
        ),
    )
