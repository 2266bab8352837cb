"""GeneratePlan over many requests: validity, determinism and domain-specific checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from plansmith_server.planning import GeneratedPlan, PlanRequest, generate_plan, validate_plan
from plansmith_server.planning.capabilities import agent_can_do

from .scenarios import PG_MIGRATION, SCENARIOS, WEBSITE

NOW = date(2026, 11, 2)


def _plan(request: PlanRequest) -> GeneratedPlan:
    return generate_plan(request, now=NOW)


def _ancestors(plan: GeneratedPlan, task_id: str) -> set[str]:
    by_id = {t.id: t for t in plan.tasks}
    seen: set[str] = set()
    stack = list(by_id[task_id].dependencies)
    while stack:
        tid = stack.pop()
        if tid not in seen:
            seen.add(tid)
            stack.extend(by_id[tid].dependencies)
    return seen


def _by_source(plan: GeneratedPlan, suffix: str) -> list[str]:
    return [t.id for t in plan.tasks if t.source.endswith(suffix)]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_yields_a_valid_plan(name: str) -> None:
    request = SCENARIOS[name]
    plan = _plan(request)
    assert validate_plan(plan, request.available_agents) == []
    assert plan.tasks
    assert [t.id for t in plan.tasks] == [f"t{i + 1}" for i in range(len(plan.tasks))]
    position = {t.id: i for i, t in enumerate(plan.tasks)}
    for task in plan.tasks:
        assert all(position[d] < position[task.id] for d in task.dependencies)
        assert task.acceptance_criteria
        assert task.finish_hours == pytest.approx(task.start_hours + task.estimated_hours, abs=0.02)
    assert 0.0 <= plan.confidence <= 1.0
    assert plan.estimated_duration_hours == max(t.finish_hours for t in plan.tasks)
    assert plan.duration_low_hours <= plan.estimated_duration_hours <= plan.duration_high_hours
    assert len(plan.explanation.requirement_coverage) == len(request.requirements)
    for coverage in plan.explanation.requirement_coverage:
        assert coverage.task_ids
    assert any(t.on_critical_path for t in plan.tasks)
    gap_tasks = {tid for gap in plan.capability_gaps for tid in gap.task_ids}
    for task in plan.tasks:
        if task.assigned_to:
            agent = next(a for a in request.available_agents if a.id == task.assigned_to)
            assert agent_can_do(agent.capabilities, task.required_capabilities)
        elif request.available_agents:
            assert task.id in gap_tasks


@pytest.mark.parametrize("name", ["website", "pg_migration", "many_requirements", "monolith"])
def test_deterministic(name: str) -> None:
    assert _plan(SCENARIOS[name]) == _plan(SCENARIOS[name])


def test_agent_order_does_not_change_the_plan() -> None:
    reordered = replace(WEBSITE, available_agents=tuple(reversed(WEBSITE.available_agents)))
    assert _plan(reordered) == _plan(WEBSITE)


def test_website_react_mandate_and_designer() -> None:
    plan = _plan(WEBSITE)
    frontend = [t for t in plan.tasks if "frontend" in t.required_capabilities]
    assert frontend
    assert all("react" in t.required_capabilities for t in frontend)
    assert all(t.assigned_to == "frontend" for t in frontend)
    design = [t for t in plan.tasks if "ui-ux-design" in t.required_capabilities]
    assert design and all(t.assigned_to == "designer" for t in design)
    assert any(t.assigned_to == "backend" for t in plan.tasks)
    assert any(r.name == "mandate:react" for r in plan.explanation.rules_applied)
    assert plan.deadline_hours == 240.0
    # Each requirement is covered by a task that is about it.
    titles = {
        c.index: [plan.task(t).title for t in c.task_ids]
        for c in plan.explanation.requirement_coverage
    }
    assert any("CMS" in t for t in titles[1])
    assert any("form" in t.lower() for t in titles[2])
    assert any("performance" in t.lower() for t in titles[3])


def test_pg_migration_safeguards() -> None:
    plan = _plan(PG_MIGRATION)
    [cutover] = _by_source(plan, "/dbm_cutover")
    [backup] = _by_source(plan, "/verified_backup")
    [rehearsal] = _by_source(plan, "/staging_rehearsal")
    [rollback] = _by_source(plan, "/rollback_plan")
    [approval] = _by_source(plan, "/change_approval")
    before = _ancestors(plan, cutover)
    assert {backup, rehearsal, rollback, approval} <= before
    assert approval in _ancestors(plan, backup)  # backup is taken right before the change
    assert any("replication_cutover" in m.method for m in plan.explanation.methods)
    rules = {r.name for r in plan.explanation.rules_applied}
    assert {"production_safeguards", "verified_backup", "deadline"} <= rules
    assert plan.task(backup).assigned_to == "dba"
    assert plan.deadline_hours == 432.0


def test_zero_downtime_ecommerce_release() -> None:
    plan = _plan(SCENARIOS["ecommerce_release"])
    assert plan.explanation.methods[0].method == "blue_green_release"
    assert ("downtime_allowed", "false") in plan.context
    assert ("service_count", "12") in plan.context
    bluegreen = plan.task(_by_source(plan, "/rel_bluegreen")[0])
    assert bluegreen.estimated_hours > 8.2  # scaled for 12 services
    assert not _by_source(plan, "/provision_green")  # blue-green method already covers it
    assert plan.explanation.requirement_coverage[1].matched == "rollback_plan"


def test_database_outage_uses_database_method_and_no_change_gate() -> None:
    plan = _plan(SCENARIOS["db_outage"])
    assert plan.explanation.methods[0].method == "database_outage"
    assert not _by_source(plan, "/change_approval")
    assert plan.tasks[0].title.startswith("Declare the incident")
    assert plan.estimated_duration_hours < 40


def test_staging_kubernetes_cluster() -> None:
    plan = _plan(SCENARIOS["staging_k8s"])
    assert plan.explanation.methods[0].compound == "kubernetes_platform"
    matched = [c.matched for c in plan.explanation.requirement_coverage]
    assert matched == ["k8s_observability", "k8s_observability", "k8s_autoscaling"]
    assert not _by_source(plan, "/change_approval")  # staging: no production gate
    assert plan.task(_by_source(plan, "/k8s_observability")[0]).assigned_to == "sre"


def test_onboarding_devops_engineer() -> None:
    plan = _plan(SCENARIOS["onboarding"])
    assert plan.explanation.methods[0].method == "operations_onboarding"
    assert _by_source(plan, "/onb_oncall_shadow")
    assert not plan.capability_gaps


def test_monolith_to_microservices() -> None:
    plan = _plan(SCENARIOS["monolith"])
    assert plan.explanation.methods[0].compound == "monolith_to_microservices"
    [split] = _by_source(plan, "/ms_data_split")
    [expand] = _by_source(plan, "/expand_schema")
    assert expand in _ancestors(plan, split)
    assert any(r.name == "zero_downtime_schema_change" for r in plan.explanation.rules_applied)


def test_cicd_for_microservices_on_kubernetes() -> None:
    plan = _plan(SCENARIOS["cicd"])
    assert plan.explanation.methods[0].method == "multi_service_platform"
    assert all(
        "github-actions" in t.required_capabilities
        for t in plan.tasks
        if "ci-cd" in t.required_capabilities
    )
    assert plan.deadline_hours == 120.0


def test_capability_gaps_reported_and_unassigned() -> None:
    plan = _plan(WEBSITE)
    gaps = {g.capabilities: g for g in plan.capability_gaps}
    assert ("devops",) in gaps
    for gap in plan.capability_gaps:
        for tid in gap.task_ids:
            assert plan.task(tid).assigned_to == ""
    assert any(w.code == "CAPABILITY_GAP" for w in plan.warnings)
    assert any(r.description.startswith("No available agent") for r in plan.risks)


def test_deadline_risk() -> None:
    plan = _plan(SCENARIOS["deadline_tight"])
    assert plan.deadline_hours == 80.0
    assert plan.estimated_duration_hours > 80.0
    assert plan.risks[0].severity.value in ("HIGH", "CRITICAL")
    assert "deadline" in plan.risks[0].description
    assert any(w.code == "DEADLINE_AT_RISK" for w in plan.warnings)


def test_generic_requirements_are_explained() -> None:
    plan = _plan(SCENARIOS["generic_only"])
    assert all(c.match == "generic" for c in plan.explanation.requirement_coverage)
    assert "work package" in plan.explanation.requirement_coverage[0].note
    assert any(w.code == "DOMAIN_NOT_RECOGNIZED" for w in plan.warnings)


def test_no_agents_uses_team_size() -> None:
    plan = _plan(SCENARIOS["no_agents"])
    assert all(t.assigned_to == "" for t in plan.tasks)
    assert not plan.capability_gaps
    assert any("2 parallel worker" in a for a in plan.assumptions)


def test_compliance_rule() -> None:
    plan = _plan(SCENARIOS["compliance_release"])
    assert _by_source(plan, "/compliance_review")
    assert ("compliance", "HIPAA") in plan.context


def test_tech_stack_mandates_and_extra_compounds() -> None:
    plan = _plan(SCENARIOS["web_app_with_extras"])
    compounds = [m.compound for m in plan.explanation.methods]
    assert compounds[0] == "web_application"
    assert "cicd_pipeline" in compounds and "monitoring_alerting" in compounds
    rules = {r.name for r in plan.explanation.rules_applied}
    assert {"mandate:react", "mandate:django"} <= rules
    # No task of this plan works on the database itself: the mandate is reported, not forced.
    assert any(w.code == "MANDATE_NOT_APPLIED" and "postgresql" in w.message for w in plan.warnings)


def test_absolute_deadline_without_now_is_a_warning() -> None:
    plan = generate_plan(SCENARIOS["many_requirements"])
    assert plan.deadline_hours is None
    assert any(w.code == "DEADLINE_NEEDS_NOW" for w in plan.warnings)


def test_unknown_constraint_is_echoed_and_reported() -> None:
    request = replace(WEBSITE, constraints=(*WEBSITE.constraints, "Keep the brand colours"))
    plan = _plan(request)
    assert plan.constraints == request.constraints
    assert any(w.code == "CONSTRAINT_NOT_UNDERSTOOD" for w in plan.warnings)


def test_a_requirement_naming_a_piece_the_method_left_out_gets_that_piece() -> None:
    # The public-API method has no GraphQL limits task; the requirement asks for them.
    plan = _plan(
        PlanRequest(
            name="Harden the partner GraphQL API",
            description="Our public GraphQL API for external integration partners: stop "
            "scraping and credential stuffing and replace the static API keys.",
            requirements=("Query depth and cost limits", "Rate limits per partner"),
        )
    )
    assert plan.domain == "api_hardening"
    coverage = plan.explanation.requirement_coverage[0]
    assert (coverage.match, coverage.matched) == ("library_primitive", "apih_graphql_limits")
    assert any("depth" in t.title.lower() for t in plan.tasks)
