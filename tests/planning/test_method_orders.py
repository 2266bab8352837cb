"""Methods a senior lead expects for particular kinds of brief within a domain: the method
is chosen from the brief's words, and its tasks come in the order the work is done (a
shadow run before the go-live, a pilot before the MDM distribution, a parallel run before
the old monitoring is switched off, migrations before the deploy, a sandbox before a
help desk's switch-over). Briefs written for these tests, not taken from the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from plansmith_server.planning import PlanRequest, generate_plan, validate_plan

NOW = date(2026, 11, 2)


@dataclass(frozen=True)
class Case:
    request: PlanRequest
    method: str  # "<compound>/<method>"
    order: tuple[tuple[str, str], ...]  # (earlier primitive, later primitive)


CASES: dict[str, Case] = {
    "ml_go_live_after_shadow": Case(
        PlanRequest(
            "Fake sign-ups",
            "Block fake sign-ups in real time with a model the sign-up API calls per "
            "request, within 40 ms.",
        ),
        "ml_model_delivery/realtime_serving",
        (("ml_serving", "ml_shadow"), ("ml_shadow", "ml_go_live")),
    ),
    "mobile_through_mdm": Case(
        PlanRequest(
            "Warehouse picking app",
            "Build an Android app for our 80 warehouse pickers on company phones managed "
            "with Intune.",
        ),
        "mobile_app/managed_distribution",
        (("mob_testing", "mob_pilot"), ("mob_pilot", "mob_mdm_distribution")),
    ),
    "monitoring_replaces_zabbix": Case(
        PlanRequest(
            "Out of Zabbix",
            "Replace our Zabbix monitoring with Prometheus and Grafana for 25 services.",
        ),
        "monitoring_alerting/replace_existing",
        (("mon_inventory", "mon_slo"), ("mon_parallel_run", "mon_decommission")),
    ),
    "release_with_schema_change": Case(
        PlanRequest(
            "Orders 5.2",
            "Release version 5.2 of the orders service; it adds a new column to the orders table.",
        ),
        "production_deployment/rolling_release_with_migration",
        (("rollback_plan", "rel_db_migration"), ("rel_db_migration", "rel_rolling_deploy")),
    ),
    "release_behind_flag": Case(
        PlanRequest(
            "Search 3.0",
            "Release the new search ranking behind a feature flag next Tuesday.",
        ),
        "production_deployment/rolling_release_behind_flag",
        (("rel_rolling_deploy", "rel_smoke"), ("rel_smoke", "rel_flag_enable")),
    ),
    "help_desk_move": Case(
        PlanRequest(
            "Freshdesk to Zendesk",
            "Move our customer support from Freshdesk to Zendesk: 15 agents, macros and "
            "the help center.",
        ),
        "saas_migration/support_desk",
        (
            ("saas_desk_workflows", "saas_desk_sandbox"),
            ("saas_desk_sandbox", "saas_desk_switch"),
            ("saas_desk_switch", "saas_decommission"),
        ),
    ),
    "mobile_security_review": Case(
        PlanRequest(
            "Banking app assessment",
            "Security assessment of our iOS and Android banking apps before the audit.",
        ),
        "security_review/mobile_app_review",
        (("sec_mobile", "sec_report"), ("sec_retest", "sec_signoff")),
    ),
    "office_opening": Case(
        PlanRequest(
            "Madrid office",
            "Open our first office in Madrid for 15 people: find the space, sign the lease "
            "and furnish it.",
        ),
        "office_move/new_office_opening",
        (("om_space_search", "om_fit_out"), ("om_network", "om_opening")),
    ),
    "web_app_with_accounts": Case(
        PlanRequest(
            "Members area",
            "Build a web application where our club members log in to book courts.",
        ),
        "web_application/app_with_accounts",
        (("web_backend", "web_auth"), ("web_auth", "web_testing")),
    ),
    "vendor_references": Case(
        PlanRequest(
            "Pick a payroll provider",
            "Compare three payroll providers for our 60 staff and pick one by March.",
        ),
        "vendor_selection/rfp_with_poc",
        (("vendor_demos", "vendor_references"), ("vendor_references", "vendor_decision")),
    ),
}


def _ancestors(plan, task_id: str) -> set[str]:
    by_id = {t.id: t for t in plan.tasks}
    seen: set[str] = set()
    stack = list(by_id[task_id].dependencies)
    while stack:
        k = stack.pop()
        if k not in seen:
            seen.add(k)
            stack.extend(by_id[k].dependencies)
    return seen


@pytest.mark.parametrize("key", sorted(CASES))
def test_the_brief_gets_its_method_and_its_order(key: str) -> None:
    case = CASES[key]
    plan = generate_plan(case.request, now=NOW)
    compound = case.method.split("/")[0]
    assert plan.domain == compound
    sources = {t.source for t in plan.tasks}
    assert any(s.startswith(f"library:{case.method}/") for s in sources), sorted(sources)
    by_primitive = {t.source.rsplit("/", 1)[-1]: t for t in plan.tasks}
    for before, after in case.order:
        assert by_primitive[before].id in _ancestors(plan, by_primitive[after].id), (
            before,
            after,
        )
    assert validate_plan(plan) == []
