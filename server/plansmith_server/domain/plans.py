"""Plans: the rules of every read and write of a plan, over a `Store`; and the limit of
tasks per plan that every way of adding tasks keeps.

Writes go through the one write path (`domain/mutations.py`): each checks, writes, takes
the plan's next revision and logs its changes in one transaction, so a failed request
changes nothing and a retried one returns its first result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from plansmith_server.domain import validation as val
from plansmith_server.domain.codec import codec_for
from plansmith_server.domain.models import (
    PLAN_MUTABLE_FIELDS,
    ChangeRecord,
    ListFilter,
    Page,
    Plan,
    PlanStatus,
)
from plansmith_server.domain.mutations import (
    NO_MUTATION,
    Applied,
    Mutation,
    MutationRunner,
    Writing,
    new_id,
)
from plansmith_server.domain.paging import decode_page_token, page_of
from plansmith_server.domain.store import PlanQuery, ReadTx
from plansmith_server.errors import FailedPreconditionError, NotFoundError, PreconditionViolation


@dataclass(frozen=True)
class PlanDeletion:
    """What DeletePlan removed."""

    plan_id: str
    deleted_task_count: int


class Plans:
    """The stored plans: create, read, list, update, delete."""

    def __init__(self, mutations: MutationRunner, *, max_tasks_per_plan: int = 10_000) -> None:
        self.mutations = mutations
        self.store = mutations.store
        self.max_tasks_per_plan = max_tasks_per_plan

    def check_room(self, tx: ReadTx, plan_id: str, adding: int) -> None:
        """Refuses to grow a plan past `max_tasks_per_plan` tasks (or raises NotFound)."""
        size = tx.plan_size(plan_id)
        if size is None:
            raise NotFoundError("plan", plan_id)
        have = size[1]
        if have + adding > self.max_tasks_per_plan:
            raise FailedPreconditionError(
                f"plan {plan_id!r} has {have} tasks; adding {adding} would pass the limit of "
                f"{self.max_tasks_per_plan} tasks per plan",
                reason="PLAN_TASK_LIMIT",
                violations=[
                    PreconditionViolation(
                        "PLAN_TASK_LIMIT",
                        f"plans/{plan_id}",
                        f"{have} + {adding} tasks > {self.max_tasks_per_plan}",
                    )
                ],
                metadata={"limit": str(self.max_tasks_per_plan), "tasks": str(have)},
            )

    async def create_plan(self, draft: Plan, m: Mutation = NO_MUTATION) -> Plan:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_plan(v, "plan", draft)
        v.raise_if_any()
        plan_id = new_id("pln")

        def body(w: Writing) -> Applied[Plan]:
            plan = replace(
                draft,
                id=plan_id,
                status=PlanStatus(draft.status) or PlanStatus.DRAFT,
                create_time=w.ts,
                update_time=w.ts,
                version=1,
                revision=w.new_plan(plan_id),
            )
            w.tx.insert_plan(plan)
            return Applied(plan, [ChangeRecord("PLAN_CREATED", "plan", plan.id, plan.to_dict())])

        return await self.mutations.run("CreatePlan", m, body, codec_for(Plan))

    async def get_plan(self, plan_id: str) -> Plan:
        v = val.Violations()
        val.check_id(v, "plan_id", plan_id)
        v.raise_if_any()
        return await self.store.lookup(lambda tx: require_plan(tx, plan_id))

    async def list_plans(
        self, *, project_id: str = "", status: int = 0, page_size: int = 0, page_token: str = ""
    ) -> Page:
        v = val.Violations()
        val.check_id(v, "project_id", project_id, required=False)
        if status:
            val.check_enum(v, "status", status, PlanStatus)
        size = val.page_size(v, page_size)
        v.raise_if_any()
        filt = ListFilter((("kind", "plans"), ("project_id", project_id), ("status", str(status))))
        after = decode_page_token(page_token, filt)
        q = PlanQuery(project_id=project_id, status=status, after_seq=after, limit=size + 1)
        rows, total = await self.store.read(lambda tx: tx.list_plans(q))
        return page_of(rows, size, total, filt)

    async def update_plan(
        self, changes: Plan, fields: Sequence[str], *, etag: str = "", m: Mutation = NO_MUTATION
    ) -> Plan:
        """Sets `fields` of the stored plan `changes.id` to their values in `changes`."""
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "plan.id", changes.id)
        val.check_mask(v, fields, PLAN_MUTABLE_FIELDS)
        val.check_plan(v, "plan", changes, fields)
        v.raise_if_any()

        def body(w: Writing) -> Applied[Plan]:
            current = require_plan(w.tx, changes.id)
            w.check_etag("plan", current)
            values = {f: getattr(changes, f) for f in fields}
            if "status" in values:
                values["status"] = PlanStatus(values["status"])
            if "agents" in values:
                _check_agents_in_use(w.tx, current, {a.id for a in values["agents"]})
            revision = w.next_revision(current.id)
            updated = replace(
                current, **values, update_time=w.ts, version=current.version + 1, revision=revision
            )
            w.tx.update_plan(updated)
            return Applied(
                updated, [ChangeRecord("PLAN_UPDATED", "plan", current.id, updated.to_dict())]
            )

        return await self.mutations.run(
            "UpdatePlan", m, body, codec_for(Plan), etag=etag, bulk="agents" in fields
        )

    async def delete_plan(
        self, plan_id: str, etag: str = "", m: Mutation = NO_MUTATION
    ) -> PlanDeletion:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "plan_id", plan_id)
        v.raise_if_any()

        def body(w: Writing) -> Applied[PlanDeletion]:
            current = require_plan(w.tx, plan_id)
            w.check_etag("plan", current)
            final = replace(current, revision=w.next_revision(plan_id), update_time=w.ts)
            count = w.tx.delete_plan(plan_id)
            return Applied(
                PlanDeletion(plan_id, count),
                [ChangeRecord("PLAN_DELETED", "plan", plan_id, final.to_dict())],
            )

        return await self.mutations.run(
            "DeletePlan",
            m,
            body,
            codec_for(PlanDeletion),
            etag=etag,
            bulk=True,  # the plan's tasks go with it
        )


def require_plan(tx: ReadTx, plan_id: str) -> Plan:
    """The plan, or NotFound."""
    plan = tx.get_plan(plan_id)
    if plan is None:
        raise NotFoundError("plan", plan_id)
    return plan


def _check_agents_in_use(tx: ReadTx, plan: Plan, new_ids: set[str]) -> None:
    if not new_ids:
        return  # a plan without agents accepts any assignee
    stranded = [t for t in tx.plan_tasks(plan.id) if t.assigned_to and t.assigned_to not in new_ids]
    if stranded:
        raise FailedPreconditionError(
            f"{len(stranded)} task(s) are assigned to agents the update removes; reassign them "
            "first",
            reason="AGENT_IN_USE",
            violations=[
                PreconditionViolation(
                    "AGENT_IN_USE", f"tasks/{t.id}", f"assigned to {t.assigned_to!r}"
                )
                for t in stranded[:50]
            ],
            metadata={"agents": ",".join(sorted({t.assigned_to for t in stranded}))},
        )
