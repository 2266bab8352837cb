"""The library's non-core domains: each is recognized from a realistic brief, plans its
key kinds of work, carries the brief's specifics into its tasks, and stays away from
its neighbours' briefs (a warehouse fed from Postgres is not a database migration, an
email campaign is not a website, hiring is not onboarding, a slow query is not an
incident). The briefs here are written for these tests, not taken from the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from plansmith_server.planning import PlanRequest, generate_plan, load_library, validate_plan

NOW = date(2026, 11, 2)


@dataclass(frozen=True)
class Case:
    request: PlanRequest
    domain: str
    method: str  # the method a senior lead would pick for this brief
    work: tuple[str, ...]  # primitives that must be in the plan
    specifics: tuple[str, ...]  # words of the brief that some task title must carry
    neighbour: PlanRequest  # a brief of another domain this one must not take


CASES: dict[str, Case] = {
    "data_warehouse": Case(
        PlanRequest(
            "Analytics warehouse",
            "Build a Snowflake data warehouse with sales and product marts, loaded from our "
            "MySQL databases.",
            ("Star schema for orders and subscriptions", "Tableau dashboards for the sales team"),
        ),
        "data_warehouse",
        "batch_elt",
        ("dwh_extract", "dwh_model", "dwh_quality", "dwh_dashboards"),
        ("Snowflake", "Tableau"),
        PlanRequest("MySQL upgrade", "Upgrade the orders MySQL database from 5.7 to 8.0."),
    ),
    "email_campaign": Case(
        PlanRequest(
            "Spring sale newsletter",
            "Run our spring sale email campaign in Mailchimp to our 40,000 subscribers.",
            ("Two emails: announcement and reminder", "Discount codes for returning customers"),
        ),
        "email_campaign",
        "scheduled_campaign",
        ("email_segments", "email_copy", "email_qa", "email_schedule", "email_results"),
        ("Mailchimp", "40,000 subscribers"),
        PlanRequest(
            "Company website", "Build a new marketing website with a blog and a contact form."
        ),
    ),
    "email_sequence": Case(
        PlanRequest(
            "Trial nurture",
            "Set up an automated drip email sequence in Customer.io for new trial users.",
            ("Five emails over two weeks", "Stop the sequence when the user upgrades"),
        ),
        "email_campaign",
        "automated_sequence",
        ("email_flow_build", "email_flow_activate", "email_qa"),
        ("Customer.io",),
        PlanRequest(
            "Password reset emails",
            "Add transactional email notifications for password resets to our REST API.",
        ),
    ),
    "performance_troubleshooting": Case(
        PlanRequest(
            "Slow search",
            "The product search queries on MySQL 8.0 got slow: p95 went from 200 ms to 4 s.",
            ("Find the slow queries and fix them",),
            context={"environment": "production"},
        ),
        "performance_troubleshooting",
        "database_queries",
        ("perf_baseline", "perf_db_top_queries", "perf_db_fix", "perf_verify"),
        ("MySQL 8.0",),
        PlanRequest(
            "Checkout outage",
            "Production outage: checkout returns errors for all customers since the deploy.",
        ),
    ),
    "hiring": Case(
        PlanRequest(
            "Hire designers",
            "Hire two product designers for the growth team.",
            ("Portfolio review and a design exercise", "Offers signed by April"),
        ),
        "hiring",
        "structured_hiring",
        ("hire_profile", "hire_sourcing", "hire_interviews", "hire_offers", "hire_handover"),
        ("two product designers",),
        PlanRequest(
            "Onboard the new designers",
            "Onboard Ana and Ben, two designers joining the growth team next Monday.",
            ("Laptops and accounts ready on day one", "A buddy for each"),
        ),
    ),
    "identity_sso": Case(
        PlanRequest(
            "Single sign-on",
            "Roll out Okta single sign-on with MFA for our 120 employees and 30 SaaS apps.",
            ("SCIM provisioning from Personio",),
        ),
        "identity_sso",
        "new_idp",
        ("sso_inventory", "sso_integrate", "sso_hr_provisioning", "sso_pilot", "sso_rollout"),
        ("Okta", "Personio", "30 saas apps"),
        PlanRequest("Mobile app", "Build an iOS and Android app with a login screen."),
    ),
    "compliance_audit": Case(
        PlanRequest(
            "ISO 27001",
            "Get our ISO 27001 certification this year, with Drata collecting the evidence.",
            ("Risk assessment and Statement of Applicability", "Internal audit before stage 2"),
        ),
        "compliance_audit",
        "certification",
        ("comp_scope", "comp_isms", "comp_evidence", "comp_internal_audit"),
        ("ISO 27001", "Drata"),
        PlanRequest(
            "Payments API security review",
            "Security review of the payments API: threat model and a penetration test.",
        ),
    ),
    "event_planning": Case(
        PlanRequest(
            "Sales kickoff",
            "Organise our annual sales kickoff in Barcelona for 150 employees.",
            ("Keynotes and regional breakouts", "Hotel rooms and travel"),
        ),
        "event_planning",
        "internal_event",
        ("evt_venue", "evt_agenda", "evt_registration_travel", "evt_run", "evt_wrapup"),
        ("Barcelona", "150 employees"),
        PlanRequest(
            "Our wedding",
            "Plan our wedding for 80 guests next summer.",
            ("Ceremony and dinner", "Rooms for the guests"),
        ),
    ),
    "saas_migration": Case(
        PlanRequest(
            "Asana to Jira",
            "Move the 40-person product org from Asana to Jira.",
            ("Import the 9 active projects", "Keep the Slack notifications"),
        ),
        "saas_migration",
        "issue_tracker",
        ("saas_inventory", "saas_tracker_test_import", "saas_tracker_import", "saas_decommission"),
        ("Asana", "Jira", "9 active projects"),
        PlanRequest(
            "Orders database move",
            "Migrate the orders database from MySQL to PostgreSQL 16.",
        ),
    ),
    "cost_reduction": Case(
        PlanRequest(
            "Cloud costs",
            "Cut our AWS costs by a third: rightsize EC2 and clean up unused EBS volumes.",
            ("Savings Plans for the baseline",),
        ),
        "cost_reduction",
        "aws",
        ("cost_baseline", "cost_aws_rightsize", "cost_aws_cleanup", "cost_aws_savings_plans"),
        ("AWS",),
        PlanRequest(
            "Billing database upgrade",
            "Upgrade the billing database to PostgreSQL 16 on AWS RDS.",
        ),
    ),
    "localization": Case(
        PlanRequest(
            "French localization",
            "Localize the web app into French with Crowdin.",
            ("Extract the UI strings", "Translation reviewed by native speakers"),
        ),
        "localization",
        "product_localization",
        ("l10n_i18n", "l10n_glossary", "l10n_translate", "l10n_review", "l10n_qa"),
        ("French", "Crowdin"),
        PlanRequest("Marketing website", "Build a marketing website with a blog for our launch."),
    ),
    "documentation": Case(
        PlanRequest(
            "Admin guide",
            "Write the administrator guide for our on-premise product in MkDocs.",
            ("Installation, backup and user management articles", "Screenshots"),
        ),
        "documentation",
        "self_hosted_product_guides",
        (
            "docs_audience",
            "docs_install_guide",
            "docs_task_articles",
            "docs_review",
            "docs_publish",
        ),
        ("MkDocs",),
        PlanRequest(
            "Orders API",
            "Build a REST API service for orders with PostgreSQL.",
            ("CRUD endpoints for orders",),
        ),
    ),
    "ml_model_delivery": Case(
        PlanRequest(
            "Fraud model",
            "Deliver a real-time fraud detection model scoring every card payment at checkout.",
            ("Latency under 50 ms", "Train on SageMaker"),
        ),
        "ml_model_delivery",
        "realtime_serving",
        ("ml_problem", "ml_features", "ml_train", "ml_evaluate", "ml_serving", "ml_monitoring"),
        ("SageMaker",),
        PlanRequest(
            "Orders ETL",
            "Build a nightly ETL pipeline from the orders database into the warehouse.",
        ),
    ),
    "api_hardening": Case(
        PlanRequest(
            "Harden the GraphQL API",
            "Harden our internal GraphQL API behind Apollo Router against abusive queries.",
            ("Query depth limits", "Service-to-service authentication"),
        ),
        "api_hardening",
        "internal_graphql",
        ("apih_inventory", "apih_graphql_limits", "apih_consumer_notice", "apih_enforce"),
        ("Apollo Router",),
        PlanRequest(
            "Orders API",
            "Build a new REST API service for orders with PostgreSQL.",
            ("CRUD endpoints for orders",),
        ),
    ),
    "disaster_recovery": Case(
        PlanRequest(
            "Disaster recovery",
            "Disaster recovery for the shop: fail over from us-east-1 to a warm standby in "
            "us-west-2.",
            ("RPO 15 minutes, RTO 2 hours", "A failover drill every quarter"),
            context={"environment": "production"},
        ),
        "disaster_recovery",
        "warm_standby",
        ("dr_objectives", "dr_replication", "dr_standby", "dr_runbook", "dr_drill"),
        ("us-east-1", "us-west-2"),
        PlanRequest(
            "Payments outage",
            "Card payments are failing since the deploy; customers are complaining.",
        ),
    ),
    "office_move": Case(
        PlanRequest(
            "London office move",
            "Move our 60-person London office to a new floor over a weekend.",
            ("Wi-Fi and meeting rooms ready on Monday", "Seating plan for 5 teams"),
        ),
        "office_move",
        "weekend_move",
        ("om_floor_plan", "om_network", "om_movers", "om_move", "om_old_office"),
        ("London",),
        PlanRequest(
            "Kitchen renovation",
            "Renovate the kitchen of our house: new cabinets and flooring.",
        ),
    ),
    "vendor_selection": Case(
        PlanRequest(
            "Choose a CRM",
            "Select and buy a CRM for the 25-person sales team: RFP, shortlist and a proof of "
            "concept.",
        ),
        "vendor_selection",
        "rfp_with_poc",
        ("vendor_requirements", "vendor_rfp", "vendor_poc", "vendor_negotiation"),
        (),
        PlanRequest(
            "Move to HubSpot",
            "Migrate our CRM data from Pipedrive to HubSpot.",
            ("Import contacts and deals",),
        ),
    ),
    "kubernetes_upgrade": Case(
        PlanRequest(
            "GKE upgrade",
            "Upgrade our two GKE clusters from Kubernetes 1.28 to 1.30 before end of support.",
        ),
        "kubernetes_platform",
        "cluster_upgrade",
        ("k8s_upg_apis", "k8s_upg_backup", "k8s_upg_nonprod", "k8s_upg_prod"),
        ("two GKE clusters",),
        PlanRequest("MySQL upgrade", "Upgrade the orders MySQL database from 5.7 to 8.0."),
    ),
    "incident_closed_out": Case(
        PlanRequest(
            "Close out last week's outage",
            "Our booking site was unavailable for three hours last week and 240 customers were "
            "charged twice. It is stable now: refund them, find out why and make sure it "
            "cannot happen again.",
        ),
        "incident_response",
        "post_incident",
        ("inc_pir_timeline", "inc_pir_remediate", "inc_root_cause", "inc_postmortem"),
        (),
        PlanRequest("Site redesign", "Redesign our booking website with a new checkout flow."),
    ),
    "hiring_without_the_word": Case(
        PlanRequest(
            "Customer success team",
            "Hire a data analyst and two customer success managers for the Madrid office.",
        ),
        "hiring",
        "structured_hiring",
        ("hire_profile", "hire_sourcing", "hire_interviews", "hire_offers"),
        (),
        PlanRequest(
            "Onboard the new hires",
            "Onboard our three new hires in customer success: accounts, buddy and first week.",
        ),
    ),
    "incident_without_the_word": Case(
        PlanRequest(
            "API returning 500s",
            "Since 10:15 our public API returns 500 errors for a third of requests and "
            "customers cannot pay.",
        ),
        "incident_response",
        "general_incident",
        ("inc_triage", "inc_mitigate", "inc_comms", "inc_postmortem"),
        (),
        PlanRequest("Alerting", "Set up alerts on the API's 5xx error rate with on-call routing."),
    ),
    "email_newsletter": Case(
        PlanRequest(
            "Newsletter relaunch",
            "Relaunch our monthly B2B newsletter in HubSpot for 12,000 contacts, with a "
            "re-permission email first because half the list never opted in under GDPR.",
        ),
        "email_campaign",
        "newsletter",
        ("email_consent", "email_editorial", "email_copy", "email_qa", "email_results"),
        ("HubSpot",),
        PlanRequest("Company website", "Build a new marketing website with a blog."),
    ),
    "laptop_refresh_of_computers": Case(
        PlanRequest(
            "Replace old computers",
            "Replace the 120 five-year-old Windows computers in our three offices with new "
            "ones before Windows 10 support ends.",
        ),
        "laptop_refresh",
        "zero_touch_swap",
        ("laptop_inventory", "laptop_data", "laptop_swap", "laptop_old_devices"),
        (),
        PlanRequest(
            "Office move", "Move our 80 people from the 3rd floor to the new office in May."
        ),
    ),
    "sso_without_the_word": Case(
        PlanRequest(
            "One login for everything",
            "Give our 200 staff one login for all our tools, with two-factor authentication, "
            "and switch off shared passwords.",
        ),
        "identity_sso",
        "new_idp",
        ("sso_inventory", "sso_integrate", "sso_pilot", "sso_rollout"),
        (),
        PlanRequest("Login outage", "Nobody can log in since the config push at 09:40."),
    ),
    "microservices_without_the_word": Case(
        PlanRequest(
            "Break up the Rails app",
            "Break up our Rails app into separate services so the payments team can ship on "
            "its own.",
        ),
        "monolith_to_microservices",
        "strangler_fig",
        ("ms_assess", "ms_first_service", "ms_cutover"),
        (),
        PlanRequest("Orders API", "Build a REST API for the orders of our shop."),
    ),
    "trade_fair_stand": Case(
        PlanRequest(
            "Trade fair booth",
            "Get us a booth at the Hannover Messe in April with demos and lead capture.",
        ),
        "event_planning",
        "exhibitor_stand",
        ("evt_exh_space", "evt_exh_stand", "evt_exh_leads", "evt_exh_followup"),
        (),
        PlanRequest("Spring sale", "Run our spring sale email campaign to 40,000 subscribers."),
    ),
    "laptop_refresh": Case(
        PlanRequest(
            "Laptop refresh",
            "Replace the 200 oldest laptops with new MacBooks managed by Jamf.",
        ),
        "laptop_refresh",
        "zero_touch_swap",
        ("laptop_inventory", "laptop_mdm", "laptop_pilot", "laptop_swap", "laptop_old_devices"),
        ("Jamf",),
        PlanRequest(
            "Fitness app",
            "Build an iOS and Android fitness app that tracks runs.",
        ),
    ),
}


def _plan(request: PlanRequest):
    return generate_plan(request, now=NOW)


def _primitives(plan) -> set[str]:
    """Library primitive names behind the plan's tasks (``library:<c>/<m>/<name>``)."""
    return {t.source.rsplit("/", 1)[-1] for t in plan.tasks if t.source.startswith("library:")}


@pytest.mark.parametrize("key", sorted(CASES))
def test_domain_recognized_with_its_key_work(key: str) -> None:
    case = CASES[key]
    plan = _plan(case.request)
    assert plan.domain == case.domain
    assert not any(w.code == "DOMAIN_NOT_RECOGNIZED" for w in plan.warnings)
    chosen = {(m.compound, m.method) for m in plan.explanation.methods}
    assert (case.domain, case.method) in chosen
    missing = set(case.work) - _primitives(plan)
    assert not missing, f"{key}: missing {sorted(missing)}"
    assert validate_plan(plan) == []


@pytest.mark.parametrize("key", sorted(k for k in CASES if CASES[k].specifics))
def test_domain_carries_the_briefs_specifics_into_titles(key: str) -> None:
    case = CASES[key]
    titles = " | ".join(t.title for t in _plan(case.request).tasks).lower()
    for word in case.specifics:
        assert word.lower() in titles, f"{key}: '{word}' not in {titles}"


def test_newsletter_has_no_discount_offer_or_landing_page() -> None:
    plan = _plan(CASES["email_newsletter"].request)
    assert not {"email_offer", "email_landing_page"} & _primitives(plan)


@pytest.mark.parametrize("key", sorted(CASES))
def test_domain_does_not_take_its_neighbours_brief(key: str) -> None:
    case = CASES[key]
    plan = _plan(case.neighbour)
    assert plan.domain != case.domain
    assert case.domain not in {m.compound for m in plan.explanation.methods}


def test_out_of_scope_briefs_stay_unrecognized() -> None:
    # Private life is not a business event, a move or a hire.
    for request in (
        PlanRequest(
            "Wedding in Tuscany",
            "Plan our wedding in Tuscany for 90 guests.",
            ("Ceremony at a vineyard", "Hire a photographer and a band"),
        ),
        PlanRequest(
            "Birthday party",
            "Organise my daughter's birthday party for 20 kids.",
            ("Book a venue", "Order a cake"),
        ),
    ):
        plan = _plan(request)
        assert any(w.code == "DOMAIN_NOT_RECOGNIZED" for w in plan.warnings), plan.domain


def test_count_scales_the_per_item_work() -> None:
    small = _plan(PlanRequest("SSO", "Roll out Okta single sign-on across our 5 SaaS apps."))
    large = _plan(PlanRequest("SSO", "Roll out Okta single sign-on across our 40 SaaS apps."))

    def hours(plan) -> float:
        return next(t.estimated_hours for t in plan.tasks if t.source.endswith("/sso_integrate"))

    assert hours(large) > 4 * hours(small)


def test_library_holds_at_least_thirty_domains() -> None:
    lib = load_library()
    nested = {s for c in lib.compounds.values() for m in c.methods for s in m.subtasks}
    top_level = [name for name in lib.compounds if name not in nested]
    assert len(top_level) >= 30
    assert set(CASES[k].domain for k in CASES) <= set(top_level)
