"""The replanner's ladder: first-match rules, budgets, backoff, rungs that do not apply."""

from __future__ import annotations

import pytest

from plansmith_server.domain.failures import FailureCategory as C
from plansmith_server.domain.failures import TaskFailure
from plansmith_server.domain.models import Agent, Task
from plansmith_server.domain.policy import RecoveryRule, ReplanDecision, ReplanPolicy
from plansmith_server.domain.recovery import (
    CONFIDENCE,
    DEFAULT_RULES,
    History,
    Options,
    backoff_s,
    decide,
    reassign_candidates,
    recovery_drafts,
)

D = ReplanDecision
TASK = Task("t1", "p1", "Load orders", estimated_hours=8, assigned_to="ann", dependencies=("t0",))
OPTS = Options(candidates=("bob",))


def fail(category: C, message: str = "boom", retry_after: float = 0.0) -> TaskFailure:
    return TaskFailure(category, message, retry_after)


@pytest.mark.parametrize(
    ("category", "first"),
    [
        (C.TRANSIENT, D.RETRY),
        (C.RESOURCE_EXHAUSTION, D.RETRY),
        (C.DATA_QUALITY, D.INSERT_RECOVERY_TASKS),
        (C.SCHEMA_MISMATCH, D.INSERT_RECOVERY_TASKS),
        (C.DEPENDENCY_MISSING, D.INSERT_RECOVERY_TASKS),
        (C.PERMISSION, D.REASSIGN),
        (C.CAPABILITY, D.REASSIGN),
        (C.UNKNOWN, D.RETRY),
    ],
)
def test_each_category_starts_on_its_documented_rung(category: C, first: D) -> None:
    d = decide(None, TASK, fail(category), History(), OPTS)
    assert d.decision == first
    assert d.confidence == CONFIDENCE[first]
    assert category.name in d.reason


def test_every_category_has_a_default_rule_ending_in_escalation() -> None:
    covered = {r.category for r in DEFAULT_RULES}
    assert covered == set(C) - {C.UNSPECIFIED}
    assert all(r.ladder[-1] == D.ESCALATE for r in DEFAULT_RULES)


def test_retry_budget_runs_out_into_the_next_rung() -> None:
    rungs = []
    history = History()
    for _ in range(5):
        d = decide(None, TASK, fail(C.TRANSIENT), history, OPTS)
        rungs.append(d.decision)
        if d.decision == D.RETRY:
            history = History(history.retries + 1, history.used)
        else:
            history = History(history.retries, history.used | {d.decision})
    assert rungs == [D.RETRY, D.RETRY, D.RETRY, D.REASSIGN, D.ESCALATE]


def test_backoff_doubles_and_honours_retry_after() -> None:
    rule = RecoveryRule(C.TRANSIENT, ladder=(D.RETRY,), retry_budget=5, retry_backoff_s=30)
    assert [backoff_s(rule, n, 0) for n in range(3)] == [30, 60, 120]
    assert backoff_s(rule, 0, 600) == 600  # the executor knows better
    assert backoff_s(rule, 30, 0) == 86_400  # at most a day
    d = decide(None, TASK, fail(C.TRANSIENT, retry_after=90), History(retries=1), OPTS)
    assert d.decision == D.RETRY and d.not_before_s == 90


def test_reassign_without_candidates_climbs_on() -> None:
    d = decide(None, TASK, fail(C.PERMISSION), History(), Options())
    assert d.decision == D.ESCALATE
    assert "no other available agent" in d.reason
    d = decide(None, TASK, fail(C.CAPABILITY), History(), Options())
    assert d.decision == D.REDECOMPOSE
    d = decide(None, TASK, fail(C.CAPABILITY), History(), Options(decomposable=False))
    assert d.decision == D.ESCALATE


def test_each_rung_other_than_retry_is_climbed_once() -> None:
    used = History(used=frozenset({D.INSERT_RECOVERY_TASKS}))
    assert decide(None, TASK, fail(C.DATA_QUALITY), used, OPTS).decision == D.RETRY
    spent = History(retries=1, used=frozenset({D.INSERT_RECOVERY_TASKS}))
    assert decide(None, TASK, fail(C.DATA_QUALITY), spent, OPTS).decision == D.ESCALATE


def test_a_plans_own_rules_match_first_by_category_method_and_labels() -> None:
    policy = ReplanPolicy(
        rules=(
            RecoveryRule(C.TRANSIENT, labels=("tier=gold",), ladder=(D.ESCALATE,)),
            RecoveryRule(method="library:data", ladder=(D.REASSIGN, D.ESCALATE)),
        )
    )
    gold = Task("t2", "p1", "x", metadata={"tier": "gold"})
    assert decide(policy, gold, fail(C.TRANSIENT), History(), OPTS).decision == D.ESCALATE
    # The label rule does not match other tasks; nor the method rule: the defaults decide.
    assert decide(policy, TASK, fail(C.TRANSIENT), History(), OPTS).decision == D.RETRY
    lib = Task("t3", "p1", "x", metadata={"plansmith.source": "library:data_ingest"})
    d = decide(policy, lib, fail(C.TRANSIENT), History(), OPTS)
    assert d.decision == D.REASSIGN and "plan rule 1" in d.reason


def test_proposals_are_decisions_below_the_threshold_and_escalation_never_waits() -> None:
    redecompose = decide(None, TASK, fail(C.CAPABILITY), History(), Options())
    assert redecompose.proposed(None)  # 0.3 < 0.6
    assert not redecompose.proposed(ReplanPolicy(confidence_threshold=0.25))
    retry = decide(None, TASK, fail(C.TRANSIENT), History(), OPTS)
    assert not retry.proposed(None)
    assert retry.proposed(ReplanPolicy(confidence_threshold=0.99))
    escalate = decide(None, TASK, fail(C.PERMISSION), History(), Options())
    assert not escalate.proposed(ReplanPolicy(confidence_threshold=1.0))


def test_candidates_hold_the_capabilities_and_are_available() -> None:
    task = Task("t", "p", "x", required_capabilities=("PostgreSQL",), assigned_to="ann")
    agents = [
        Agent("ann", capabilities=("PostgreSQL",)),
        Agent("bob", capabilities=("postgres",)),
        Agent("cy", capabilities=("React",)),
        Agent("dee", capabilities=("PostgreSQL",)),
    ]
    assert reassign_candidates(task, agents, unavailable={"dee"}, avoid={"ann"}) == ("bob",)


def test_recovery_drafts_take_over_the_failed_tasks_dependencies_in_a_chain() -> None:
    drafts = recovery_drafts(
        TASK,
        decide(None, TASK, fail(C.DATA_QUALITY), History(), OPTS).recovery,
        fail(C.DATA_QUALITY, "dupes"),
    )
    assert [d.id for d in drafts] == ["r0", "r1"]
    assert drafts[0].dependencies == ("t0",) and drafts[1].dependencies == ("r0",)
    assert "Validate" in drafts[0].title and "dupes" in drafts[0].description
    assert all(d.estimated_hours == 2.0 for d in drafts)
