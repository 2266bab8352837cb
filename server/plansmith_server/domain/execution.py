"""Executing a plan: starting and finishing tasks, failures and the replanner's decisions,
agents' availability. Every write is one mutation of the write path
(`domain/mutations.py`: idempotent by request_id, one revision, its change records).

A failure is decided in three steps: read the plan (one snapshot), decide (`recovery`,
pure) and do the slow part outside any transaction (the optimizer for a reassignment,
the decomposition for a re-decomposition), then apply in one write transaction that
checks nothing moved meanwhile; if something did, the decision is made once more from
the new state.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from plansmith_server import planning
from plansmith_server.domain import validation as val
from plansmith_server.domain.codec import codec_for
from plansmith_server.domain.failures import FailureCategory, TaskFailure, categorized
from plansmith_server.domain.generation import _store_decomposition, _to_decompose
from plansmith_server.domain.models import (
    Agent,
    Availability,
    ChangeRecord,
    ListFilter,
    Plan,
    PlanStatus,
    ReplanRecord,
    ReplanState,
    ReplanTrigger,
    Task,
    TaskStatus,
)
from plansmith_server.domain.mutations import NO_MUTATION, Applied, Mutation, Writing, new_id
from plansmith_server.domain.paging import decode_page_token, encode_page_token
from plansmith_server.domain.plans import Plans, require_plan
from plansmith_server.domain.policy import ReplanDecision, ReplanPolicy
from plansmith_server.domain.preconditions import (
    children_of,
    start_preconditions,
)
from plansmith_server.domain.reassignment import DEFAULT_TIME_LIMIT_S, choose_agents
from plansmith_server.domain.recovery import (
    CONFIDENCE,
    RECOVERY_METHODS,
    Decision,
    History,
    Options,
    decide,
    reassign_candidates,
    recovery_drafts,
)
from plansmith_server.domain.store import ReadTx, WriteTx
from plansmith_server.domain.tasks import TaskResult, Tasks, require_task
from plansmith_server.errors import (
    EtagMismatchError,
    FailedPreconditionError,
    NotFoundError,
    PreconditionViolation,
)

D = ReplanDecision
DEFAULT_HEARTBEAT_TIMEOUT_S = 60.0
MAX_RETRY_AFTER_S = 7 * 86_400.0
S = 1_000_000


@dataclass(frozen=True)
class FailureResult:
    """What ReportTaskFailure returns."""

    record: ReplanRecord
    task: Task
    plan_revision: int


@dataclass(frozen=True)
class AvailabilityResult:
    """What SetAgentAvailability and Heartbeat return."""

    availability: Availability
    records: tuple[ReplanRecord, ...]
    plan_revision: int


@dataclass(frozen=True)
class ApplyResult:
    """What ApplyReplan returns."""

    record: ReplanRecord
    plan_revision: int


@dataclass(frozen=True)
class _Read:
    """One snapshot of what a decision needs."""

    plan: Plan
    tasks: dict[str, Task]
    availability: dict[str, Availability]
    records: list[ReplanRecord]


class Execution:
    """StartTask, CompleteTask, ReportTaskFailure, agents' availability, replan records."""

    def __init__(
        self,
        plans: Plans,
        tasks: Tasks,
        *,
        heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S,
        reassign_time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    ) -> None:
        self.plans = plans
        self.tasks = tasks
        self.mutations = plans.mutations
        self.store = plans.store
        self.heartbeat_timeout = int(heartbeat_timeout_s * S)
        self.reassign_time_limit_s = reassign_time_limit_s

    @property
    def clock(self) -> Callable[[], int]:
        return self.mutations.clock

    # ---- StartTask / CompleteTask --------------------------------------------------------

    async def start_task(
        self, task_id: str, agent_id: str, *, etag: str = "", m: Mutation = NO_MUTATION
    ) -> TaskResult:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "task_id", task_id)
        val.check_id(v, "agent_id", agent_id)
        v.raise_if_any()

        def body(w: Writing) -> Applied[TaskResult]:
            tx = w.tx
            task = require_task(tx, task_id)
            w.check_etag("task", task)
            plan = require_plan(tx, task.plan_id)
            agent = _agent(plan, agent_id)
            tasks = tx.plan_tasks(plan.id)
            by_id = {t.id: t for t in tasks}
            load = sum(
                1 for t in tasks if t.status == TaskStatus.IN_PROGRESS and t.assigned_to == agent_id
            )
            now = w.ts
            unmet = start_preconditions(
                plan,
                task,
                agent,
                tasks=by_id,
                children=children_of(tasks),
                agent_load=load,
                availability=tx.agent_availability(plan.id).get(agent_id),
                heartbeat_timeout=self.heartbeat_timeout,
                now=now,
            )
            if unmet:
                raise FailedPreconditionError(
                    f"task {task_id!r} cannot start: "
                    + "; ".join(u.description for u in unmet[:5]),
                    reason="TASK_PRECONDITIONS_UNMET",
                    violations=unmet,
                    metadata={"task_id": task_id, "unmet": ",".join(u.type for u in unmet)},
                )
            revision = w.next_revision(plan.id)
            started = replace(
                task,
                status=TaskStatus.IN_PROGRESS,
                assigned_to=agent_id,
                not_before=0,
                blocked_reason="",
                update_time=now,
                version=task.version + 1,
            )
            tx.update_task(started, dependencies=False)
            changes = [ChangeRecord("TASK_UPDATED", "task", task.id, started.to_dict())]
            if plan.status == PlanStatus.DRAFT:
                changes.append(_plan_status(w, plan, PlanStatus.ACTIVE))
            return Applied(TaskResult(started, revision), changes)

        return await self.mutations.run("StartTask", m, body, TASK_RESULT, etag=etag, bulk=True)

    async def complete_task(
        self,
        task_id: str,
        *,
        actual_hours: float = 0.0,
        outputs: Mapping[str, str] | None = None,
        etag: str = "",
        m: Mutation = NO_MUTATION,
    ) -> TaskResult:
        outputs = dict(outputs or {})
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "task_id", task_id)
        val.check_hours(v, "actual_hours", actual_hours)
        val.check_metadata(v, "outputs", outputs)
        v.raise_if_any()

        def body(w: Writing) -> Applied[TaskResult]:
            tx, now = w.tx, w.ts
            task = require_task(tx, task_id)
            w.check_etag("task", task)
            _require_in_progress(task)
            revision = w.next_revision(task.plan_id)
            done = replace(
                task,
                status=TaskStatus.DONE,
                progress=100,
                actual_hours=actual_hours or task.actual_hours,
                outputs=outputs,
                update_time=now,
                version=task.version + 1,
            )
            tx.update_task(done, dependencies=False)
            changes = [ChangeRecord("TASK_UPDATED", "task", task.id, done.to_dict())]
            changes += _unblock_dependents(w, done)
            changes += _supersede_proposals(tx, task.id)
            return Applied(TaskResult(done, revision), changes)

        return await self.mutations.run("CompleteTask", m, body, TASK_RESULT, etag=etag, bulk=True)

    # ---- ReportTaskFailure -------------------------------------------------------------

    async def report_failure(
        self,
        task_id: str,
        failure: TaskFailure,
        *,
        etag: str = "",
        dry_run: bool = False,
        m: Mutation = NO_MUTATION,
    ) -> FailureResult:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "task_id", task_id)
        _check_failure(v, "failure", failure)
        v.raise_if_any()
        if not dry_run:
            earlier = await self.mutations.replay("ReportTaskFailure", m, FAILURE_RESULT)
            if earlier is not None:
                return earlier
        failure, how = categorized(failure)
        try:
            return await self._report_once(task_id, failure, how, etag, dry_run, m)
        except _Moved:
            pass  # the plan changed while the decision was made: decide once more
        try:
            return await self._report_once(task_id, failure, how, etag, dry_run, m)
        except _Moved:
            current = await self.tasks.get_task(task_id)
            raise EtagMismatchError("task", task_id, current.etag) from None

    async def _report_once(
        self,
        task_id: str,
        failure: TaskFailure,
        how: str,
        etag: str,
        dry_run: bool,
        m: Mutation,
    ) -> FailureResult:
        read = await self._read_for_task(task_id)
        task = read.tasks[task_id]
        if etag and etag != task.etag:
            raise EtagMismatchError("task", task_id, task.etag)
        _require_in_progress(task)
        decision, history = self._decide(read, task, failure)
        prepared = await self._prepare(read, task, decision)
        if decision.decision == D.REDECOMPOSE:
            gap = _undoable(read.plan, prepared["decomposition"])
            if gap:
                decision, history = self._decide(read, task, failure, not_decomposable=gap)
                prepared = await self._prepare(read, task, decision)
        now = self.clock()
        record = ReplanRecord(
            id=new_id("rpl"),
            plan_id=read.plan.id,
            revision=read.plan.revision,
            task_id=task_id,
            category=int(failure.category),
            decision=int(decision.decision),
            confidence=decision.confidence,
            reason=f"{decision.reason} [category {how}]",
            state=ReplanState.DRY_RUN,
            trigger=ReplanTrigger.TASK_FAILURE,
            create_time=now,
            failure=failure.to_dict(),
            agent_id=task.assigned_to,
            new_agent_id=prepared.get("agent", ""),
            not_before=now + int(decision.not_before_s * S) if decision.not_before_s else 0,
            attempt=history.attempts + 1,
        )
        if dry_run:
            return FailureResult(record, task, read.plan.revision)
        proposed = decision.proposed(read.plan.replan_policy)

        def body(w: Writing) -> Applied[FailureResult]:
            tx, now = w.tx, w.ts
            current = require_task(tx, task_id)
            plan = require_plan(tx, current.plan_id)
            # The decision stands while the task is as read; a reassignment also needs
            # the plan the optimizer saw (another task moved could change the best agent).
            moved_plan = decision.decision == D.REASSIGN and plan.revision != read.plan.revision
            if current.version != task.version or moved_plan:
                raise _Moved()
            revision = w.next_revision(plan.id)
            if proposed:
                failed = _touch(current, now, status=TaskStatus.FAILED)
                tx.update_task(failed, dependencies=False)
                changes = [ChangeRecord("TASK_UPDATED", "task", failed.id, failed.to_dict())]
                changes += _block_dependents(
                    w, failed, f"a {D(record.decision).name} proposal waits for approval"
                )
                changes += _supersede_proposals(tx, task_id)
                stored = replace(
                    record, revision=revision, state=ReplanState.PROPOSED, create_time=now
                )
            else:
                changes = _supersede_proposals(tx, task_id)
                stored, more = self._apply(w, plan, current, record, prepared)
                changes += more
            tx.insert_replan_record(stored)
            changes.append(_record_change(stored))
            return Applied(FailureResult(stored, require_task(tx, task_id), revision), changes)

        return await self.mutations.run("ReportTaskFailure", m, body, FAILURE_RESULT, bulk=True)

    # ---- ApplyReplan / ListReplanRecords -------------------------------------------------

    async def apply_replan(
        self, plan_id: str, record_id: str, *, etag: str = "", m: Mutation = NO_MUTATION
    ) -> ApplyResult:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "plan_id", plan_id)
        val.check_id(v, "record_id", record_id)
        v.raise_if_any()
        earlier = await self.mutations.replay("ApplyReplan", m, APPLY_RESULT)
        if earlier is not None:
            return earlier

        def find(tx: ReadTx) -> tuple[ReplanRecord, _Read]:
            require_plan(tx, plan_id)
            rec = tx.get_replan_record(record_id)
            if rec is None or rec.plan_id != plan_id:
                raise NotFoundError("replan_record", record_id)
            return rec, _read(tx, rec.task_id)

        rec, read = await self.store.read(find, bulk=True)
        _require_proposed(rec)
        task = read.tasks.get(rec.task_id)
        if task is None:
            raise NotFoundError("task", rec.task_id)
        if etag and etag != task.etag:
            raise EtagMismatchError("task", task.id, task.etag)
        decision = Decision(D(rec.decision), rec.confidence, rec.reason, rule=None)
        prepared = await self._prepare(read, task, decision, agent=rec.new_agent_id)

        def body(w: Writing) -> Applied[ApplyResult]:
            tx = w.tx
            current_rec = tx.get_replan_record(record_id)
            if current_rec is None:
                raise NotFoundError("replan_record", record_id)
            _require_proposed(current_rec)
            current = require_task(tx, rec.task_id)
            if current.version != task.version:
                raise EtagMismatchError("task", current.id, current.etag)
            plan = require_plan(tx, plan_id)
            applied, changes = self._apply(w, plan, current, current_rec, prepared)
            tx.update_replan_record(applied)
            changes.append(_record_change(applied))
            return Applied(ApplyResult(applied, w.revision), changes)

        return await self.mutations.run("ApplyReplan", m, body, APPLY_RESULT, bulk=True)

    async def list_records(
        self, plan_id: str, *, task_id: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ReplanRecord], str, int]:
        v = val.Violations()
        val.check_id(v, "plan_id", plan_id)
        val.check_id(v, "task_id", task_id, required=False)
        size = val.page_size(v, page_size)
        v.raise_if_any()
        filt = ListFilter((("kind", "replan_records"), ("plan_id", plan_id), ("task", task_id)))
        after = decode_page_token(page_token, filt)

        def load(tx: ReadTx) -> tuple[list[tuple[int, ReplanRecord]], int]:
            require_plan(tx, plan_id)
            return tx.replan_records(plan_id, task_id, after, size + 1)

        rows, total = await self.store.read(load)
        token = encode_page_token(rows[size - 1][0], filt) if len(rows) > size else ""
        return [r for _, r in rows[:size]], token, total

    # ---- agents' availability ------------------------------------------------------------

    async def set_availability(
        self,
        plan_id: str,
        agent_id: str,
        *,
        available: bool,
        until: int = 0,
        reason: str = "",
        m: Mutation = NO_MUTATION,
        timed_out: bool = False,
    ) -> AvailabilityResult:
        """Stores whether the agent takes work; an unavailable agent's open tasks go
        through the replanner (one revision for all of them)."""
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "plan_id", plan_id)
        val.check_id(v, "agent_id", agent_id)
        val.check_text(v, "reason", reason, val.MAX_ITEM_LEN)
        if until and until <= self.clock():
            v.add("until", "must be in the future")
        v.raise_if_any()
        earlier = await self.mutations.replay("SetAgentAvailability", m, AVAILABILITY_RESULT)
        if earlier is not None:
            return earlier
        args = (plan_id, agent_id, available, until, reason, timed_out, m)
        try:
            return await self._set_availability_once(*args)
        except _Moved:
            pass  # the plan changed while the optimizer ran: choose once more
        try:
            return await self._set_availability_once(*args)
        except _Moved:
            raise EtagMismatchError("plan", plan_id, "") from None

    async def _set_availability_once(
        self,
        plan_id: str,
        agent_id: str,
        available: bool,
        until: int,
        reason: str,
        timed_out: bool,
        m: Mutation,
    ) -> AvailabilityResult:
        def load(tx: ReadTx) -> _Read:
            plan = require_plan(tx, plan_id)
            _agent(plan, agent_id)
            return _read_plan(tx, plan)

        read = await self.store.read(load, bulk=True)
        open_tasks = [
            t
            for t in read.tasks.values()
            if t.assigned_to == agent_id
            and t.status in (TaskStatus.TODO, TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED)
            and t.id not in children_of(list(read.tasks.values()))
        ]
        chosen: dict[str, str] = {}
        if not available and open_tasks:
            unavailable = self._unavailable(read) | {agent_id}
            candidates = {
                t.id: c
                for t in open_tasks
                if (
                    c := reassign_candidates(
                        t, read.plan.agents, unavailable=unavailable, avoid={agent_id}
                    )
                )
            }
            if candidates:
                chosen = await self._choose(read, candidates)
        old = read.availability.get(agent_id)

        def body(w: Writing) -> Applied[AvailabilityResult]:
            tx, now = w.tx, w.ts
            plan = require_plan(tx, plan_id)
            if chosen and plan.revision != read.plan.revision:
                raise _Moved()  # the optimizer saw another plan
            for t in open_tasks:
                stored = tx.get_task(t.id)
                if stored is None or stored.version != t.version:
                    raise _Moved()
            state = Availability(
                agent_id,
                available,
                until,
                reason,
                old.last_heartbeat if old else 0,
                timed_out,
            )
            tx.put_availability(plan_id, state)
            if available or not open_tasks:
                return Applied(AvailabilityResult(state, (), plan.revision))
            revision = w.next_revision(plan_id)
            changes: list[ChangeRecord] = []
            records: list[ReplanRecord] = []
            why = reason or ("no heartbeat" if timed_out else "set unavailable")
            for t in open_tasks:
                current = require_task(tx, t.id)
                target = chosen.get(t.id, "")
                if target:
                    decision = D.REASSIGN
                    text = f"agent {agent_id!r} unavailable ({why}): reassigned to {target!r}"
                else:
                    decision = D.RETRY
                    text = (
                        f"agent {agent_id!r} unavailable ({why}) and no other available "
                        "agent holds the task's capabilities: it waits for the agent"
                    )
                rec = ReplanRecord(
                    id=new_id("rpl"),
                    plan_id=plan_id,
                    revision=revision,
                    task_id=t.id,
                    category=0,
                    decision=int(decision),
                    confidence=CONFIDENCE[decision],
                    reason=text,
                    state=ReplanState.PROPOSED,
                    trigger=ReplanTrigger.AGENT_UNAVAILABLE,
                    create_time=now,
                    agent_id=agent_id,
                    new_agent_id=target,
                    not_before=until if not target else 0,
                )
                threshold = (plan.replan_policy or ReplanPolicy()).threshold
                if rec.confidence < threshold:
                    kept = rec
                else:
                    kept, more = self._apply(w, plan, current, rec, {"agent": target})
                    changes += more
                tx.insert_replan_record(kept)
                changes.append(_record_change(kept))
                records.append(kept)
            return Applied(AvailabilityResult(state, tuple(records), revision), changes)

        return await self.mutations.run(
            "SetAgentAvailability", m, body, AVAILABILITY_RESULT, bulk=True
        )

    async def heartbeat(self, plan_id: str, agent_id: str) -> Availability:
        """Records that the agent is alive; one the timeout made unavailable is back."""
        v = val.Violations()
        val.check_id(v, "plan_id", plan_id)
        val.check_id(v, "agent_id", agent_id)
        v.raise_if_any()

        def body(w: Writing) -> Applied[Availability]:
            tx, now = w.tx, w.ts
            plan = require_plan(tx, plan_id)
            _agent(plan, agent_id)
            old = tx.agent_availability(plan_id).get(agent_id) or Availability(agent_id)
            back = old.timed_out or old.available
            state = Availability(
                agent_id,
                back,
                old.until if not back else 0,
                old.reason if not back else "",
                now,
                False,
            )
            tx.put_availability(plan_id, state)
            return Applied(state)  # not a change of the plan: no revision

        return await self.mutations.run("Heartbeat", NO_MUTATION, body, AVAILABILITY)

    async def sweep_heartbeats(self) -> int:
        """Makes unavailable every agent whose last heartbeat is older than the timeout
        (its open tasks go through the replanner); returns how many."""
        now = self.clock()
        stale = await self.store.read(
            lambda tx: tx.stale_heartbeats(now - self.heartbeat_timeout), bulk=True
        )
        for plan_id, agent_id, last in stale:
            try:
                await self.set_availability(
                    plan_id,
                    agent_id,
                    available=False,
                    reason=f"no heartbeat for {(now - last) / S:.0f} s "
                    f"(timeout {self.heartbeat_timeout / S:g} s)",
                    timed_out=True,
                )
            except (NotFoundError, EtagMismatchError):
                continue  # deleted meanwhile, or busy: the next sweep sees it again
        return len(stale)

    # ---- deciding and applying -----------------------------------------------------------

    async def _read_for_task(self, task_id: str) -> _Read:
        return await self.store.read(lambda tx: _read(tx, task_id), bulk=True)

    def _unavailable(self, read: _Read) -> set[str]:
        now = self.clock()
        return {
            a
            for a, state in read.availability.items()
            if not state.available_at(now, self.heartbeat_timeout)[0]
        }

    def _decide(
        self, read: _Read, task: Task, failure: TaskFailure, *, not_decomposable: str = ""
    ) -> tuple[Decision, History]:
        mine = [
            r
            for r in read.records
            if r.state == ReplanState.APPLIED and r.trigger == ReplanTrigger.TASK_FAILURE
        ]
        same = [r for r in mine if r.category == failure.category]
        history = History(
            retries=sum(1 for r in same if r.decision == D.RETRY),
            used=frozenset(D(r.decision) for r in same if r.decision != D.RETRY),
            failed_agents=frozenset(r.agent_id for r in mine if r.agent_id),
            attempts=len(same),
        )
        candidates = reassign_candidates(
            task,
            read.plan.agents,
            unavailable=self._unavailable(read),
            avoid={task.assigned_to, *history.failed_agents},
        )
        children = children_of(list(read.tasks.values()))
        options = Options(
            candidates=candidates,
            decomposable=task.id not in children and not not_decomposable,
            not_decomposable=not_decomposable or "already decomposed",
        )
        return decide(read.plan.replan_policy, task, failure, history, options), history

    async def _prepare(
        self, read: _Read, task: Task, decision: Decision, *, agent: str = ""
    ) -> dict[str, Any]:
        """The slow part of a decision, outside any transaction: the optimizer's choice of
        agent, or the task's new decomposition."""
        if decision.decision == D.REASSIGN:
            if agent:
                return {"agent": agent}
            chosen = await self._choose(read, {task.id: decision.candidates})
            return {"agent": chosen[task.id]}
        if decision.decision == D.REDECOMPOSE:
            d = await asyncio.to_thread(
                planning.decompose_task, _to_decompose(task, 0.0), "STANDARD"
            )
            return {"decomposition": d}
        return {}

    async def _choose(self, read: _Read, candidates: Mapping[str, Sequence[str]]) -> dict[str, str]:
        tasks = list(read.tasks.values())
        return await asyncio.to_thread(
            choose_agents,
            read.plan,
            tasks,
            candidates,
            time_limit_s=self.reassign_time_limit_s,
        )

    def _apply(
        self,
        w: Writing,
        plan: Plan,
        task: Task,
        record: ReplanRecord,
        prepared: Mapping[str, Any],
    ) -> tuple[ReplanRecord, list[ChangeRecord]]:
        """Changes the plan as `record` decided, in the mutation `w` (the plan's next
        revision); returns the record as applied and the change records."""
        tx, now = w.tx, w.ts
        revision = w.next_revision(plan.id)
        decision = D(record.decision)
        changes: list[ChangeRecord] = []
        added: list[str] = []
        changed: list[str] = [task.id]
        new_agent = ""
        if decision == D.RETRY:
            updated = _touch(task, now, status=TaskStatus.TODO, not_before=record.not_before)
        elif decision == D.REASSIGN:
            new_agent = prepared["agent"]
            updated = _touch(task, now, status=TaskStatus.TODO, assigned_to=new_agent)
        elif decision == D.INSERT_RECOVERY_TASKS:
            failure = TaskFailure.from_dict(record.failure) if record.failure else TaskFailure()
            templates = RECOVERY_METHODS.get(FailureCategory(record.category), ())
            drafts = recovery_drafts(task, templates, failure)
            self.plans.check_room(tx, plan.id, len(drafts))
            ids = {d.id: new_id("tsk") for d in drafts}
            created = [
                replace(
                    d,
                    id=ids[d.id],
                    dependencies=tuple(ids.get(x, x) for x in d.dependencies),
                    create_time=now,
                    update_time=now,
                )
                for d in drafts
            ]
            tx.insert_tasks(created)
            changes += [ChangeRecord("TASK_CREATED", "task", c.id, c.to_dict()) for c in created]
            added = [c.id for c in created]
            deps = tuple(dict.fromkeys([*task.dependencies, created[-1].id]))
            updated = _touch(task, now, status=TaskStatus.TODO, dependencies=deps)
            tx.update_task(updated, dependencies=True)
            changes.append(ChangeRecord("TASK_UPDATED", "task", task.id, updated.to_dict()))
            updated = None
        elif decision == D.REDECOMPOSE:
            d = prepared["decomposition"]
            self.plans.check_room(tx, plan.id, len(d.subtasks))
            # As DecomposeTask stores one: the subtasks take over the task's dependencies,
            # its dependents wait for the subtasks that finish it.
            caps = {a.id: a.capabilities for a in plan.agents}
            stored = _store_decomposition(w, task, d, caps)
            changes += stored.changes
            added = [c.id for c in stored.result.subtasks]
            changed += stored.result.rewired_task_ids
            updated = _touch(task, now, status=TaskStatus.TODO)
        else:  # ESCALATE
            updated = _touch(task, now, status=TaskStatus.FAILED)
            if plan.status != PlanStatus.ON_HOLD:
                changes.append(_plan_status(w, plan, PlanStatus.ON_HOLD))
        if updated is not None:
            tx.update_task(updated, dependencies=False)
            changes.append(ChangeRecord("TASK_UPDATED", "task", task.id, updated.to_dict()))
        changes += _block_dependents(w, task, f"the replanner decided {decision.name}")
        applied = replace(
            record,
            revision=revision if record.state != ReplanState.PROPOSED else record.revision,
            state=ReplanState.APPLIED,
            applied_revision=revision,
            tasks_added=tuple(added),
            tasks_changed=tuple(changed),
            new_agent_id=new_agent or record.new_agent_id,
        )
        return applied, changes


def _undoable(plan: Plan, d: planning.Decomposition) -> str:
    """Why a decomposition would not help: a subtask no agent of the plan can do."""
    if not plan.agents:
        return ""
    for s in d.subtasks:
        if not any(
            planning.agent_can_do(a.capabilities, s.required_capabilities) for a in plan.agents
        ):
            missing = planning.missing_capabilities((), s.required_capabilities)
            return f"its subtask {s.title!r} needs {', '.join(missing)}, which no agent holds"
    return ""


class _Moved(Exception):
    """The plan changed between the decision's read and its write."""


def _read(tx: ReadTx, task_id: str) -> _Read:
    task = require_task(tx, task_id)
    read = _read_plan(tx, require_plan(tx, task.plan_id))
    return replace(read, records=tx.task_replan_records(task_id))


def _read_plan(tx: ReadTx, plan: Plan) -> _Read:
    tasks = {t.id: t for t in tx.plan_tasks(plan.id)}
    return _Read(plan, tasks, tx.agent_availability(plan.id), [])


def _agent(plan: Plan, agent_id: str) -> Agent:
    """The plan's agent; a plan that lists none takes anybody (as assignments do)."""
    if not plan.agents:
        return Agent(agent_id)
    for a in plan.agents:
        if a.id == agent_id:
            return a
    raise NotFoundError("agent", agent_id)


def _touch(task: Task, now: int, **values: Any) -> Task:
    return replace(task, **values, update_time=now, version=task.version + 1)


def _plan_status(w: Writing, plan: Plan, status: PlanStatus) -> ChangeRecord:
    updated = replace(
        plan,
        status=status,
        update_time=w.ts,
        version=plan.version + 1,
        revision=w.next_revision(plan.id),
    )
    w.tx.update_plan(updated)
    return ChangeRecord("PLAN_UPDATED", "plan", plan.id, updated.to_dict())


def _block_dependents(w: Writing, failed: Task, decided: str) -> list[ChangeRecord]:
    """A task that failed is not done whatever was decided: the TODO tasks waiting on it,
    directly or further down, become BLOCKED with a reason naming it."""
    reason = f"waits for task {failed.id!r} ({failed.title}), which failed; {decided}"
    dependents: dict[str, list[Task]] = {}
    for t in w.tx.plan_tasks(failed.plan_id):
        for d in t.dependencies:
            dependents.setdefault(d, []).append(t)
    out = []
    seen = {failed.id}
    stack = [failed.id]
    while stack:
        for t in dependents.get(stack.pop(), ()):
            if t.id in seen:
                continue
            seen.add(t.id)
            stack.append(t.id)
            if t.status == TaskStatus.TODO:
                blocked = _touch(t, w.ts, status=TaskStatus.BLOCKED, blocked_reason=reason)
                w.tx.update_task(blocked, dependencies=False)
                out.append(ChangeRecord("TASK_UPDATED", "task", t.id, blocked.to_dict()))
    return out


def _unblock_dependents(w: Writing, done: Task) -> list[ChangeRecord]:
    """The tasks the replanner blocked that wait on `done` go back to TODO once all their
    dependencies are done (a BLOCKED set by a caller, without a reason, stays)."""
    tasks = {t.id: t for t in w.tx.plan_tasks(done.plan_id)}
    out = []
    for t in tasks.values():
        if not (t.status == TaskStatus.BLOCKED and t.blocked_reason and done.id in t.dependencies):
            continue
        if all(tasks[d].status == TaskStatus.DONE for d in t.dependencies if d in tasks):
            todo = _touch(t, w.ts, status=TaskStatus.TODO, blocked_reason="")
            w.tx.update_task(todo, dependencies=False)
            out.append(ChangeRecord("TASK_UPDATED", "task", t.id, todo.to_dict()))
    return out


def _record_change(record: ReplanRecord) -> ChangeRecord:
    return ChangeRecord("REPLAN_RECORDED", "replan_record", record.id, record.to_dict())


def _supersede_proposals(tx: WriteTx, task_id: str) -> list[ChangeRecord]:
    """Proposals about a task that moved on can no longer be applied."""
    out = []
    for r in tx.task_replan_records(task_id):
        if r.state == ReplanState.PROPOSED:
            gone = replace(r, state=ReplanState.SUPERSEDED)
            tx.update_replan_record(gone)
            out.append(_record_change(gone))
    return out


def _require_in_progress(task: Task) -> None:
    if task.status != TaskStatus.IN_PROGRESS:
        name = "TODO" if task.status == TaskStatus.TODO else TaskStatus(task.status).name
        raise FailedPreconditionError(
            f"task {task.id!r} is {name}; only an IN_PROGRESS task finishes or fails",
            reason="TASK_NOT_IN_PROGRESS",
            violations=[
                PreconditionViolation(
                    "TASK_NOT_IN_PROGRESS", f"tasks/{task.id}", f"the task is {name}"
                )
            ],
        )


def _require_proposed(rec: ReplanRecord) -> None:
    if rec.state != ReplanState.PROPOSED:
        raise FailedPreconditionError(
            f"replan record {rec.id!r} is {rec.state.name}, not PROPOSED",
            reason="REPLAN_NOT_PROPOSED",
            violations=[
                PreconditionViolation(
                    "REPLAN_NOT_PROPOSED", f"replanRecords/{rec.id}", f"it is {rec.state.name}"
                )
            ],
        )


def _check_failure(v: val.Violations, p: str, f: TaskFailure) -> None:
    val.check_enum(v, f"{p}.category", f.category, FailureCategory)
    val.check_text(v, f"{p}.message", f.message, val.MAX_TEXT)
    if not math.isfinite(f.retry_after_s) or not 0 <= f.retry_after_s <= MAX_RETRY_AFTER_S:
        v.add(f"{p}.retry_after", "must be between 0 and 7 days")
    val.check_metadata(v, f"{p}.evidence", f.evidence)
    val.check_string_list(v, f"{p}.facts_added", f.facts_added, 64, 200)
    val.check_string_list(v, f"{p}.facts_removed", f.facts_removed, 64, 200)


TASK_RESULT = codec_for(TaskResult)
FAILURE_RESULT = codec_for(FailureResult)
APPLY_RESULT = codec_for(ApplyResult)
AVAILABILITY_RESULT = codec_for(AvailabilityResult)
AVAILABILITY = codec_for(Availability)
