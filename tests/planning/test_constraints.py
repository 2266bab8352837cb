"""Deadline, budget and mandate parsing; context inference."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from plansmith_server.planning import parse_deadline_hours
from plansmith_server.planning.constraints import (
    analyze_constraints,
    find_mandates,
    working_days_between,
)
from plansmith_server.planning.context import build_effective_context, infer_context

NOW = date(2026, 11, 2)  # a Monday


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("Deliver within 2 weeks", 80.0),
        ("must be done in 10 working days", 80.0),
        ("in 3 business days", 24.0),
        ("under 40 hours", 40.0),
        ("within a week", 40.0),
        ("ship in two sprints", 160.0),
        ("within 7 days", 40.0),  # calendar days from a Monday: 5 working days
        ("by 2026-11-13", 72.0),  # Tue..Fri + Mon..Fri = 9 working days
        ("before 13 November 2026", 72.0),
        ("due Nov 13, 2026", 72.0),
        ("Launch within 1 month", 173.36),
    ],
)
def test_deadlines(text: str, hours: float) -> None:
    found, _ = parse_deadline_hours(text, now=NOW)
    assert found == pytest.approx(hours, abs=0.01)


def test_deadline_config_and_datetime_now() -> None:
    found, _ = parse_deadline_hours(
        "within 2 weeks", now=datetime(2026, 11, 2, 15, 0), hours_per_day=6
    )
    assert found == 60.0
    found, _ = parse_deadline_hours("within 2 weeks", working_days_per_week=4)
    assert found == 64.0


def test_not_deadlines() -> None:
    assert parse_deadline_hours("Must use React", now=NOW)[0] is None
    assert parse_deadline_hours("Budget of 200 hours", now=NOW)[0] is None
    hours, why = parse_deadline_hours("by 2027-01-15")
    assert hours is None and "now" in why
    hours, why = parse_deadline_hours("by 2027-02-30", now=NOW)
    assert hours is None and "does not exist" in why


def test_past_deadline_is_zero() -> None:
    assert parse_deadline_hours("by 2026-10-01", now=NOW)[0] == 0.0


def test_working_days_between() -> None:
    assert working_days_between(NOW, date(2026, 11, 9)) == 5
    assert working_days_between(NOW, date(2026, 11, 9), 7) == 7
    assert working_days_between(NOW, NOW) == 0


def test_tightest_deadline_and_budget() -> None:
    analysis = analyze_constraints(
        ["within 4 weeks", "must ship in 10 working days", "effort budget of 120 hours", "Be nice"],
        now=NOW,
        hours_per_day=8,
        working_days_per_week=5,
    )
    assert analysis.deadline is not None and analysis.deadline.hours == 80.0
    assert analysis.budget_hours == 120.0
    assert analysis.understood == frozenset({0, 1, 2})


def test_mandates() -> None:
    mandates, forbidden = find_mandates("Must use React for the frontend")
    assert [(m.technology, m.areas) for m in mandates] == [("react", ("frontend",))]
    mandates, _ = find_mandates("use PostgreSQL")
    assert [(m.technology, m.areas) for m in mandates] == [("postgresql", ("database",))]
    mandates, _ = find_mandates("Infrastructure must be managed with Terraform on AWS")
    assert {m.technology for m in mandates} == {"terraform", "aws"}
    _, forbidden = find_mandates("Do not use MongoDB")
    assert forbidden == ["mongodb"]
    assert find_mandates("We must go live before Black Friday") == ([], [])


def test_context_inference_and_explicit_wins() -> None:
    facts = {
        f.key: f.value
        for f in infer_context("Zero-downtime deployment for a 12-service platform in production")
    }
    assert facts["downtime_allowed"] is False
    assert facts["service_count"] == 12.0
    assert facts["environment"] == "production"
    ctx = build_effective_context({"environment": "staging"}, "deploy to production")
    assert ctx.get("environment") == "staging"
    assert ctx.fact("environment").origin == "context"


@pytest.mark.parametrize(
    "text",
    [
        "within 5201 weeks",
        "within 36600 days",
        "within 99999999999 days",  # once: an overflow in date arithmetic
        f"within {'9' * 400} hours",  # once: an infinite deadline
        "in 1201 months",
    ],
)
def test_deadlines_beyond_a_hundred_years_are_not_deadlines(text: str) -> None:
    hours, why = parse_deadline_hours(text, now=NOW)
    assert hours is None and "at most 100 years ahead" in why
    assert (
        analyze_constraints([text], now=NOW, hours_per_day=8, working_days_per_week=5).deadline
        is None
    )


def test_the_furthest_deadline_and_budget_still_read() -> None:
    assert parse_deadline_hours("within 5200 weeks", now=NOW)[0] == 5200 * 40
    assert parse_deadline_hours("in 1200 months", now=NOW)[0] is not None
    for text in (f"budget of {'9' * 400} hours", f"budget of {'9' * 400} person-hours"):
        budgets = analyze_constraints([text], now=NOW, hours_per_day=8, working_days_per_week=5)
        assert budgets.budget_hours is None, text
