"""Plan generation, decomposition and estimation over the store: the PlanningService's
first half. The planner itself is a `PlannerBackend`; this module validates, reads what
the planner needs, and persists what it produces in one transaction."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from plansmith_server import planning
from plansmith_server.backends import (
    EMBEDDED,
    NO_CALL,
    Attempt,
    AttemptEvent,
    Call,
    Outcome,
    PlanStart,
    Routed,
    Router,
    plan_events,
)
from plansmith_server.domain import plan_codec
from plansmith_server.domain import validation as val
from plansmith_server.domain.codec import FunctionCodec, codec_for
from plansmith_server.domain.models import (
    CONFIDENCE_KEY,
    Agent,
    ChangeRecord,
    DecompositionLevel,
    HistoryScope,
    Plan,
    PlanStatus,
    Schedule,
    Task,
    TaskPriority,
    TaskStatus,
    Unrecognized,
)
from plansmith_server.domain.mutations import NO_MUTATION, Applied, Mutation, Writing, new_id
from plansmith_server.domain.plans import Plans, require_plan
from plansmith_server.domain.store import ReadTx
from plansmith_server.domain.tasks import require_task
from plansmith_server.errors import (
    FailedPreconditionError,
    NotFoundError,
    PlansmithError,
    PreconditionViolation,
)
from plansmith_server.planning import (
    CompletedEvent,
    CompletedTask,
    Decomposition,
    DurationEstimate,
    GeneratedPlan,
    PhaseEvent,
    PlanEvent,
    PlanRequest,
    TaskToDecompose,
)
from plansmith_server.telemetry import Telemetry

HISTORY_LIMIT = 5000


@dataclass(frozen=True)
class Brief:
    """What to plan (the proto's PlanBrief, as plain data)."""

    request: PlanRequest
    agents: tuple[Agent, ...]


@dataclass(frozen=True)
class StoredPlan:
    """A generated plan as stored: the plan and its tasks by local id (`t1`, ...)."""

    plan: Plan
    tasks: Mapping[str, Task]


@dataclass(frozen=True)
class Generated:
    """The end of a generation: the plan, what was stored when it was persisted, the
    backend that produced it and every backend tried."""

    plan: GeneratedPlan
    stored: StoredPlan | None
    backend: str = EMBEDDED
    attempts: tuple[Attempt, ...] = ()
    free_ids: Mapping[str, str] = field(default_factory=dict)
    """For a generation into an existing plan (`plan_id`): each local id's free id."""


@dataclass(frozen=True)
class GenerationInfo:
    """First item of a generation: its id (empty for the embedded planner alone, which
    repeats itself exactly) and, for a replay, how many events preceded the plan's."""

    generation_id: str
    replay_after: int | None = None


class CallerGoneError(PlansmithError):
    """The caller cancelled before the plan was committed: nothing is stored."""

    code = "CANCELLED"
    reason = "CANCELLED"


@dataclass(frozen=True)
class DecomposeResult:
    """Subtasks (local ids `s1`..., or stored), the method, what was rewired."""

    subtasks: tuple[Task, ...]
    method: str
    rewired_task_ids: tuple[str, ...] = field(metadata={"key": "rewired"})
    plan_revision: int
    backend: str = EMBEDDED
    attempts: tuple[Attempt, ...] = field(default=(), metadata={"stored": False})


def _today() -> date:
    return datetime.now(UTC).date()


class PlanGenerator:
    """Makes plans (GeneratePlan) and subtasks (DecomposeTask) with the planner and stores
    them in the plans (`plans`); estimates durations from the plans' history."""

    def __init__(self, plans: Plans, planner: Router, telemetry: Telemetry | None = None) -> None:
        self.plans = plans
        self.store = plans.store
        self.mutations = plans.mutations
        self.planner = planner
        self.telemetry = telemetry or Telemetry.noop()

    # ---- generation ------------------------------------------------------------------

    async def generate(
        self,
        brief: Brief,
        *,
        persist: bool,
        m: Mutation = NO_MUTATION,
        call: Call = NO_CALL,
        gone: threading.Event | None = None,
        plan_id: str = "",
    ) -> AsyncIterator[GenerationInfo | PlanEvent | AttemptEvent | Generated]:
        """A `GenerationInfo`, planner and attempt events, then one `Generated`.

        Nothing is stored unless the stream runs to its end with its caller still there:
        `gone` (set when the call ends early) is checked inside the transaction that stores
        the plan, so a cancelled stream stores nothing.

        With a model backend in the chain, a plan is made once per request_id: its events
        are held until it is recorded (stored with `persist`, else remembered under the
        request_id), and a retry replays the record instead of asking again.

        With `plan_id` (an existing plan), the tasks get ids free in it (`free_task_ids`)."""
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "brief.project_id", brief.request.project_id, required=False)
        val.check_id(v, "plan_id", plan_id, required=False)
        if plan_id and persist:
            v.add("plan_id", "persist stores a new plan; plan_id names an existing one: not both")
        v.raise_if_any()
        if plan_id:
            await self.store.read(lambda tx: require_plan(tx, plan_id))
        deterministic = self.planner.generate_route(brief.request, call).chain == (EMBEDDED,)
        today = _today()
        record = None
        if m.request_id and (persist or not deterministic):
            record = await self.store.read(lambda tx: tx.get_idempotency(m.request_id))
        if record is not None and record.fingerprint == m.fingerprint:
            r = record.response
            if "generated" in r:
                async for item in self._replay(brief, r):
                    yield item
                return
        if persist and record is not None and "today" in record.response:
            # A retry must regenerate exactly what the first call stored: same day.
            today = date.fromisoformat(record.response["today"])
        generation_id = "" if deterministic else new_id("gen")
        yield GenerationInfo(generation_id)
        tracer = self.telemetry.tracer
        parent = otel_context.get_current()
        phase_span: trace.Span | None = None
        start = time.perf_counter()
        result: GeneratedPlan | None = None
        attempts: list[Attempt] = []
        tail: list[PlanEvent | AttemptEvent] | None = None
        sent = 0
        try:
            async for event in self.planner.generate(brief.request, today=today, call=call):
                if isinstance(event, PlanStart):
                    tail = []  # held until the plan is recorded
                    continue
                if isinstance(event, AttemptEvent):
                    attempts.append(event.attempt)
                if isinstance(event, PhaseEvent):
                    if phase_span is not None:
                        phase_span.end()
                    phase_span = tracer.start_span(f"planning.{event.phase}", context=parent)
                if isinstance(event, CompletedEvent):
                    result = event.plan
                    break
                if tail is not None:
                    tail.append(event)
                else:
                    sent += 1
                    yield event
        finally:
            if phase_span is not None:
                phase_span.end()
        backend = (
            attempts[-1].backend
            if attempts and attempts[-1].outcome == Outcome.SUCCEEDED
            else EMBEDDED
        )
        self.telemetry.generation_duration.record(
            (time.perf_counter() - start) * 1000, {"planner": backend}
        )
        if result is None:  # a backend that ended without completing is a bug of its own
            raise RuntimeError(f"planner {backend} ended without a plan")
        memo = (
            {"generation_id": generation_id, "events_before": sent, "today": today.isoformat()}
            if not deterministic
            else None
        )
        stored = None
        if persist:
            stored = await self._persist(
                brief, result, today, m, backend=backend, gone=gone, memo=memo
            )
        elif memo is not None and m.request_id:
            await self._remember(result, m, backend, memo)
        for event in tail or ():
            yield event
        free: Mapping[str, str] = {}
        if plan_id:
            local = [t.id for t in result.tasks]
            free = await self.store.read(lambda tx: free_task_ids(tx, plan_id, local))
        yield Generated(result, stored, backend, tuple(attempts), free)

    async def _replay(
        self, brief: Brief, r: Mapping[str, Any]
    ) -> AsyncIterator[GenerationInfo | PlanEvent | Generated]:
        """The recorded generation again: its plan's events with their first numbers."""
        yield GenerationInfo(r["generation_id"], replay_after=r["events_before"])
        plan = plan_codec.decode(r["generated"])
        stored = _decode_stored(r) if r.get("plan") else None
        if r["backend"] == EMBEDDED:
            # The embedded planner's own events, as it streamed them (it repeats itself).
            today = date.fromisoformat(r["today"])
            async for event in self.planner.embedded.generate(brief.request, today=today):
                if isinstance(event, CompletedEvent):
                    break
                yield event
        else:
            for event in plan_events(plan)[:-1]:
                yield event
        yield Generated(plan, stored, backend=r["backend"])

    async def _remember(
        self, plan: GeneratedPlan, m: Mutation, backend: str, memo: Mapping[str, Any]
    ) -> None:
        """Keeps an unstored model plan under its request_id, for a retry to replay."""

        def encode(_: None) -> dict[str, Any]:
            return {**memo, "backend": backend, "generated": plan_codec.encode(plan)}

        await self.mutations.run(
            "GeneratePlan", m, lambda w: Applied(None), FunctionCodec(encode, lambda d: None)
        )

    async def _persist(
        self,
        brief: Brief,
        gen: GeneratedPlan,
        today: date,
        m: Mutation,
        *,
        backend: str = EMBEDDED,
        gone: threading.Event | None = None,
        memo: Mapping[str, Any] | None = None,
    ) -> StoredPlan:
        def encode(s: StoredPlan) -> dict[str, Any]:
            out = {
                "plan": s.plan.to_dict(),
                "tasks": {k: t.to_dict() for k, t in s.tasks.items()},
                "today": today.isoformat(),
                "backend": backend,
            }
            if memo is not None:  # a model was in the chain: the plan is not made twice
                out.update(memo, generated=plan_codec.encode(gen))
            return out

        def body(w: Writing) -> Applied[StoredPlan]:
            if gone is not None and gone.is_set():
                # Checked in the transaction itself: the caller left while the plan was
                # being made or while this write waited its turn.
                raise CallerGoneError("the caller cancelled before the plan was stored")
            tx, ts = w.tx, w.ts
            req = brief.request
            plan_id = new_id("pln")
            plan = Plan(
                id=plan_id,
                project_id=req.project_id,
                name=req.name,
                description=req.description,
                objectives=tuple(req.requirements),
                constraints=tuple(req.constraints),
                metadata=_plan_metadata(gen, backend),
                status=PlanStatus.DRAFT,
                agents=brief.agents,
                create_time=ts,
                update_time=ts,
                version=1,
                revision=w.new_plan(plan_id),
            )
            ids = {t.id: new_id("tsk") for t in gen.tasks}
            tasks = {
                t.id: replace(
                    planned_task(t, plan.id),
                    id=ids[t.id],
                    dependencies=tuple(ids[d] for d in t.dependencies),
                    create_time=ts,
                    update_time=ts,
                )
                for t in gen.tasks
            }
            tx.insert_plan(plan)
            # The same limit as every other way of adding tasks (nothing is kept if not).
            self.plans.check_room(tx, plan.id, len(tasks))
            tx.insert_tasks(list(tasks.values()))
            changes = [ChangeRecord("PLAN_CREATED", "plan", plan.id, plan.to_dict())]
            changes += [
                ChangeRecord("TASK_CREATED", "task", t.id, t.to_dict()) for t in tasks.values()
            ]
            return Applied(StoredPlan(plan, tasks), changes)

        return await self.mutations.run(
            "GeneratePlan", m, body, FunctionCodec(encode, _decode_stored), bulk=True
        )

    # ---- decomposition ---------------------------------------------------------------

    async def decompose(
        self,
        *,
        task_id: str,
        description: str,
        level: DecompositionLevel | Unrecognized,
        persist: bool,
        estimated_hours: float = 0.0,
        m: Mutation = NO_MUTATION,
        call: Call = NO_CALL,
    ) -> DecomposeResult:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        if task_id:
            val.check_id(v, "task_id", task_id)
        elif not description.strip():
            v.add("task_id", "either task_id or description is required")
        val.check_text(v, "description", description, val.MAX_TEXT)
        if isinstance(level, Unrecognized):
            v.add("level", f"unknown value {level.number}; expected SUMMARY, STANDARD or DETAILED")
        if persist and not task_id:
            v.add("persist", "needs task_id: a free description has nowhere to be stored")
        val.check_hours(v, "estimated_hours", estimated_hours)
        v.raise_if_any()
        assert isinstance(level, DecompositionLevel)  # refused above otherwise
        level_name = level.value
        if not task_id:
            routed = await self.planner.decompose(
                TaskToDecompose(description=description, estimated_hours=estimated_hours or None),
                level_name,
                call=call,
            )
            d = routed.value
            return DecomposeResult(
                tuple(_subtask(s, "", {}) for s in d.subtasks),
                d.method,
                (),
                0,
                routed.backend,
                routed.attempts,
            )

        if persist:
            earlier = await self.mutations.replay("DecomposeTask", m, codec_for(DecomposeResult))
            if earlier is not None:
                return earlier

        def load(tx: ReadTx) -> tuple[Task, Plan | None]:
            task = require_task(tx, task_id)
            _check_decomposable(task, tx.children(task_id))
            return task, tx.get_plan(task.plan_id)

        task, plan = await self.store.read(load)
        routed = await self.planner.decompose(
            _to_decompose(task, estimated_hours), level_name, call=call
        )
        d = routed.value
        caps = {a.id: a.capabilities for a in plan.agents} if plan else {}
        if not persist:
            subtasks = tuple(
                _subtask(s, task.plan_id, {}, parent=task, agent_caps=caps) for s in d.subtasks
            )
            return DecomposeResult(subtasks, d.method, (), 0, routed.backend, routed.attempts)

        def body(w: Writing) -> Applied[DecomposeResult]:
            current = require_task(w.tx, task_id)
            self.plans.check_room(w.tx, current.plan_id, len(d.subtasks))
            # Checked again: the task may have changed while the planner worked.
            _check_decomposable(current, w.tx.children(task_id))
            return _store_decomposition(w, current, d, caps)

        r = await self.mutations.run("DecomposeTask", m, body, codec_for(DecomposeResult))
        return replace(r, backend=routed.backend, attempts=routed.attempts)

    # ---- estimation ------------------------------------------------------------------

    async def estimate(
        self,
        *,
        description: str,
        agent_id: str,
        scope: HistoryScope | Unrecognized | None,
        plan_id: str,
        project_id: str,
        call: Call = NO_CALL,
    ) -> Routed[DurationEstimate]:
        v = val.Violations()
        val.check_text(v, "task_description", description, val.MAX_TEXT, required=True)
        val.check_id(v, "agent_id", agent_id, required=False)
        val.check_id(v, "plan_id", plan_id, required=False)
        val.check_id(v, "project_id", project_id, required=False)
        if isinstance(scope, Unrecognized):
            v.add("scope", f"unknown value {scope.number}; expected PLAN or PROJECT")
        if scope is HistoryScope.PLAN and not plan_id:
            v.add("plan_id", "is required with scope PLAN")
        v.raise_if_any()

        def load(tx: ReadTx) -> list[Task]:
            plan = tx.get_plan(plan_id) if plan_id else None
            if plan_id and plan is None:
                raise NotFoundError("plan", plan_id)
            if agent_id and plan is not None and plan.agents and agent_id not in plan.agent_ids():
                raise NotFoundError("agent", agent_id)
            project = project_id or (plan.project_id if plan else "")
            if scope is HistoryScope.PLAN or (scope is None and not project):
                if plan_id:
                    return tx.completed_tasks(plan_id=plan_id, limit=HISTORY_LIMIT)
            elif project:
                return tx.completed_tasks(project_id=project, limit=HISTORY_LIMIT)
            return []

        history = await self.store.read(load, bulk=True)
        return await self.planner.estimate(
            description,
            agent_id=agent_id,
            history=[
                CompletedTask(
                    id=t.id,
                    title=t.title,
                    description=t.description,
                    estimated_hours=t.estimated_hours or None,
                    actual_hours=t.actual_hours,
                    assigned_agent=t.assigned_to,
                )
                for t in history
            ],
            call=call,
        )


def _store_decomposition(
    w: Writing, parent: Task, d: Decomposition, caps: Mapping[str, Sequence[str]]
) -> Applied[DecomposeResult]:
    tx, ts = w.tx, w.ts
    ids = {s.id: new_id("tsk") for s in d.subtasks}
    sources = set(d.source_ids)
    sinks = [ids[s] for s in d.sink_ids]
    children = []
    for s in d.subtasks:
        child = _subtask(s, parent.plan_id, ids, parent=parent, agent_caps=caps)
        # The first subtasks wait for what the parent waited for.
        deps = child.dependencies + (parent.dependencies if s.id in sources else ())
        children.append(replace(child, dependencies=deps, create_time=ts, update_time=ts))
    tx.insert_tasks(children)
    revision = w.next_revision(parent.plan_id)
    changes = [ChangeRecord("TASK_CREATED", "task", c.id, c.to_dict()) for c in children]
    rewired = []
    for dep_id in tx.dependents(parent.id):
        other = require_task(tx, dep_id)
        new_deps: list[str] = []
        for x in other.dependencies:
            for y in sinks if x == parent.id else [x]:
                if y not in new_deps:
                    new_deps.append(y)
        updated = replace(
            other, dependencies=tuple(new_deps), update_time=ts, version=other.version + 1
        )
        tx.update_task(updated)
        changes.append(ChangeRecord("TASK_UPDATED", "task", dep_id, updated.to_dict()))
        rewired.append(dep_id)
    return Applied(DecomposeResult(tuple(children), d.method, tuple(rewired), revision), changes)


def _decode_stored(d: Mapping[str, Any]) -> StoredPlan:
    return StoredPlan(
        Plan.from_dict(d["plan"]), {k: Task.from_dict(t) for k, t in d["tasks"].items()}
    )


# ---- conversions between the planner's data and stored tasks -----------------------------

_PRIORITY = {p.name: p for p in TaskPriority}


# ---- ids free in a plan: GeneratePlan's `plan_id` ----------------------------------------


def free_task_ids(tx: ReadTx, plan_id: str, local_ids: Sequence[str]) -> dict[str, str]:
    """An id for each generated task (local ids `t1`, `t2`, ... in dependency order) that
    no task has: `tsk_<plan>-t<n>`, where `<plan>` is the plan id without its `pln_`
    prefix, numbering on from 1 past the numbers already taken (tasks are addressed by id
    alone, so a taken id is taken whichever plan holds it). A caller creating the tasks
    one by one with these ids (CreateTask's `task_id`) and their dependencies needs no
    mapping of its own."""
    stem = f"tsk_{plan_id.removeprefix('pln_')}-t"
    out: dict[str, str] = {}
    n = 0
    for local in local_ids:
        n += 1
        while tx.get_task(f"{stem}{n}") is not None:
            n += 1
        out[local] = f"{stem}{n}"
    return out


def planned_task(t: planning.PlannedTask, plan_id: str) -> Task:
    """A generated task as a `Task` with its local id (`t1`, ...)."""
    return Task(
        id=t.id,
        plan_id=plan_id,
        title=t.title,
        description=t.description,
        priority=_PRIORITY[str(t.priority.value)],
        status=TaskStatus.TODO,
        estimated_hours=t.estimated_hours,
        optimistic_hours=t.optimistic_hours,
        pessimistic_hours=t.pessimistic_hours,
        dependencies=tuple(t.dependencies),
        assigned_to=t.assigned_to,
        required_capabilities=tuple(t.required_capabilities),
        acceptance_criteria=tuple(t.acceptance_criteria),
        schedule=Schedule(t.start_hours, t.finish_hours),
        metadata={
            "plansmith.source": t.source,
            "plansmith.requirements": ",".join(str(i) for i in t.requirement_indexes),
        },
    )


def _plan_metadata(gen: GeneratedPlan, backend: str = EMBEDDED) -> dict[str, str]:
    meta = {
        "plansmith.estimated_duration_hours": f"{gen.estimated_duration_hours:g}",
        CONFIDENCE_KEY: f"{gen.confidence:.2f}",
    }
    if gen.deadline_hours is not None:
        meta["plansmith.deadline_hours"] = f"{gen.deadline_hours:g}"
    if backend != EMBEDDED:
        meta["plansmith.backend"] = backend
    return meta


def _subtask(
    s: planning.Subtask,
    plan_id: str,
    ids: Mapping[str, str],
    *,
    parent: Task | None = None,
    agent_caps: Mapping[str, Sequence[str]] | None = None,
) -> Task:
    assignee = ""
    if parent is not None and parent.assigned_to:
        caps = agent_caps or {}
        # Keep the parent's agent where it can do the subtask (or the plan lists no agents).
        if not caps or (
            parent.assigned_to in caps
            and planning.agent_can_do(caps[parent.assigned_to], s.required_capabilities)
        ):
            assignee = parent.assigned_to
    return Task(
        id=ids.get(s.id, s.id),
        plan_id=plan_id,
        title=s.title,
        description=s.description,
        priority=_PRIORITY[str(getattr(s.priority, "value", s.priority))],
        status=TaskStatus.TODO,
        estimated_hours=s.estimated_hours,
        optimistic_hours=s.optimistic_hours,
        pessimistic_hours=s.pessimistic_hours,
        dependencies=tuple(ids.get(d, d) for d in s.dependencies),
        assigned_to=assignee,
        required_capabilities=tuple(s.required_capabilities),
        acceptance_criteria=tuple(s.acceptance_criteria),
        parent_task_id=parent.id if parent is not None else "",
    )


def _to_decompose(task: Task, estimated_hours: float) -> TaskToDecompose:
    hours = estimated_hours or task.estimated_hours
    return TaskToDecompose(
        title=task.title,
        description=task.description,
        estimated_hours=hours if hours and math.isfinite(hours) else None,
        required_capabilities=tuple(task.required_capabilities),
        priority=TaskPriority(task.priority).name,
    )


def _check_decomposable(task: Task, children: Sequence[str]) -> None:
    if task.status == TaskStatus.DONE:
        raise FailedPreconditionError(
            f"task {task.id!r} is DONE; there is nothing left to decompose",
            reason="TASK_DONE",
            violations=[PreconditionViolation("TASK_DONE", f"tasks/{task.id}", "task is DONE")],
        )
    if children:
        raise FailedPreconditionError(
            f"task {task.id!r} was already decomposed into {len(children)} subtask(s)",
            reason="TASK_ALREADY_DECOMPOSED",
            violations=[
                PreconditionViolation(
                    "TASK_ALREADY_DECOMPOSED",
                    f"tasks/{task.id}",
                    f"has subtasks {', '.join(children[:10])}",
                )
            ],
        )
