"""The plan-quality benchmark's data and rubric (bench/plan_quality.py).

These tests check that the labelled briefs are well-formed and that the scoring does what
docs/planning.md says, on hand-built plans. They never assert the planner's quality: that
is what the benchmark reports.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "plan_quality.py"
_spec = importlib.util.spec_from_file_location("plan_quality", _PATH)
assert _spec and _spec.loader
pq = importlib.util.module_from_spec(_spec)
sys.modules["plan_quality"] = pq  # dataclasses resolve their module by name
_spec.loader.exec_module(pq)

BENCH = pq.load_benchmark()
T = pq.TaskView


def _brief(**labels: object) -> object:
    return pq.Brief(
        id="b",
        half="tune",
        domain="d",
        known=False,
        expect=str(labels.pop("expect", "right")),
        origin="",
        name="Black Friday email campaign",
        description="Plan our Black Friday email campaign. Send it to past customers.",
        requirements=("Three emails to 85,000 subscribers",),
        constraints=(),
        context={},
        agents=(),
        labels=pq.Labels(**labels),  # type: ignore[arg-type]
    )


LABELS = {
    "must": ("(segment|audience)", "(copy|template)", "(schedule|send)"),
    "forbid": (r"\bcms\b", "site ?map"),
    "min_tasks": 4,
    "order": (("(copy|template)", "(schedule|send)"),),
    "specifics": ("klaviyo",),
}
GOOD = (
    T("t1", "Segment the audience by past purchases"),
    T("t2", "Write the copy and build the Klaviyo templates", dependencies=("t1",)),
    T("t3", "Test sends to the seed list", dependencies=("t2",)),
    T("t4", "Schedule the three sends", dependencies=("t3",)),
)


# -- the data file ------------------------------------------------------------------------


def test_sixty_briefs_thirty_per_half_unique_ids() -> None:
    briefs = BENCH.briefs
    assert len(briefs) == 60
    assert Counter(b.half for b in briefs) == {"tune": 30, "holdout": 30}
    assert len({b.id for b in briefs}) == 60
    # The file lists the tune half first: "the first 30" are the tune half.
    assert [b.half for b in briefs] == ["tune"] * 30 + ["holdout"] * 30


def test_every_domain_has_two_briefs_one_per_half() -> None:
    by_domain: dict[str, list[str]] = {}
    for b in BENCH.briefs:
        by_domain.setdefault(b.domain, []).append(b.half)
    assert len(by_domain) == 30
    assert all(sorted(h) == ["holdout", "tune"] for h in by_domain.values()), by_domain
    known = {b.domain for b in BENCH.briefs if b.known}
    assert len(known) == 13  # the library's domains when the benchmark was written


def test_labels_are_well_formed() -> None:
    for b in BENCH.briefs:
        lab = b.labels
        assert b.expect in ("right", "honest"), b.id
        assert lab.min_tasks >= 4, b.id
        assert b.name and b.description, b.id
        patterns = [
            *lab.must,
            *lab.forbid,
            *lab.specifics,
            *(p for pair in lab.order for p in pair),
        ]
        for p in patterns:
            re.compile(p)
        assert all(len(pair) == 2 for pair in lab.order), b.id
        if b.expect == "right":
            assert len(lab.must) >= 4 and lab.forbid, b.id
        else:
            assert lab.forbid and not lab.must, b.id
    assert sum(b.origin == "issue-19" for b in BENCH.briefs) == 5
    assert any(b.expect == "honest" for b in BENCH.briefs if b.half == "tune")
    assert any(b.expect == "honest" for b in BENCH.briefs if b.half == "holdout")
    assert len(BENCH.timing_brief.requirements) == 10


def _generic_chain(brief: object) -> object:
    """What a planner that knows nothing produces: design / build / verify per item."""
    tasks = []
    items = [*brief.requirements] or [brief.description]  # type: ignore[attr-defined]
    for i, item in enumerate(items):
        a, b, c = f"g{i}a", f"g{i}b", f"g{i}c"
        tasks += [
            T(a, f"Design: {item}", f"Clarify and design the approach for: {item}"),
            T(b, f"Build: {item}", f"Implement: {item}", (a,)),
            T(c, f"Verify: {item}", f"Test and demonstrate: {item}", (b,)),
        ]
    return pq.PlanView(tasks=tuple(tasks), confidence=0.5)


def test_no_brief_is_right_with_a_generic_chain_or_its_own_words() -> None:
    """The labels are not so lax that echoing the brief passes them."""
    for b in BENCH.briefs:
        assert pq.score_plan(b, _generic_chain(b)).verdict == "wrong", b.id
        echo = tuple(
            T(f"e{i}", text, text, (f"e{i - 1}",) if i else ())
            for i, text in enumerate([b.name, b.description, *b.requirements, *b.constraints])
        )
        assert pq.score_plan(b, pq.PlanView(tasks=echo)).verdict == "wrong", b.id


DEV = pq.load_benchmark(_PATH.parent / "plan_quality" / "dev_briefs.toml")


def test_dev_set_one_fresh_brief_per_domain_all_tunable() -> None:
    """dev_briefs.toml: 30 new briefs, every benchmark domain once, all in `tune`."""
    briefs = DEV.briefs
    assert len(briefs) == 30
    assert all(b.half == "tune" for b in briefs)
    assert len({b.id for b in briefs}) == 30
    assert sorted(b.domain for b in briefs) == sorted({b.domain for b in BENCH.briefs})
    assert sum(b.expect == "honest" for b in briefs) == 2
    assert {b.known for b in briefs if b.expect == "right"} == {True, False}
    main_ids = {b.id for b in BENCH.briefs}
    main_texts = {(b.name, b.description) for b in BENCH.briefs}
    for b in briefs:
        assert b.id not in main_ids and (b.name, b.description) not in main_texts, b.id
    assert len(DEV.timing_brief.requirements) == 10


def test_dev_set_labels_are_well_formed_and_not_lax() -> None:
    for b in DEV.briefs:
        lab = b.labels
        assert b.expect in ("right", "honest"), b.id
        assert lab.min_tasks >= 4, b.id
        assert 2 <= len(b.requirements) <= 6, b.id
        for p in [*lab.must, *lab.forbid, *lab.specifics, *(q for pr in lab.order for q in pr)]:
            re.compile(p)
        assert all(len(pair) == 2 for pair in lab.order), b.id
        if b.expect == "right":
            assert len(lab.must) >= 4 and lab.forbid and lab.order, b.id
            assert 1 <= len(lab.specifics) <= 2, b.id
        else:
            assert lab.forbid and not lab.must, b.id
        assert pq.score_plan(b, _generic_chain(b)).verdict == "wrong", b.id
        echo = tuple(
            T(f"e{i}", text, text, (f"e{i - 1}",) if i else ())
            for i, text in enumerate([b.name, b.description, *b.requirements, *b.constraints])
        )
        assert pq.score_plan(b, pq.PlanView(tasks=echo)).verdict == "wrong", b.id


# -- the rubric ---------------------------------------------------------------------------


def test_a_plan_that_satisfies_every_label_is_right() -> None:
    score = pq.score_plan(_brief(**LABELS), pq.PlanView(tasks=GOOD, confidence=0.8))
    assert score.verdict == "right" and score.failures == () and not score.confident


def test_a_word_of_another_domain_makes_it_wrong_and_is_named() -> None:
    tasks = (*GOOD, T("t5", "Publish the landing page in the CMS", dependencies=("t4",)))
    score = pq.score_plan(_brief(**LABELS), pq.PlanView(tasks=tasks, confidence=0.8))
    assert score.verdict == "wrong" and score.confident
    assert any(f.startswith(r"forbid: \bcms\b") and "t5" in f for f in score.failures)


def test_missing_work_too_few_tasks_and_missing_specifics_are_named() -> None:
    tasks = (T("t1", "Segment the audience"), T("t2", "Send it", dependencies=("t1",)))
    failures = pq.score_plan(_brief(**LABELS), pq.PlanView(tasks=tasks)).failures
    assert "min_tasks: 2 < 4" in failures
    assert "must: (copy|template)" in failures
    assert "specifics: klaviyo" in failures


def test_the_briefs_own_sentences_do_not_count() -> None:
    # "Send it to past customers" is the brief's sentence: it cannot satisfy "(schedule|send)".
    tasks = (
        *GOOD[:2],
        T("t3", "Proof the templates", dependencies=("t2",)),
        T("t4", "Send it to past customers", dependencies=("t3",)),
    )
    failures = pq.score_plan(_brief(**LABELS), pq.PlanView(tasks=tasks)).failures
    assert "must: (schedule|send)" in failures
    assert pq.score_plan(_brief(**LABELS), pq.PlanView(tasks=GOOD)).failures == ()


def test_honest_needs_the_warning_and_no_task_of_another_domain() -> None:
    brief = _brief(**{**LABELS, "must": ("(nothing planned matches this)",)})
    generic = (T("t1", "Clarify the goal"), T("t2", "Do the work", dependencies=("t1",)))
    flagged = pq.PlanView(tasks=generic, warnings=frozenset({pq.NOT_RECOGNIZED}), confidence=0.1)
    assert pq.score_plan(brief, flagged).verdict == "honest"
    unflagged = pq.PlanView(tasks=generic, confidence=0.1)
    score = pq.score_plan(brief, unflagged)
    assert score.verdict == "wrong" and score.confident
    betrays = pq.PlanView(tasks=(*generic, T("t3", "Draw the site map")), warnings=flagged.warnings)
    score = pq.score_plan(brief, betrays)
    assert score.verdict == "wrong" and not score.confident


def test_expect_honest_briefs_are_never_right() -> None:
    brief = _brief(expect="honest", forbid=("deploy",))
    plan = pq.PlanView(tasks=GOOD)
    assert pq.score_plan(brief, plan).verdict == "wrong"
    flagged = pq.PlanView(tasks=GOOD, warnings=frozenset({pq.NOT_RECOGNIZED}))
    assert pq.score_plan(brief, flagged).verdict == "honest"


def test_a_rejected_brief_is_wrong_but_not_confidently() -> None:
    score = pq.score_plan(_brief(**LABELS), pq.PlanView(tasks=(), error="too vague"))
    assert score.verdict == "wrong" and not score.confident
    assert score.failures == ("rejected: too vague",)


def test_ordering_pairs_follow_dependencies_transitively() -> None:
    texts = {"t1": "copy", "t2": "proof", "t3": "send", "t4": "send again", "t5": "copy v2"}
    chain = pq.PlanView(
        tasks=(
            T("t1", "copy"),
            T("t2", "proof", dependencies=("t1",)),
            T("t3", "send", dependencies=("t2",)),
            T("t4", "send again", dependencies=("t3",)),
            T("t5", "copy v2"),
        )
    )
    before = pq.ancestors(chain)
    assert before["t4"] == {"t1", "t2", "t3"}
    assert pq.order_holds("^copy$", "send", texts, before)  # t1 < t3, t4 through t2
    assert not pq.order_holds("copy v2", "send", texts, before)  # t5 is unrelated
    assert not pq.order_holds("send", "^copy", texts, before)  # wrong way round
    assert not pq.order_holds("copy", "nothing matches", texts, before)
    # One "send" not after the copy breaks the pair: every B must wait for the same A.
    loose = pq.PlanView(tasks=(*chain.tasks[:4], T("t6", "send early")))
    texts_loose = {**texts, "t6": "send early"}
    assert not pq.order_holds("^copy$", "send", texts_loose, pq.ancestors(loose))


def test_a_task_matching_both_sides_may_be_the_one_that_comes_first() -> None:
    # "Restore service" matches A; the postmortem mentions "time to restore" (A and B).
    tasks = (
        T("t1", "Restore service"),
        T("t2", "Postmortem", "time to restore", ("t1",)),
    )
    texts = {t.id: f"{t.title}\n{t.description}" for t in tasks}
    assert pq.order_holds("restore", "postmortem", texts, pq.ancestors(pq.PlanView(tasks=tasks)))


def test_summary_calibration_and_brier() -> None:
    scores = [
        pq.Score("a", "tune", "d", "right", False, 0.9, 5),
        pq.Score("b", "tune", "d", "honest", False, 0.2, 5),
        pq.Score("c", "tune", "d", "wrong", True, 0.6, 5, ("specifics: klaviyo",)),
    ]
    s = pq.summarize(scores)
    assert (s["right"], s["honest"], s["wrong"], s["confidently_wrong"]) == (1, 1, 1, 1)
    assert s["mean_confidence_right"] == pytest.approx(0.9)
    assert s["mean_confidence_rest"] == pytest.approx(0.4)
    assert s["right_but_for_specifics"] == 1
    assert s["brier"] == pytest.approx((0.1**2 + 0.2**2 + 0.6**2) / 3)
