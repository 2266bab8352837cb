"""EstimateTaskDuration: history beats the library baseline on synthetic data."""

from __future__ import annotations

import pytest

from plansmith_server.planning import CompletedTask, PlanningInputError, estimate_task_duration
from plansmith_server.planning.synthetic import AGENT_PACE, synthetic_history, synthetic_queries

HISTORY = synthetic_history()
QUERIES = synthetic_queries(60)


def _mape(predict) -> float:
    errors = [abs(predict(q) - q.true_hours) / q.true_hours for q in QUERIES]
    return sum(errors) / len(errors)


def test_history_beats_library_baseline() -> None:
    history = _mape(
        lambda q: (
            estimate_task_duration(
                q.description, title=q.title, agent_id=q.agent, history=HISTORY
            ).estimate_hours
        )
    )
    no_pace = _mape(
        lambda q: (
            estimate_task_duration(q.description, title=q.title, history=HISTORY).estimate_hours
        )
    )
    library = _mape(
        lambda q: (
            estimate_task_duration(q.description, title=q.title, agent_id=q.agent).estimate_hours
        )
    )
    assert history < 0.35
    assert history < no_pace < library


def test_basis_and_interval() -> None:
    q = QUERIES[0]
    result = estimate_task_duration(q.description, title=q.title, agent_id=q.agent, history=HISTORY)
    assert result.basis.method == "history+agent_pace"
    assert result.basis.similar_task_ids and all(
        i.startswith("h") for i in result.basis.similar_task_ids
    )
    assert result.low_hours <= result.estimate_hours <= result.high_hours
    assert 0 < result.confidence <= 1
    assert result.basis.agent_pace == pytest.approx(AGENT_PACE[q.agent], rel=0.2)


def test_agent_pace_is_shrunk_with_few_tasks() -> None:
    history = [
        CompletedTask("a", "Write unit tests for orders", "", 5, 5, "x"),
        CompletedTask("b", "Write unit tests for users", "", 5, 5, "x"),
        CompletedTask("c", "Write unit tests for search", "", 5, 10, "slow"),
    ]
    result = estimate_task_duration(
        "Write unit tests for billing", agent_id="slow", history=history
    )
    # One task at 2x: shrunk well toward the team's pace, not all the way to 2.
    assert 1.0 < result.basis.agent_pace < 1.5
    assert result.basis.agent_sample_size == 1


def test_library_and_default_fallbacks() -> None:
    lib = estimate_task_duration("Configure Kubernetes autoscaling with HPA")
    assert lib.basis.method == "library" and lib.basis.library_task == "k8s_autoscaling"
    assert lib.low_hours <= lib.estimate_hours <= lib.high_hours
    paced = estimate_task_duration(
        "Configure Kubernetes autoscaling with HPA", agent_id="carol", history=HISTORY
    )
    assert paced.basis.method in ("library+agent_pace", "history+agent_pace")
    default = estimate_task_duration("Organize the team picnic in the park")
    assert default.basis.method == "default"
    assert default.estimate_hours == 8.0


def test_bad_history_entries_are_ignored_and_input_checked() -> None:
    history = [CompletedTask("z", "Write unit tests for orders", actual_hours=0)]
    assert (
        estimate_task_duration("Write unit tests for users", history=history).basis.method
        != "history"
    )
    with pytest.raises(PlanningInputError):
        estimate_task_duration("")
    with pytest.raises(PlanningInputError):
        estimate_task_duration("do the thing")


def test_deterministic() -> None:
    q = QUERIES[3]
    a = estimate_task_duration(q.description, title=q.title, agent_id=q.agent, history=HISTORY)
    assert a == estimate_task_duration(
        q.description, title=q.title, agent_id=q.agent, history=HISTORY
    )
