"""Error paths of the scheduling package: conflicting fixed starts (`_check_fixed`, reached
through `compile_problem` and every solver), plan tasks that must not become conflicting
fixed starts, and malformed PSPLIB files (`parse_sm`)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from plansmith_server.scheduling import (
    Activity,
    HeuristicScheduler,
    InfeasibleProblemError,
    InvalidProblemError,
    PlanTask,
    Resource,
    SchedulingProblem,
    TaskStatus,
    current_plan_problem,
    parse_sm,
    problem_from_tasks,
    schedule_current_plan,
    validate_schedule,
)
from plansmith_server.scheduling.compiled import compile_problem
from plansmith_server.scheduling.cpsat import CpSatScheduler


def conflicts_of(*activities: Activity, **kw: object) -> tuple[str, ...]:
    """The conflicts `compile_problem` reports for a problem of `activities`."""
    with pytest.raises(InfeasibleProblemError) as err:
        compile_problem(SchedulingProblem(tuple(activities), **kw))  # type: ignore[arg-type]
    return err.value.conflicts


# ---- fixed starts: precedences ------------------------------------------------------


def test_fixed_activity_after_a_movable_predecessor_is_refused() -> None:
    got = conflicts_of(Activity("a", 2), Activity("b", 1, ("a",), fixed_start=5))
    assert got == ("fixed activity 'b' depends on unfixed 'a'",)


def test_fixed_activity_after_a_zero_duration_step_that_waits_for_work_is_refused() -> None:
    # `z` takes no time but follows movable work, so it can end late as well.
    got = conflicts_of(
        Activity("a", 2),
        Activity("z", 0, ("a",)),
        Activity("b", 1, ("z",), fixed_start=5),
    )
    assert got == ("fixed activity 'b' depends on unfixed 'z'",)


def test_fixed_activity_after_zero_duration_unfixed_steps_only_is_accepted() -> None:
    cp = compile_problem(
        SchedulingProblem((Activity("z", 0), Activity("b", 1, ("z",), fixed_start=0)))
    )
    assert cp.fixed[cp.index["b"]] == 0


@pytest.mark.parametrize("through_zero_step", [False, True])
def test_fixed_activity_starting_before_its_fixed_predecessor_ends_is_refused(
    through_zero_step: bool,
) -> None:
    acts = [Activity("a", 3, fixed_start=0)]
    if through_zero_step:
        acts.append(Activity("z", 0, ("a",)))
    acts.append(Activity("b", 1, ("z" if through_zero_step else "a",), fixed_start=2))
    assert conflicts_of(*acts) == ("fixed activity 'b' starts before its predecessors end",)
    # Starting right when the predecessor ends is fine.
    acts[-1] = Activity("b", 1, acts[-1].predecessors, fixed_start=3)
    compile_problem(SchedulingProblem(tuple(acts)))


def test_negative_fixed_start_is_refused() -> None:
    got = conflicts_of(Activity("a", 1, fixed_start=-1), Activity("b", 1, fixed_start=0))
    assert got == ("'a' has a negative fixed start",)


@pytest.mark.parametrize("start", [math.nan, math.inf, -math.inf])
def test_non_finite_fixed_start_is_invalid_input(start: float) -> None:
    with pytest.raises(InvalidProblemError, match="'a' has invalid fixed start"):
        compile_problem(SchedulingProblem((Activity("a", 1, fixed_start=start),)))


# ---- fixed starts: agents and resources ---------------------------------------------


def test_fixed_activities_overlapping_on_their_only_agent_are_all_reported() -> None:
    # `a` covers both `b` and `c`; `b` and `c` do not meet; `d` starts as `a` ends.
    got = conflicts_of(
        Activity("a", 10, pinned_agent="x", fixed_start=0),
        Activity("b", 1, pinned_agent="x", fixed_start=2),
        Activity("c", 1, eligible_agents=frozenset({"x"}), fixed_start=5),
        Activity("d", 1, pinned_agent="x", fixed_start=10),
        Activity("e", 4, pinned_agent="y", fixed_start=0),
        agents=("x", "y"),
    )
    assert sorted(got) == [
        "fixed activities 'a' and 'b' overlap on agent 'x'",
        "fixed activities 'a' and 'c' overlap on agent 'x'",
    ]


def test_fixed_activities_needing_more_than_a_resource_holds_are_refused() -> None:
    got = conflicts_of(
        Activity("a", 2, demands={"r": 1}, fixed_start=0),
        Activity("b", 2, demands={"r": 2}, fixed_start=1),
        Activity("c", 2, demands={"r": 2}, fixed_start=3),  # after `b`: a->b handover
        resources=(Resource("r", 2),),
        time_resolution=1,
    )
    assert got == ("fixed activities 'a', 'b' need 3 of 'r' at hour 1, capacity is 2",)
    # Starting together: one report naming them all, once all have started.
    got = conflicts_of(
        *(Activity(n, 1, demands={"r": 1}, fixed_start=0) for n in "abc"),
        resources=(Resource("r", 1),),
    )
    assert got == ("fixed activities 'a', 'b', 'c' need 3 of 'r' at hour 0, capacity is 1",)


def test_fixed_activities_within_capacity_back_to_back_are_accepted() -> None:
    compile_problem(
        SchedulingProblem(
            (
                Activity("a", 2, demands={"r": 2}, fixed_start=0),
                Activity("b", 2, demands={"r": 2}, fixed_start=2),
                Activity("c", 2, demands={"r": 1}, fixed_start=5),
                Activity("d", 2, demands={"r": 1}, fixed_start=5),
            ),
            resources=(Resource("r", 2),),
        )
    )


def test_more_fixed_activities_at_once_than_agents_able_to_do_them_are_refused() -> None:
    # `a` can only go to x and `b` only to x or y, so when `c` starts both are taken;
    # z is free, but none of them can use it.
    got = conflicts_of(
        Activity("a", 2, eligible_agents=frozenset({"x"}), fixed_start=0),
        Activity("b", 2, eligible_agents=frozenset({"x", "y"}), fixed_start=0),
        Activity("c", 2, eligible_agents=frozenset({"x", "y"}), fixed_start=1),
        Activity("d", 2, eligible_agents=frozenset({"z"}), fixed_start=1),
        agents=("x", "y", "z"),
    )
    assert got == (
        "fixed activities 'a', 'b', 'c' run at once at hour 1 but only 2 agents can do "
        "them ('x', 'y')",
    )


def test_fixed_activities_that_fit_the_agents_after_a_swap_are_accepted() -> None:
    # `a` first takes x (its first option); `b` needs x, so `a` must move to y; it has
    # started by then, so the choice for the whole run comes from the exact model.
    cp = compile_problem(
        SchedulingProblem(
            (
                Activity("a", 2, requires_agent=True, fixed_start=0),
                Activity("b", 2, eligible_agents=frozenset({"x"}), fixed_start=1),
            ),
            agents=("x", "y"),
        )
    )
    assert [cp.agent_ids[k] for k in cp.fixed_agents] == ["y", "x"]


@pytest.mark.parametrize("solver", ["cpsat", "heuristic"])
@pytest.mark.parametrize("case", ["resource", "agents"])
def test_solvers_refuse_fixed_starts_they_cannot_keep(solver: str, case: str) -> None:
    """Both solvers used to return these schedules as OPTIMAL, breaking the capacity or
    giving one agent two tasks at once."""
    if case == "resource":
        problem = SchedulingProblem(
            (
                Activity("a", 2, demands={"r": 1}, fixed_start=0),
                Activity("b", 2, demands={"r": 1}, fixed_start=1),
            ),
            resources=(Resource("r", 1),),
        )
    else:
        problem = SchedulingProblem(
            tuple(Activity(n, 2, requires_agent=True, fixed_start=0) for n in "abc"),
            agents=("x", "y"),
        )
    scheduler = (
        CpSatScheduler(num_workers=1)
        if solver == "cpsat"
        else HeuristicScheduler(max_iterations=50)
    )
    with pytest.raises(InfeasibleProblemError):
        scheduler.solve(problem, time_limit_s=0.5, seed=0)


# ---- plan tasks never become conflicting fixed starts -------------------------------


def done_on_open_work() -> list[PlanTask]:
    # `spec` is DONE but waits (through its dependency) for `proto`, still open; `build`
    # is in progress after `spec`. Before the fix `build` was fixed at 0 after movable
    # work: InfeasibleProblemError (an INTERNAL error from OptimizePlan and AnalyzePlan).
    return [
        PlanTask("proto", estimate_hours=4, assigned_agent="ann"),
        PlanTask("spec", TaskStatus.DONE, ("proto",), estimate_hours=1),
        PlanTask(
            "build", TaskStatus.IN_PROGRESS, ("spec",), estimate_hours=3, assigned_agent="bob"
        ),
        PlanTask("other", TaskStatus.IN_PROGRESS, estimate_hours=2, assigned_agent="cat"),
    ]


def test_in_progress_task_after_done_task_waiting_on_open_work_is_pinned_not_fixed() -> None:
    tasks = done_on_open_work()
    for problem in (
        problem_from_tasks(tasks, ("ann", "bob", "cat")),
        current_plan_problem(tasks, ("ann", "bob", "cat")),
    ):
        acts = {a.id: a for a in problem.activities}
        assert acts["build"].fixed_start is None and acts["build"].pinned_agent == "bob"
        assert acts["other"].fixed_start == 0  # nothing before it: still starts now
        compile_problem(problem)
    result = schedule_current_plan(tasks, ("ann", "bob", "cat"))
    assert validate_schedule(current_plan_problem(tasks, ("ann", "bob", "cat")), result) == []
    at = result.by_id()
    assert at["build"].start == pytest.approx(at["proto"].end) == pytest.approx(4)


# ---- PSPLIB parser ------------------------------------------------------------------


@pytest.fixture
def sm_text(psplib_dir: Path) -> str:
    return (psplib_dir / "j30" / "j301_1.sm").read_text(encoding="latin-1")


def edit(text: str, old: str, new: str) -> str:
    """`text` with the one occurrence of `old` replaced (fails loudly if the data moved)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def cut_after(text: str, marker: str, keep: int = 0) -> str:
    """`text` up to the line holding `marker`, plus `keep` more lines: a truncated file."""
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if marker in line)
    return "\n".join(lines[: i + 1 + keep])


REQ_2 = "  2      1     8       4    0    0    0"
PREC_1 = "   1        1          3           2   3   4"
PREC_5 = "   5        1          1          20"
CAPS = "   12   13    4   12"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: "", "section 'PRECEDENCE RELATIONS' not found"),
        (
            lambda t: edit(t, "PRECEDENCE RELATIONS:", "PRECEDENCES:"),
            "'PRECEDENCE RELATIONS' not found",
        ),
        (lambda t: edit(t, "REQUESTS/DURATIONS:", "REQUESTS:"), "'REQUESTS/DURATIONS' not found"),
        (lambda t: cut_after(t, "  17        1"), "'REQUESTS/DURATIONS' not found"),
        (lambda t: cut_after(t, " 20      1"), "'RESOURCEAVAILABILITIES' not found"),
        (lambda t: cut_after(t, "RESOURCEAVAILABILITIES", 1), "'RESOURCEAVAILABILITIES' is trunc"),
        (lambda t: cut_after(t, CAPS)[:-1], "'RESOURCEAVAILABILITIES' is truncated"),
        (lambda t: edit(t, REQ_2, REQ_2.replace(" 8 ", " x ")), r"line 56: expected whole numb"),
        (lambda t: edit(t, REQ_2, REQ_2.replace(" 8 ", " 8.5")), r"line 56: expected whole numb"),
        (lambda t: edit(t, REQ_2, REQ_2.replace(" 8 ", "1_0")), r"line 56: expected whole numb"),
        (lambda t: edit(t, REQ_2, REQ_2.replace(" 8 ", " +8")), r"line 56: expected whole numb"),
        (lambda t: edit(t, REQ_2, REQ_2.replace(" 8 ", " \u0668 ")), r"line 56: expected whole n"),
        (lambda t: edit(t, REQ_2, REQ_2.replace(" 8 ", "-8 ")), "line 56: negative duration"),
        (lambda t: edit(t, REQ_2, REQ_2[:-1] + "-1"), "line 56: negative duration or request"),
        (lambda t: edit(t, CAPS, CAPS.replace("13", "1x")), "line 90: expected whole numbers"),
        (lambda t: edit(t, CAPS, CAPS.replace(" 13", "-13")), "availabilities are negative"),
        (lambda t: edit(t, CAPS, CAPS[:-5]), r"line 55: expected job, mode, duration and 3 re"),
        (lambda t: edit(t, REQ_2, REQ_2[:-5]), "line 56: expected job, mode, duration and 4 re"),
        (lambda t: edit(t, REQ_2, REQ_2 + "  7"), "line 56: expected job, mode, duration and 4"),
        (lambda t: edit(t, REQ_2, "  2"), "line 56: expected job, mode, duration and 4"),
        (lambda t: edit(t, PREC_1, PREC_1[:-4]), "line 19: expected job, modes, successor count"),
        (lambda t: edit(t, PREC_1, PREC_1 + "   5"), "line 19: expected job, modes, successor"),
        (lambda t: edit(t, PREC_5, "   5"), "line 23: expected job, modes, successor count"),
        (lambda t: edit(t, PREC_5, PREC_5.replace(" 1 ", " 2 ", 1)), "job 5 has 2 modes"),
        (lambda t: edit(t, REQ_2, REQ_2.replace(" 1 ", " 2 ", 1)), "job 2 has mode 2"),
        (lambda t: edit(t, PREC_5, PREC_5.replace("20", "99")), r"job 5 has unknown succ.*\[99\]"),
        (lambda t: edit(t, PREC_5, PREC_5.replace(" 5 ", " 4 ", 1)), "job 4 has two precedence"),
        (lambda t: edit(t, REQ_2, REQ_2.replace(" 2 ", " 3 ", 1)), "job 3 has two request rows"),
        (lambda t: edit(t, REQ_2 + "\n", ""), r"jobs \[2\] are missing from the precedence or"),
        (lambda t: edit(t, "):  32", "):  33"), "declares 33 jobs but lists 32"),
        (lambda t: edit(t, "):  32", "):  many"), "line 6: expected a whole number after ':'"),
    ],
    ids=[
        "empty",
        "no-precedence-section",
        "no-requests-section",
        "truncated-in-precedences",
        "truncated-in-requests",
        "truncated-before-capacities",
        "truncated-in-capacities",
        "letter-for-duration",
        "fraction-for-duration",
        "underscored-duration",
        "plus-signed-duration",
        "arabic-indic-digit",
        "negative-duration",
        "negative-request",
        "letter-in-capacity",
        "negative-capacity",
        "capacity-missing",
        "request-missing",
        "request-extra",
        "request-row-cut",
        "successor-missing",
        "successor-extra",
        "precedence-row-cut",
        "multi-mode-precedence",
        "multi-mode-request",
        "unknown-successor",
        "duplicate-precedence-row",
        "duplicate-request-row",
        "job-without-request-row",
        "job-count-mismatch",
        "job-count-not-a-number",
    ],
)
def test_malformed_psplib_text_is_refused_naming_the_problem(sm_text, make, message) -> None:
    text = make(sm_text)
    with pytest.raises(InvalidProblemError, match=message):
        parse_sm(text, name="bad")


def test_psplib_parse_ignores_blank_lines_and_trailing_spaces(sm_text: str) -> None:
    # The strict parser must still read real files laid out a little differently.
    loose = "\n".join(line + "  " if line.strip() else line for line in sm_text.splitlines())
    loose = edit(loose, REQ_2 + "  ", "\n" + REQ_2 + "\n")
    assert parse_sm(loose) == parse_sm(sm_text)


def _solver(name: str):
    return (
        CpSatScheduler(num_workers=1) if name == "cpsat" else HeuristicScheduler(max_iterations=50)
    )


@pytest.mark.parametrize("solver", ["cpsat", "heuristic"])
def test_fixed_activities_get_agents_that_fit_them_all(solver: str) -> None:
    """Choosing greedily, the first fixed activity took x and the second, which only x can
    do, was put on x too: an invalid schedule reported OPTIMAL. The agents of fixed
    activities are now chosen for all of them together."""
    problem = SchedulingProblem(
        (
            Activity("a", 1, eligible_agents=frozenset({"x", "y"}), fixed_start=0),
            Activity("b", 1, eligible_agents=frozenset({"x"}), fixed_start=0),
            Activity("c", 1, predecessors=("a", "b"), requires_agent=True),
        ),
        agents=("x", "y"),
    )
    result = _solver(solver).solve(problem, time_limit_s=2)
    assert validate_schedule(problem, result) == []
    agent = {a.activity_id: a.agent for a in result.activities}
    assert (agent["a"], agent["b"]) == ("y", "x")


@pytest.mark.parametrize("solver", ["cpsat", "heuristic"])
def test_fixed_activities_that_would_change_agent_midway_are_refused(solver: str) -> None:
    """At every instant the three fit the two agents, but `a` would have to move from y to
    x at hour 1: no agent can keep it for its whole run."""
    problem = SchedulingProblem(
        (
            Activity("a", 2, eligible_agents=frozenset({"x", "y"}), fixed_start=0),
            Activity("b", 1, eligible_agents=frozenset({"x"}), fixed_start=0),
            Activity("c", 1, eligible_agents=frozenset({"y"}), fixed_start=1),
        ),
        agents=("x", "y"),
    )
    with pytest.raises(InfeasibleProblemError, match="cannot each keep one agent"):
        _solver(solver).solve(problem, time_limit_s=2)


def test_many_fixed_activities_at_once_are_matched_without_recursion() -> None:
    """The matching used to recurse once per activity moved: 1,100 fixed activities
    sharing every agent raised RecursionError."""
    n = 1200
    agents = tuple(f"g{i}" for i in range(n))
    acts = tuple(Activity(f"a{i}", 1, requires_agent=True, fixed_start=0) for i in range(n))
    cp = compile_problem(SchedulingProblem(acts, agents=agents))
    assert sorted(cp.fixed_agents) == list(range(n))  # one each


@pytest.mark.parametrize("field", ["duration", "fixed_start"])
def test_times_too_large_for_the_solvers_are_invalid_input(field: str) -> None:
    """1e307 hours is finite but overflows the integer units (OverflowError escaped)."""
    kwargs = {"duration": 1.0, field: 1e307}
    problem = SchedulingProblem((Activity("a", **kwargs),))
    with pytest.raises(InvalidProblemError, match="out of range"):
        compile_problem(problem)
