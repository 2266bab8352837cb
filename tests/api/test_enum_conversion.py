"""Enums across the API edge: the domain's own enums (no wire numbers in the domain), one
name per value on both sides, and unknown numbers carried typed to validation."""

from __future__ import annotations

import pytest

from plansmith.v1 import plan_pb2, task_pb2
from plansmith.v1 import planning_service_pb2 as pb
from plansmith_server.api import convert
from plansmith_server.api.planning_convert import goals_from_proto, level_from_proto
from plansmith_server.domain import validation as val
from plansmith_server.domain.models import (
    DecompositionLevel,
    PlanStatus,
    TaskPriority,
    TaskStatus,
    Unrecognized,
)
from plansmith_server.scheduling import Goal


@pytest.mark.parametrize(
    ("domain", "wire", "prefix"),
    [
        (PlanStatus, plan_pb2.PlanStatus, "PLAN_STATUS_"),
        (TaskStatus, task_pb2.TaskStatus, "TASK_STATUS_"),
        (TaskPriority, task_pb2.TaskPriority, "TASK_PRIORITY_"),
    ],
)
def test_each_stored_enum_value_has_the_wire_name(domain, wire, prefix):
    assert {m.name: m.value for m in domain} == {
        v.name.removeprefix(prefix): v.number for v in wire.DESCRIPTOR.values
    }


def test_an_unknown_status_stays_typed_and_validation_names_its_number():
    plan = convert.plan_from_proto(plan_pb2.Plan(name="p", status=99))
    task = convert.task_from_proto(task_pb2.Task(title="t", status=42, priority=7))
    for value, enum in ((plan.status, PlanStatus), (task.status, TaskStatus)):
        assert type(value) is enum and value not in list(enum)
    assert type(task.priority) is TaskPriority
    v = val.Violations()
    val.check_enum(v, "plan.status", plan.status, PlanStatus)
    ((field, description),) = [(x.field, x.description) for x in v.items]
    assert field == "plan.status" and description.startswith("unknown value 99;")
    assert convert.plan_from_proto(plan_pb2.Plan(status=2)).status is PlanStatus.ACTIVE


def test_goals_and_levels_become_domain_enums():
    assert goals_from_proto(
        [pb.OPTIMIZATION_GOAL_BALANCE_WORKLOAD, pb.OPTIMIZATION_GOAL_UNSPECIFIED, 7]
    ) == [Goal.BALANCE_WORKLOAD, Unrecognized(0), Unrecognized(7)]
    assert level_from_proto(pb.DECOMPOSITION_LEVEL_UNSPECIFIED) is DecompositionLevel.STANDARD
    assert level_from_proto(pb.DECOMPOSITION_LEVEL_DETAILED) is DecompositionLevel.DETAILED
    assert level_from_proto(9) == Unrecognized(9)
