"""Methods a senior lead picks by what the brief says the work is: a partner API gets a
sandbox, a pilot with the first partners and their onboarding; a move off an old CI
server inventories its jobs and ends by switching it off; a move to another database
engine converts the schema and the code in the database; documentation over an existing
wiki starts with a content audit. Each brief here is written for these tests."""

from __future__ import annotations

from datetime import date

from plansmith_server.planning import PlanRequest, generate_plan, validate_plan

NOW = date(2026, 11, 2)


def _plan(request: PlanRequest):
    plan = generate_plan(request, now=NOW)
    assert validate_plan(plan) == []
    return plan


def _by_primitive(plan) -> dict[str, str]:
    return {
        t.source.rsplit("/", 1)[-1]: t.id for t in plan.tasks if t.source.startswith("library:")
    }


def _ancestors(plan, task_id: str) -> set[str]:
    deps = {t.id: set(t.dependencies) for t in plan.tasks}
    out: set[str] = set()
    stack = list(deps[task_id])
    while stack:
        d = stack.pop()
        if d not in out:
            out.add(d)
            stack.extend(deps[d])
    return out


def _methods(plan) -> set[tuple[str, str]]:
    return {(m.compound, m.method) for m in plan.explanation.methods}


def test_a_partner_api_is_piloted_in_a_sandbox_before_it_goes_live() -> None:
    plan = _plan(
        PlanRequest(
            "Carrier tracking API",
            "Build a REST API so our carrier partners can push tracking events and read "
            "delivery slots.",
            requirements=("OAuth client credentials per partner", "A sandbox with test data"),
        )
    )
    assert ("backend_api_service", "partner_api") in _methods(plan)
    ids = _by_primitive(plan)
    deploy = ids["api_deploy"]
    assert plan.task(deploy).title.startswith("Go live")
    assert {ids["api_sandbox"], ids["api_consumer_pilot"], ids["api_tests"]} <= _ancestors(
        plan, deploy
    )
    assert deploy in _ancestors(plan, ids["api_consumer_onboarding"])


def test_an_internal_api_gets_no_partner_pilot() -> None:
    plan = _plan(
        PlanRequest(
            "Stock API",
            "Build a REST API for warehouse stock that our two storefronts call.",
            requirements=("Endpoints for stock levels and reservations",),
        )
    )
    assert ("backend_api_service", "contract_first") in _methods(plan)
    assert "api_consumer_pilot" not in _by_primitive(plan)


def test_a_move_off_an_old_ci_server_inventories_its_jobs_and_switches_it_off() -> None:
    plan = _plan(
        PlanRequest(
            "Leave Jenkins",
            "Move the build and deploy pipelines of our 9 repositories from Jenkins to "
            "GitHub Actions and switch Jenkins off.",
        )
    )
    assert ("cicd_pipeline", "ci_migration") in _methods(plan)
    ids = _by_primitive(plan)
    assert "inventory" in plan.task(ids["ci_assess"]).title.lower()
    off = plan.task(ids["ci_decommission"])
    assert off.title.startswith("Switch off Jenkins")
    assert {ids["ci_assess"], ids["ci_parallel_run"], ids["ci_adoption"]} <= _ancestors(
        plan, off.id
    )


def test_a_move_to_another_engine_converts_the_schema_and_the_database_code() -> None:
    plan = _plan(
        PlanRequest(
            "Off Oracle",
            "Migrate the billing database from Oracle 19c to PostgreSQL 16: 300 tables and "
            "about 120 PL/SQL procedures.",
        )
    )
    assert ("database_migration", "engine_change") in _methods(plan)
    ids = _by_primitive(plan)
    for name in ("dbm_schema_conversion", "dbm_code_conversion", "dbm_data_migration"):
        assert ids[name] in _ancestors(plan, ids["dbm_cutover"])
    # An upgrade within one engine keeps its in-place method.
    same = _plan(
        PlanRequest(
            "MySQL upgrade",
            "Upgrade the orders database from MySQL 5.7 to MySQL 8.0 in a maintenance window; "
            "check its 12 stored procedures.",
        )
    )
    assert ("database_migration", "in_place_upgrade") in _methods(same)


def test_docs_over_an_existing_wiki_start_with_a_content_audit() -> None:
    plan = _plan(
        PlanRequest(
            "Engineering handbook",
            "Our 800 Confluence pages are half wrong. Write one developer handbook in "
            "MkDocs that teams keep up to date.",
        )
    )
    assert plan.domain == "documentation"
    assert ("documentation", "internal_handbook") in _methods(plan)
    ids = _by_primitive(plan)
    assert ids["docs_audit"] in _ancestors(plan, ids["docs_ia"])
    assert ids["docs_ia"] in _ancestors(plan, ids["docs_handbook_pages"])


def test_a_leak_between_tenants_is_api_hardening_with_object_level_checks() -> None:
    plan = _plan(
        PlanRequest(
            "Tenant data leak",
            "A researcher showed that anyone with a valid token can read other tenants' "
            "invoices by changing the ID in the URL. Fix it across all 120 endpoints.",
            requirements=("Tests per endpoint for cross-tenant access",),
            context={"environment": "production"},
        )
    )
    assert plan.domain == "api_hardening"
    ids = _by_primitive(plan)
    assert ids["apih_object_authz"] in _ancestors(plan, ids["apih_security_tests"])


def test_a_mobile_app_pipeline_signs_and_distributes_every_merge() -> None:
    plan = _plan(
        PlanRequest(
            "Pipelines for the mobile apps",
            "Builds for our iOS and Android apps are done on one developer's laptop. Automate "
            "building, signing and shipping to TestFlight and Play internal testing on every "
            "merge.",
        )
    )
    assert plan.domain == "cicd_pipeline"
    assert ("cicd_pipeline", "mobile_pipeline") in _methods(plan)
    ids = _by_primitive(plan)
    assert ids["ci_mobile_signing"] in _ancestors(plan, ids["ci_mobile_distribution"])
    assert ids["ci_mobile_distribution"] in _ancestors(plan, ids["ci_mobile_store_release"])


def test_a_warehouse_bill_is_cost_work_on_the_warehouse() -> None:
    plan = _plan(
        PlanRequest(
            "Snowflake bill is scary",
            "Our Snowflake credits doubled since the analysts got access. Bring the monthly "
            "bill from $30k to under $18k without blocking their work.",
            requirements=("Warehouses auto-suspend", "Budget alerts per team"),
        )
    )
    assert plan.domain == "cost_reduction"
    assert ("cost_reduction", "warehouse_spend") in _methods(plan)
    # A whole-cloud bill that mentions BigQuery stays a cloud cost review.
    cloud = _plan(
        PlanRequest(
            "Cloud costs",
            "Our Azure spend is 45k EUR a month across 6 subscriptions; find savings and "
            "set up guardrails.",
            requirements=("Reserved instances where usage is steady",),
        )
    )
    assert ("cost_reduction", "cloud_generic") in _methods(cloud)
    assert "cost_aws_savings_plans" not in _by_primitive(cloud)
