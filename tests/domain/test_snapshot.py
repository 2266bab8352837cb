"""How stored tasks become the planning algorithms' input (`build_snapshot`)."""

from __future__ import annotations

from plansmith_server.domain.models import Plan, Task
from plansmith_server.domain.schedules import build_snapshot

PLAN = Plan(id="pln", project_id="", name="P")


def task(tid: str, parent: str = "", deps: tuple[str, ...] = ()) -> Task:
    return Task(id=tid, plan_id="pln", title=tid, parent_task_id=parent, dependencies=deps)


def test_dependencies_on_summaries_become_their_leaves_in_order() -> None:
    # root: a, b (b1, b2 (b2x, b2y)), c. Summaries (root, b, b2) carry no work of their own.
    tasks = [
        task("root"),
        task("a", "root"),
        task("b", "root"),
        task("b1", "b"),
        task("b2", "b"),
        task("b2x", "b2"),
        task("b2y", "b2"),
        task("c", "root"),
        task("after_root", deps=("root",)),
        task("after_b", deps=("b", "a", "b1")),
        task("after_leaf", deps=("c",)),
        task("orphan", "gone"),  # its parent was deleted: a task like any other
    ]
    snap = build_snapshot(PLAN, tasks)
    deps = {t.id: t.dependencies for t in snap.work}
    assert set(deps) == {
        "a",
        "b1",
        "b2x",
        "b2y",
        "c",
        "after_root",
        "after_b",
        "after_leaf",
        "orphan",
    }
    assert deps["after_root"] == ("a", "b1", "b2x", "b2y", "c")
    assert deps["after_b"] == ("b1", "b2x", "b2y", "a")  # each once, in first-seen order
    assert deps["after_leaf"] == ("c",)


def test_parents_that_loop_do_not_hang_or_crash() -> None:
    # Only stored data from before parents were checked can hold such a loop.
    tasks = [task("x", "y"), task("y", "x"), task("z", deps=("x",))]
    snap = build_snapshot(PLAN, tasks)
    assert [t.id for t in snap.work] == ["z"]
    assert snap.work[0].dependencies == ("x",)


def test_a_chain_far_deeper_than_the_recursion_limit() -> None:
    n = 20_000
    tasks = [task(f"n{i}", f"n{i - 1}" if i else "") for i in range(n)]
    tasks += [task(f"w{i}", deps=(f"n{i}",)) for i in range(0, n, 7)]
    snap = build_snapshot(PLAN, tasks)
    leaf = f"n{n - 1}"
    assert all(t.dependencies == (leaf,) for t in snap.work if t.id.startswith("w"))
