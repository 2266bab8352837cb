"""WatchPlan's messages from the feed's events.

Each revision is encoded once, by the feed, as a whole `WatchPlanResponse` holding that
revision alone; a message of several revisions is their encodings joined, then its
`current_revision` (protobuf merges concatenated encodings of a message and appends
repeated fields). So a revision delivered to 50 watchers is encoded once, not 50 times.
"""

from __future__ import annotations

import logging

from plansmith.v1 import watch_pb2 as pb
from plansmith_server.api.convert import (
    plan_to_proto,
    record_to_proto,
    task_to_proto,
    timestamp,
)
from plansmith_server.domain.models import ChangeRecord, Plan, ReplanRecord, Task
from plansmith_server.domain.watch import Batch, Deleted, Heartbeat, Revision

log = logging.getLogger(__name__)

_TYPES = {
    "PLAN_CREATED": pb.PLAN_CHANGE_TYPE_PLAN_CREATED,
    "PLAN_UPDATED": pb.PLAN_CHANGE_TYPE_PLAN_UPDATED,
    "PLAN_DELETED": pb.PLAN_CHANGE_TYPE_PLAN_DELETED,
    "TASK_CREATED": pb.PLAN_CHANGE_TYPE_TASK_CREATED,
    "TASK_UPDATED": pb.PLAN_CHANGE_TYPE_TASK_UPDATED,
    "TASK_DELETED": pb.PLAN_CHANGE_TYPE_TASK_DELETED,
    "REPLAN_RECORDED": pb.PLAN_CHANGE_TYPE_REPLAN_RECORDED,
}


def change_to_proto(c: ChangeRecord) -> pb.PlanChange:
    """A change-log entry as a `PlanChange`; a kind this server does not know goes out
    as UNSPECIFIED with its entity id only."""
    kind = _TYPES.get(c.kind, pb.PLAN_CHANGE_TYPE_UNSPECIFIED)
    msg = pb.PlanChange(type=kind, entity_id=c.entity_id)
    try:
        if c.entity_type == "plan":
            msg.plan.CopyFrom(plan_to_proto(Plan.from_dict(c.snapshot)))
        elif c.entity_type == "task":
            msg.task.CopyFrom(task_to_proto(Task.from_dict(c.snapshot)))
        elif c.entity_type == "replan_record":
            msg.replan_record.CopyFrom(record_to_proto(ReplanRecord.from_dict(c.snapshot)))
    except (KeyError, TypeError, ValueError) as exc:  # a snapshot of an older layout
        log.warning("change of %s %s not decodable: %s", c.entity_type, c.entity_id, exc)
    return msg


def encode_revision(plan_id: str, r: Revision) -> bytes:
    """A `WatchPlanResponse` holding revision `r` alone, encoded."""
    revision = pb.PlanRevision(
        revision=r.number,
        commit_time=timestamp(r.commit_time),
        changes=[change_to_proto(c) for c in r.changes],
    )
    return pb.WatchPlanResponse(
        changes=pb.WatchPlanChanges(revisions=[revision])
    ).SerializeToString()


def batch_message(batch: Batch) -> bytes:
    """The encoded `WatchPlanResponse` of a batch of revisions."""
    tail = pb.WatchPlanResponse(
        changes=pb.WatchPlanChanges(current_revision=batch.current)
    ).SerializeToString()
    return b"".join([r.encoded for r in batch.revisions] + [tail])


def heartbeat_message(h: Heartbeat) -> pb.WatchPlanResponse:
    return pb.WatchPlanResponse(
        heartbeat=pb.WatchPlanHeartbeat(current_revision=h.current, time=timestamp(h.time))
    )


def deleted_message(d: Deleted) -> pb.WatchPlanResponse:
    return pb.WatchPlanResponse(plan_deleted=pb.WatchPlanDeleted(revision=d.revision))
