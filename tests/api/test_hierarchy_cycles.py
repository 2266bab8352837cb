"""Dependency loops through the subtask hierarchy: a summary task spans its subtasks, so a
subtask that depends on its parent (or on a task that depends on it) can never start.
Writes refuse them, naming the cycle; planning calls on stored data that holds one (from
before writes refused them) answer FAILED_PRECONDITION naming it, never INTERNAL."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from plansmith.v1 import agent_pb2, plan_pb2, planning_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from plansmith.v1 import planning_service_pb2 as ppb
from plansmith_server.domain.models import Task, TaskStatus
from tests.conftest import details_of


@pytest.fixture
def planning(channel):
    return planning_service_pb2_grpc.PlanningServiceStub(channel)


async def new_plan(plans) -> str:
    plan = plan_pb2.Plan(name="loops", agents=[agent_pb2.Agent(id="ann", name="Ann")])
    return (await plans.CreatePlan(pb.CreatePlanRequest(plan=plan))).plan.id


@dataclass
class Plan:
    """A plan under test and the ids of its tasks by the names the cases use."""

    id: str
    ids: dict[str, str] = field(default_factory=dict)

    def name(self, task_id: str) -> str:
        return {v: k for k, v in self.ids.items()}.get(task_id, task_id)


async def batch(plans, plan: Plan, *specs: tuple[str, str, list[str]]) -> None:
    """BatchCreateTasks of (name, parent, dependencies); names of stored tasks are
    replaced by their ids, names new in this batch are batch references."""
    tasks = [
        task_pb2.Task(
            id=name,
            title=name,
            estimated_hours=4,
            parent_task_id=plan.ids.get(parent, parent),
            dependencies=[plan.ids.get(d, d) for d in deps],
        )
        for name, parent, deps in specs
    ]
    r = await plans.BatchCreateTasks(pb.BatchCreateTasksRequest(plan_id=plan.id, tasks=tasks))
    plan.ids.update({name: t.id for (name, _, _), t in zip(specs, r.tasks, strict=True)})


async def create(plans, plan: Plan, name: str, parent: str, deps: list[str]) -> None:
    task = task_pb2.Task(
        title=name,
        estimated_hours=4,
        parent_task_id=plan.ids[parent] if parent else "",
        dependencies=[plan.ids[d] for d in deps],
    )
    r = await plans.CreateTask(pb.CreateTaskRequest(plan_id=plan.id, task=task))
    plan.ids[name] = r.task.id


async def update(plans, plan: Plan, name: str, deps: list[str]) -> None:
    await plans.UpdateTask(
        pb.UpdateTaskRequest(
            task=task_pb2.Task(id=plan.ids[name], dependencies=[plan.ids[d] for d in deps]),
            update_mask=field_mask_pb2.FieldMask(paths=["dependencies"]),
        )
    )


async def planning_calls(planning, plan_id: str) -> list[grpc.StatusCode]:
    """AnalyzePlan, OptimizePlan and SuggestNextTasks on the plan: their codes."""
    calls = [
        planning.AnalyzePlan(
            ppb.AnalyzePlanRequest(plan_id=plan_id, monte_carlo_samples=200, seed=1)
        ),
        planning.OptimizePlan(
            ppb.OptimizePlanRequest(
                plan_id=plan_id, time_limit=duration_pb2.Duration(nanos=200_000_000)
            )
        ),
        planning.SuggestNextTasks(ppb.SuggestNextTasksRequest(plan_id=plan_id, agent_id="ann")),
    ]
    codes = []
    for call in calls:
        try:
            await call
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as e:
            codes.append(e.code())
    return codes


# Each case: the writes that are accepted, then the write that would close the loop (as
# ("batch", specs) / ("create", name, parent, deps) / ("update", name, deps)), and the
# cycle the refusal names (batch references and stored tasks by name).
CASES = {
    "child depends on its parent (batch)": (
        [],
        ("batch", [("p", "", []), ("k", "p", ["p"])]),
        "k -> p -> k",
    ),
    "child depends on its parent (CreateTask)": (
        [("batch", [("p", "", [])])],
        ("create", "k", "p", ["p"]),
        "(the new task) -> p -> (the new task)",
    ),
    "child depends on its parent (UpdateTask)": (
        [("batch", [("p", "", []), ("k", "p", [])])],
        ("update", "k", ["p"]),
        "k -> p -> k",
    ),
    "grandchild depends on its grandparent": (
        [("batch", [("g", "", []), ("p", "g", [])])],
        ("batch", [("k", "p", ["g"])]),
        "k -> g -> p -> k",
    ),
    "grandchild depends on its grandparent (UpdateTask)": (
        [("batch", [("g", "", []), ("p", "g", []), ("k", "p", [])])],
        ("update", "k", ["g"]),
        "k -> g -> p -> k",
    ),
    "h (child of g) depends on x, which depends on g": (
        [("batch", [("g", "", []), ("x", "", ["g"])])],
        ("batch", [("h", "g", ["x"])]),
        "h -> x -> g -> h",
    ),
    "x comes to depend on g, whose child h depends on x": (
        [("batch", [("g", "", []), ("x", "", []), ("h", "g", ["x"])])],
        ("update", "x", ["g"]),
        "x -> g -> h -> x",
    ),
    "two summaries whose subtasks depend on each other's parent": (
        [("batch", [("A", "", []), ("B", "", []), ("a1", "A", ["B"])])],
        ("batch", [("b1", "B", ["A"])]),
        "b1 -> A -> a1 -> B -> b1",
    ),
    "two summaries, all in one batch": (
        [],
        ("batch", [("A", "", []), ("B", "", []), ("a1", "A", ["B"]), ("b1", "B", ["A"])]),
        "a1 -> B -> b1 -> A -> a1",
    ),
    "a summary depends on its own subtask": (
        [("batch", [("S", "", []), ("c", "S", [])])],
        ("update", "S", ["c"]),
        "S -> c -> S",
    ),
}


async def apply(plans, plan: Plan, write: tuple) -> None:
    kind, *args = write
    if kind == "batch":
        await batch(plans, plan, *args[0])
    elif kind == "create":
        await create(plans, plan, *args)
    else:
        await update(plans, plan, *args)


@pytest.mark.parametrize("case", list(CASES))
async def test_writes_that_loop_through_the_hierarchy_are_refused_naming_the_cycle(
    plans, planning, case
):
    setup, write, named = CASES[case]
    plan = Plan(await new_plan(plans))
    for step in setup:
        await apply(plans, plan, step)
    before = await plans.ListTasks(pb.ListTasksRequest(plan_id=plan.id))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await apply(plans, plan, write)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = details_of(e.value)["ErrorInfo"]
    assert info.reason == "DEPENDENCY_CYCLE"
    assert " -> ".join(plan.name(x) for x in info.metadata["cycle"].split(" -> ")) == named
    assert "subtask" in e.value.details()  # says how it loops
    after = await plans.ListTasks(pb.ListTasksRequest(plan_id=plan.id))
    assert after == before  # nothing written
    if before.tasks:
        assert set(await planning_calls(planning, plan.id)) == {grpc.StatusCode.OK}


def stored(plan_id: str, tid: str, parent: str = "", deps: tuple[str, ...] = ()) -> Task:
    return Task(
        id=tid,
        plan_id=plan_id,
        title=tid,
        estimated_hours=4,
        parent_task_id=parent,
        dependencies=deps,
        status=TaskStatus.TODO,
    )


STORED = {
    # What release 1 accepted, written below the domain's checks.
    "child on parent": ([("p", "", ()), ("k", "p", ("p",))], "k -> p -> k"),
    "grandchild on grandparent": (
        [("g", "", ()), ("p", "g", ()), ("k", "p", ("g",))],
        "k -> g -> p -> k",
    ),
    "through a task that depends on the parent": (
        [("g", "", ()), ("x", "", ("g",)), ("h", "g", ("x",))],
        "x -> g -> h -> x",
    ),
    "two summaries": (
        [("A", "", ()), ("B", "", ()), ("a1", "A", ("B",)), ("b1", "B", ("A",))],
        "a1 -> B -> b1 -> A -> a1",
    ),
    "plain cycle": ([("a", "", ("b",)), ("b", "", ("a",))], "a -> b -> a"),
}


@pytest.mark.parametrize("case", list(STORED))
async def test_planning_calls_on_stored_loops_fail_precondition_naming_the_cycle(
    server, plans, planning, case
):
    specs, named = STORED[case]
    plan_id = await new_plan(plans)
    await server.store.write(
        lambda tx: tx.insert_tasks([stored(plan_id, t, p, d) for t, p, d in specs])
    )
    calls = {
        "AnalyzePlan": planning.AnalyzePlan(ppb.AnalyzePlanRequest(plan_id=plan_id)),
        "OptimizePlan": planning.OptimizePlan(ppb.OptimizePlanRequest(plan_id=plan_id)),
        "SuggestNextTasks": planning.SuggestNextTasks(
            ppb.SuggestNextTasksRequest(plan_id=plan_id, agent_id="ann")
        ),
    }
    for method, call in calls.items():
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION, method
        d = details_of(e.value)
        assert d["ErrorInfo"].reason == "DEPENDENCY_CYCLE"
        assert d["ErrorInfo"].metadata["cycle"] == named
        assert named in e.value.details()
        assert d["PreconditionFailure"].violations[0].type == "DEPENDENCY_CYCLE"
    # Breaking the loop (a write the domain checks) makes the plan plannable again.
    first, second = named.split(" -> ")[:2]
    deps = [d for t, _, ds in specs if t == first for d in ds if d != second]
    await plans.UpdateTask(
        pb.UpdateTaskRequest(
            task=task_pb2.Task(id=first, dependencies=deps),
            update_mask=field_mask_pb2.FieldMask(paths=["dependencies"]),
        )
    )
    assert set(await planning_calls(planning, plan_id)) == {grpc.StatusCode.OK}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_hierarchies_every_accepted_write_leaves_a_plannable_plan(
    plans, planning, seed
):
    """Random writes of hierarchy and dependencies (parents, ancestors, descendants,
    siblings and unrelated tasks as dependencies; batches, single creates, updates):
    every write is accepted or refused as a cycle, and after every accepted one the
    planning calls answer without INTERNAL (nor a cycle)."""
    rng = random.Random(seed)
    plan = Plan(await new_plan(plans))
    names: list[str] = []
    refused = accepted = 0
    for step in range(14):
        kind = rng.choice(["batch", "batch", "create", "update"] if names else ["batch"])
        if kind == "update":
            name = rng.choice(names)
            write: tuple = ("update", name, rng.sample(names, min(len(names), rng.randint(1, 2))))
            if name in write[2]:
                write[2].remove(name)  # depending on itself is a different error
        else:
            count = rng.randint(1, 4) if kind == "batch" else 1
            specs = []
            for j in range(count):
                name = f"t{step}_{j}"
                known = names + [s[0] for s in specs] if kind == "batch" else names
                parent = rng.choice(known) if known and rng.random() < 0.6 else ""
                deps = rng.sample(known, min(len(known), rng.randint(0, 2)))
                specs.append((name, parent, deps))
            write = ("batch", specs) if kind == "batch" else ("create", *specs[0])
        try:
            await apply(plans, plan, write)
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (write, e.details())
            assert details_of(e)["ErrorInfo"].reason == "DEPENDENCY_CYCLE", e.details()
            refused += 1
            continue
        accepted += 1
        if write[0] == "batch":
            names += [s[0] for s in write[1]]
        elif write[0] == "create":
            names.append(write[1])
        codes = await planning_calls(planning, plan.id)
        assert set(codes) <= {grpc.StatusCode.OK}, (write, codes)
    assert accepted and refused  # the generator makes both kinds


async def test_a_dependency_on_a_summary_whose_parents_loop_fails_precondition(
    server, plans, planning
):
    """Parents that loop (stored before parents were checked) place no work, so a plan
    with one still plans; a dependency on such a summary cannot be kept: it is named."""
    plan_id = await new_plan(plans)
    specs = [("x", "y", ()), ("y", "x", ()), ("w", "x", ()), ("z", "", ())]
    await server.store.write(
        lambda tx: tx.insert_tasks([stored(plan_id, t, p, d) for t, p, d in specs])
    )
    assert set(await planning_calls(planning, plan_id)) == {grpc.StatusCode.OK}
    await server.store.write(lambda tx: tx.update_task(stored(plan_id, "z", "", ("x",))))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await planning.AnalyzePlan(ppb.AnalyzePlanRequest(plan_id=plan_id))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = details_of(e.value)["ErrorInfo"]
    assert info.reason == "SUBTASK_CYCLE"
    assert dict(info.metadata) == {"cycle": "x -> y -> x", "task_id": "z", "depends_on": "x"}
    assert set(await planning_calls(planning, plan_id)) == {grpc.StatusCode.FAILED_PRECONDITION}
    await update(plans, Plan(plan_id, {"z": "z", "w": "w"}), "z", ["w"])  # a leaf: fine
    assert set(await planning_calls(planning, plan_id)) == {grpc.StatusCode.OK}
