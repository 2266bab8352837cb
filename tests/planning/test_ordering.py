"""Library orderings: the work's real order (training -> access -> its first use; a
rehearsal before the change it rehearses), added by the planner and checked by the
validator."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from plansmith_server.planning import PlanRequest, generate_plan, load_library, validate_plan

from .scenarios import ONBOARDING

NOW = date(2026, 11, 2)


def _ancestors(plan, task_id: str) -> set[str]:
    by_id = {t.id: t for t in plan.tasks}
    seen: set[str] = set()
    stack = list(by_id[task_id].dependencies)
    while stack:
        tid = stack.pop()
        if tid not in seen:
            seen.add(tid)
            stack.extend(by_id[tid].dependencies)
    return seen


def _id(plan, suffix: str) -> str:
    return next(t.id for t in plan.tasks if t.source.endswith(suffix))


def test_onboarding_training_then_access_then_first_production_change() -> None:
    plan = generate_plan(ONBOARDING, now=NOW)
    training = _id(plan, "/onb_security_training")
    access = _id(plan, "/onb_prod_access")
    first_change = _id(plan, "/onb_first_change")
    assert training in _ancestors(plan, access)
    assert access in _ancestors(plan, first_change)
    assert validate_plan(plan, ONBOARDING.available_agents) == []
    by_id = {t.id: t for t in plan.tasks}
    assert by_id[first_change].start_hours >= by_id[access].finish_hours


def test_validator_reports_a_broken_ordering() -> None:
    plan = generate_plan(ONBOARDING, now=NOW)
    access = _id(plan, "/onb_prod_access")
    first_change = _id(plan, "/onb_first_change")
    walkthrough = _id(plan, "/onb_walkthrough")
    # The old onboarding order: the first production change waited only for the
    # walkthroughs, not for production access.
    broken = replace(
        plan,
        tasks=tuple(
            replace(t, dependencies=(walkthrough,)) if t.id == first_change else t
            for t in plan.tasks
        ),
    )
    problems = validate_plan(broken, ONBOARDING.available_agents)
    assert any(
        f"{first_change} " in p and access in p and "access_before_use" in p for p in problems
    )


def test_rehearsal_precedes_every_production_change() -> None:
    plan = generate_plan(
        PlanRequest(
            "Scheduler move",
            "Move the 12 nightly cron jobs to Airflow in production.",
        ),
        now=NOW,
    )
    prod_changes = [t.id for t in plan.tasks if "prod_change" in t.tags]
    rehearsals = [t.id for t in plan.tasks if "rehearsal" in t.tags]
    assert prod_changes and len(rehearsals) >= 2  # the parallel run and the staging rehearsal
    for change in prod_changes:
        assert set(rehearsals) <= _ancestors(plan, change)
    assert validate_plan(plan) == []


def test_library_declares_the_orderings() -> None:
    names = {o.name for o in load_library().orderings}
    assert {"training_before_access", "access_before_use", "rehearsal_before_change"} <= names


def test_contract_first_api_scaffolds_the_service_from_the_contract() -> None:
    plan = generate_plan(
        PlanRequest(name="Orders API", description="Build a REST API for the orders of our shop."),
        now=NOW,
    )
    contract = _id(plan, "/api_contract")
    # Every build task (the skeleton included) starts from the agreed contract.
    for suffix in ("/api_scaffold", "/api_auth", "/api_persistence", "/api_endpoints"):
        assert contract in _ancestors(plan, _id(plan, suffix))


def test_customer_facing_newcomers_train_and_shadow_before_working_alone() -> None:
    plan = generate_plan(
        PlanRequest(
            name="Onboard the new sales reps",
            description="Onboard 4 new sales reps joining the inside-sales team in March.",
        ),
        now=NOW,
    )
    assert [m.method for m in plan.explanation.methods] == ["customer_facing_onboarding"]
    training = _id(plan, "/onb_security_training")
    access = _id(plan, "/onb_customer_data_access")
    shadow = _id(plan, "/onb_shadowing")
    alone = _id(plan, "/onb_supervised_work")
    assert training in _ancestors(plan, access)
    assert {access, shadow} <= _ancestors(plan, alone)
    assert not any(t.source.endswith("/onb_first_change") for t in plan.tasks)
    assert validate_plan(plan) == []


def test_certification_writes_the_statement_of_applicability_from_the_risk_treatment() -> None:
    plan = generate_plan(
        PlanRequest(
            name="ISO 27001",
            description="Get our 60-person company ISO 27001 certified by next autumn.",
        ),
        now=NOW,
    )
    isms = _id(plan, "/comp_isms")
    soa = _id(plan, "/comp_soa")
    assert isms in _ancestors(plan, soa)
    assert soa in _ancestors(plan, _id(plan, "/comp_controls"))


def test_cluster_upgrade_fixes_removed_apis_and_upgrades_non_production_first() -> None:
    plan = generate_plan(
        PlanRequest(
            "EKS upgrade",
            "Upgrade our three EKS clusters (dev, staging, prod) from Kubernetes 1.27 to 1.30.",
        ),
        now=NOW,
    )
    apis = _id(plan, "/k8s_upg_apis")
    backup = _id(plan, "/k8s_upg_backup")
    nonprod = _id(plan, "/k8s_upg_nonprod")
    prod = _id(plan, "/k8s_upg_prod")
    assert {apis, backup} <= _ancestors(plan, nonprod)
    assert nonprod in _ancestors(plan, prod)
    assert validate_plan(plan) == []


def test_laptop_refresh_backs_up_each_old_device_before_it_is_wiped() -> None:
    plan = generate_plan(
        PlanRequest("Laptop refresh", "Replace the 200 oldest laptops with new MacBooks."),
        now=NOW,
    )
    backup = _id(plan, "/laptop_data")
    wipe = _id(plan, "/laptop_old_devices")
    assert backup in _ancestors(plan, wipe)
    assert backup in _ancestors(plan, _id(plan, "/laptop_swap"))
    assert validate_plan(plan) == []


def test_title_words_order_acceptance_tests_training_and_access_grants() -> None:
    # Work packages in the brief's own words are ordered like the library's tasks:
    # user acceptance testing is a pilot of the go-live, and an admin-access grant
    # waits for the security training.
    plan = generate_plan(
        PlanRequest(
            "Expense tool",
            "Roll out the new expense tool to the finance department.",
            (
                "User acceptance testing with two accountants",
                "Deploy to production for the whole finance team",
                "Security awareness training for the approvers",
                "Grant admin access to the finance leads",
            ),
        ),
        now=NOW,
    )
    by_title = {t.title: t for t in plan.tasks}
    uat = by_title["User acceptance testing"]
    training = by_title["Security awareness training"]
    grant = by_title["Grant admin access to the finance leads"]
    assert "pilot" in uat.tags
    assert "training" in training.tags and "access_grant" in grant.tags
    assert training.id in _ancestors(plan, grant.id)
    assert validate_plan(plan) == []
