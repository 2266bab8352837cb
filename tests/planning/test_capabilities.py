"""Capability normalization and the agent fit test."""

from __future__ import annotations

import pytest

from plansmith_server.planning import agent_can_do, normalize_capability
from plansmith_server.planning.capabilities import expand_capabilities, missing_capabilities


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("JS", "javascript"),
        ("JavaScript", "javascript"),
        ("TS", "typescript"),
        ("k8s", "kubernetes"),
        ("K8S", "kubernetes"),
        ("Postgres", "postgresql"),
        ("PostgreSQL", "postgresql"),
        ("py", "python"),
        ("ML", "machine-learning"),
        ("Machine Learning", "machine-learning"),
        ("CI/CD", "ci-cd"),
        ("ci cd", "ci-cd"),
        ("DevOps", "devops"),
        ("Dev-Ops", "devops"),
        ("QA", "qa"),
        ("testing", "qa"),
        ("UI/UX design", "ui-ux-design"),
        ("UX/UI", "ui-ux-design"),
        ("UI design", "ui-ux-design"),
        ("  Front-End  ", "frontend"),
        ("Frontend Developer", "frontend"),
        ("Backend developer", "backend"),
        ("Senior DevOps Engineer", "devops"),
        ("Site Reliability Engineer", "sre"),
        ("Database administrator", "database"),
        ("Node.js", "nodejs"),
        ("C#", "csharp"),
        ("React.js", "react"),
        ("", ""),
        ("Underwater basket weaving", "underwater-basket-weaving"),
    ],
)
def test_normalize_capability(raw: str, canonical: str) -> None:
    assert normalize_capability(raw) == canonical


def test_normalization_is_idempotent() -> None:
    for raw in ["React", "UI design", "CI/CD", "IT support", "Engineering manager", "SRE", "Figma"]:
        once = normalize_capability(raw)
        assert normalize_capability(once) == once


def test_specific_implies_general_not_reverse() -> None:
    assert agent_can_do(["React"], ["frontend"])
    assert not agent_can_do(["frontend"], ["react"])
    assert agent_can_do(["React", "TypeScript", "frontend"], ["Frontend", "react"])
    assert agent_can_do(["Figma"], ["UI/UX design"])
    assert agent_can_do(["Full-stack developer"], ["frontend", "backend"])
    assert agent_can_do(["DevOps"], ["CI/CD", "infrastructure"])
    assert agent_can_do(["PostgreSQL"], ["database"])
    assert not agent_can_do(["UI design", "Figma"], ["frontend"])
    assert not agent_can_do(["Python", "PostgreSQL", "backend"], ["frontend"])


def test_empty_requirements_fit_anyone() -> None:
    assert agent_can_do([], [])
    assert agent_can_do(["anything"], [])


def test_expand_and_missing() -> None:
    assert {"react", "frontend", "javascript"} <= expand_capabilities(["ReactJS"])
    assert missing_capabilities(["React"], ["frontend", "k8s"]) == ("kubernetes",)


@pytest.mark.parametrize(
    ("raw", "area"),
    [
        ("Recruiter", "recruiting"),
        ("Senior technical recruiter", "recruiting"),
        ("Talent acquisition", "recruiting"),
        ("Talent acquisition specialist", "recruiting"),
        ("Marketer", "marketing"),
        ("Marketing manager", "marketing"),
        ("Event manager", "event-management"),
        ("Event planner", "event-management"),
        ("Technical writer", "technical-writing"),
        ("Translator", "localization"),
        ("Office manager", "facilities"),
        ("GRC", "compliance"),
        ("Compliance officer", "compliance"),
        ("Email marketing", "marketing"),
        ("Copywriting", "marketing"),
        ("FinOps", "finance"),
        ("Translation", "localization"),
    ],
)
def test_business_roles_and_skills_reach_their_area(raw: str, area: str) -> None:
    assert agent_can_do([raw], [area])


def test_hr_is_its_own_area_not_engineering_management() -> None:
    assert normalize_capability("HR") == "hr"
    assert normalize_capability("Human resources") == "hr"
    assert not agent_can_do(["HR"], ["people-management"])
    assert not agent_can_do(["Engineering manager"], ["hr"])
    # The general area does not imply the specific skill.
    assert not agent_can_do(["marketing"], ["email-marketing"])
    assert not agent_can_do(["localization"], ["translation"])
