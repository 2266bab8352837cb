"""The brief's specifics reach the plan: names, versions, tools and counts in titles;
counts and team size in estimates; nested context read as structure; deadlines,
timelines and budgets from the context."""

from __future__ import annotations

from datetime import date

from plansmith_server.planning import PlanRequest, generate_plan, load_library

NOW = date(2026, 11, 2)


def _plan(request: PlanRequest):
    return generate_plan(request, now=NOW)


def _task(plan, source_suffix: str):
    return next(t for t in plan.tasks if t.source.endswith(source_suffix))


def test_database_names_and_versions_reach_the_titles() -> None:
    plan = _plan(
        PlanRequest(
            "Orders DB upgrade",
            "Upgrade the orders MySQL database from 5.7 to 8.0 in production.",
        )
    )
    assert plan.domain == "database_migration"
    titles = [t.title for t in plan.tasks]
    assert "Rehearse the move to MySQL 8.0 end-to-end on staging" in titles
    assert "Execute the MySQL 8.0 upgrade and cut over in the maintenance window" in titles
    assert "Test application compatibility against MySQL 8.0" in titles
    assert not any("{" in t.title or "{" in t.description for t in plan.tasks)


def test_cron_jobs_count_and_orchestrator_reach_the_titles() -> None:
    plan = _plan(PlanRequest("Scheduler move", "Move the 12 nightly cron jobs to Airflow."))
    assert plan.domain == "job_scheduler_migration"
    titles = [t.title for t in plan.tasks]
    assert "Port the 12 nightly cron jobs to Airflow DAGs" in titles
    assert "Cut over each job to Airflow and disable its cron entry" in titles


def test_placeholders_fall_back_when_the_brief_is_silent() -> None:
    plan = _plan(PlanRequest("Scheduler move", "Move our crontab jobs onto an orchestrator."))
    assert plan.domain == "job_scheduler_migration"
    titles = [t.title for t in plan.tasks]
    assert "Port the jobs to orchestrator DAGs" in titles
    assert not any("{" in t.title or "}" in t.title for t in plan.tasks)


def test_counts_scale_estimates() -> None:
    few = _plan(PlanRequest("Scheduler move", "Move the 3 nightly cron jobs to Airflow."))
    many = _plan(PlanRequest("Scheduler move", "Move the 40 nightly cron jobs to Airflow."))
    assert _task(many, "/jobs_port").estimated_hours > 5 * _task(few, "/jobs_port").estimated_hours
    assert many.total_effort_hours > few.total_effort_hours


def test_number_of_newcomers_scales_onboarding() -> None:
    one = _plan(PlanRequest("Onboarding", "Onboard a new engineer joining the payments team."))
    five = _plan(PlanRequest("Onboarding", "Onboard 5 new engineers joining the payments team."))
    assert one.domain == five.domain == "team_onboarding"
    assert _task(five, "/onb_environment").estimated_hours > (
        3 * _task(one, "/onb_environment").estimated_hours
    )


def test_team_size_scales_training_estimates() -> None:
    brief = "Set up a CI/CD pipeline with GitHub Actions for our services."
    small = _plan(PlanRequest("CI", brief))
    big = _plan(PlanRequest("CI", brief, context={"team": {"size": 20}}))
    assert _task(big, "/ci_adoption").estimated_hours > _task(small, "/ci_adoption").estimated_hours


def test_nested_context_is_read_as_structure() -> None:
    plan = _plan(
        PlanRequest(
            "Orders DB upgrade",
            "Upgrade the orders database in production.",
            context={
                "database": {"engine": "MySQL", "version": "8.0", "from_version": "5.7"},
                "team": {"size": 5, "lead": "Ana"},
            },
        )
    )
    context = dict(plan.context)
    assert context["database.engine"] == "mysql"
    assert context["team_size"] == "5"
    assert not any("{" in value for value in context.values())  # no str(dict)
    assert any("MySQL 8.0" in t.title for t in plan.tasks)
    assert any("5 parallel worker" in a for a in plan.assumptions)


def test_nested_context_lists_give_counts() -> None:
    services = [{"name": f"svc-{i}"} for i in range(8)]
    plan = _plan(
        PlanRequest(
            "Release",
            "Zero-downtime deployment of the new version to production.",
            context={"services": services},
        )
    )
    assert dict(plan.context)["service_count"] == "8"


def test_context_deadline_timeline_and_budget_act_as_constraints() -> None:
    brief = "Move the 12 nightly cron jobs to Airflow."
    dated = _plan(PlanRequest("Jobs", brief, context={"deadline": "2026-11-16"}))
    assert dated.deadline_hours == 80.0
    assert any(r.name == "deadline" for r in dated.explanation.rules_applied)
    timeline = _plan(PlanRequest("Jobs", brief, context={"project": {"timeline": "1 week"}}))
    assert timeline.deadline_hours == 40.0
    assert any(w.code == "DEADLINE_AT_RISK" for w in timeline.warnings)
    weeks = _plan(PlanRequest("Jobs", brief, context={"timeline": {"weeks": 3}}))
    assert weeks.deadline_hours == 120.0
    budget = _plan(PlanRequest("Jobs", brief, context={"budget": "20 hours"}))
    assert any(w.code == "BUDGET_AT_RISK" for w in budget.warnings)


def test_unreadable_context_budget_is_reported() -> None:
    plan = _plan(PlanRequest("Jobs", "Move the cron jobs to Airflow.", context={"budget": 50000}))
    assert any(
        w.code == "CONSTRAINT_NOT_UNDERSTOOD" and "context.budget" in w.message
        for w in plan.warnings
    )


def test_counts_with_their_nouns() -> None:
    from plansmith_server.planning.slots import find_counts

    found = {
        c.noun: (c.number, c.phrase)
        for c in find_counts(
            "Move the 12 nightly cron jobs, onboard three backend engineers, email 200k "
            "subscribers; within 2 weeks, p95 under 200 ms, version 3.4 of all services",
            0,
        )
    }
    assert found == {
        "job": (12.0, "12 nightly cron jobs"),
        "engineer": (3.0, "three backend engineers"),
        "subscriber": (200000.0, "200k subscribers"),
    }


def test_technologies_with_versions_and_roles() -> None:
    from plansmith_server.planning.slots import extract_slots

    lib = load_library()
    slots = extract_slots(("Migrate from MySQL 5.7 to PostgreSQL 16",), {}, lib.technologies)
    assert slots.render("{database}") == "PostgreSQL 16"
    assert slots.render("{database.source}") == "MySQL"
    assert slots.render("{warehouse|the warehouse}") == "the warehouse"
    upgrade = extract_slots(("Upgrade PostgreSQL 12 to 15",), {}, lib.technologies)
    assert upgrade.render("{database.name} {database.from} -> {database.version}") == (
        "PostgreSQL 12 -> 15"
    )


def test_release_subject_and_version_reach_the_deploy_task() -> None:
    plan = _plan(
        PlanRequest(
            "Deploy application update",
            "Deploy application update",
            requirements=("Release version 2.8.1 of the customer portal",),
            context={"environment": "production", "service": "customer-portal"},
        )
    )
    assert plan.domain == "production_deployment"
    titles = [t.title for t in plan.tasks]
    assert "Deploy customer-portal 2.8.1 to production with a rolling update" in titles
    assert "Rehearse the customer-portal 2.8.1 deployment end-to-end on staging" in titles


def test_people_named_in_the_brief_reach_the_onboarding_tasks() -> None:
    plan = _plan(
        PlanRequest("Onboarding", "Onboard Maria and Tom, two backend engineers joining us.")
    )
    assert plan.domain == "team_onboarding"
    assert any(t.title.endswith("access for Maria and Tom") for t in plan.tasks)


def test_specifics_are_carried_to_the_tasks_they_belong_to() -> None:
    plan = _plan(
        PlanRequest(
            "MySQL 8.0 upgrade",
            "Upgrade the billing database from MySQL 5.7 to MySQL 8.0 on AWS RDS.",
            requirements=("Check the 12 stored procedures for 8.0 incompatibilities",),
            context={"environment": "production"},
        )
    )
    scope = plan.tasks[0]
    # The scoping task lists what no other task carries; the technologies are carried
    # by the tasks of their area, what a requirement names by the tasks covering it.
    for specific in ("MySQL 8.0 (from 5.7)", "Amazon RDS", "12 stored procedures"):
        assert specific not in scope.description.split("Brief specifics:")[-1]
        assert any(specific in f"{t.title} {t.description}" for t in plan.tasks[1:])
    covering = [t for t in plan.tasks if 0 in t.requirement_indexes]
    assert covering and all("12 stored procedures" in t.description for t in covering)
    # A technology goes to the tasks of its area, not to every task.
    approval = next(t for t in plan.tasks if t.source.endswith("/change_approval"))
    assert "MySQL" not in approval.description


def test_a_bi_tool_reaches_the_dashboard_tasks_only() -> None:
    """The dashboards tool is named where the dashboards are built, not in the loads,
    the models or the scoping task (which would put it before the data it reads)."""
    plan = _plan(
        PlanRequest(
            "BigQuery data warehouse",
            "Build a BigQuery data warehouse fed from our Postgres databases.",
            requirements=(
                "Load the orders and payments tables from Postgres every night",
                "Finance dashboards in Looker Studio",
            ),
        )
    )
    assert plan.domain == "data_warehouse"
    naming = [t for t in plan.tasks if "Looker Studio" in f"{t.title} {t.description}"]
    assert any(t.source.endswith("/dwh_dashboards") for t in naming)
    for task in naming:
        assert not task.source.endswith(("/dwh_extract", "/dwh_model", "/dwh_requirements"))
    assert plan.tasks[0] not in naming


def test_the_resources_an_api_serves_name_its_endpoint_work() -> None:
    plan = _plan(
        PlanRequest(
            "Inventory API",
            "Build a REST API for warehouse inventory that our storefronts will call.",
            requirements=("Endpoints for stock levels, reservations and adjustments",),
        )
    )
    endpoints = next(t for t in plan.tasks if t.source.endswith("/api_endpoints"))
    assert "stock levels, reservations and adjustments" in endpoints.title
    # Without endpoint phrases, "an API for ..." names them.
    plan = _plan(PlanRequest("Inventory API", "Build a REST API for warehouse inventory."))
    endpoints = next(t for t in plan.tasks if t.source.endswith("/api_endpoints"))
    assert endpoints.title.endswith("for warehouse inventory")


def test_count_phrases_keep_the_briefs_casing_and_end_at_a_preposition() -> None:
    from plansmith_server.planning.slots import find_counts

    assert [c.phrase for c in find_counts("Migrate our 25 SaaS apps to Okta", 0)] == [
        "25 SaaS apps"
    ]
    assert [c.phrase for c in find_counts("Translate 3,400 UI strings", 0)] == ["3,400 UI strings"]
    found = find_counts("Email our 40,000 subscribers through Mailchimp", 0)
    assert [(c.noun, c.phrase) for c in found] == [("subscriber", "40,000 subscribers")]


def test_a_count_from_the_context_reads_in_the_plural() -> None:
    from plansmith_server.planning.slots import extract_slots

    lib = load_library()
    slots = extract_slots([""], {"endpoint_count": 48, "city_count": 3}, lib.technologies)
    assert sorted(c.phrase for c in slots.counts) == ["3 cities", "48 endpoints"]


def test_a_list_placeholder_names_every_technology_of_its_kind() -> None:
    plan = _plan(
        PlanRequest(
            "Localization",
            "Localize our React web app into German and Japanese.",
            requirements=("Translation management in Lokalise", "Native speakers review"),
        )
    )
    assert plan.domain == "localization"
    assert any(t.title == "Translate into German and Japanese" for t in plan.tasks)


def test_money_amounts_are_the_spend_and_its_target() -> None:
    from plansmith_server.planning.slots import extract_slots

    lib = load_library()
    slots = extract_slots(
        ["Reduce our AWS bill from 62,000 USD to under 45,000 USD a month."], {}, lib.technologies
    )
    assert (slots.spend, slots.spend_target) == ("62,000 USD", "45,000 USD a month")
    slots = extract_slots(["Save $40k/month on Datadog"], {}, lib.technologies)
    assert (slots.spend, slots.spend_target) == ("", "$40k/month")
    plan = _plan(
        PlanRequest(
            "Cut the AWS bill",
            "Reduce our AWS bill from 62,000 USD to under 45,000 USD a month without hurting "
            "reliability.",
            requirements=("Find the biggest cost drivers by service and team",),
        )
    )
    assert plan.domain == "cost_reduction"
    baseline = next(t for t in plan.tasks if t.source.endswith("/cost_baseline"))
    assert "today 62,000 USD; target 45,000 USD a month" in baseline.description


def test_context_from_and_to_name_tools_not_versions() -> None:
    from plansmith_server.planning.slots import extract_slots

    lib = load_library()
    slots = extract_slots(
        ["Move from Jira to Linear"], {"from": "Jira Cloud", "to": "Linear"}, lib.technologies
    )
    assert [t.label for t in slots.techs if t.technology.key == "linear"] == ["Linear"]
    # A version still reads as one.
    slots = extract_slots(
        ["Upgrade the database"],
        {"database": {"engine": "MySQL", "from": "5.7", "to": "8.0"}},
        lib.technologies,
    )
    mysql = next(t for t in slots.techs if t.technology.key == "mysql")
    assert (mysql.version, mysql.from_version) == ("8.0", "5.7")


def test_a_count_in_words_at_a_sentence_start_reads_in_lower_case() -> None:
    from plansmith_server.planning.slots import find_counts

    assert [c.phrase for c in find_counts("Three emails: teaser and launch", 0)] == ["three emails"]


def test_the_chosen_ci_system_names_the_runner_setup() -> None:
    plan = _plan(
        PlanRequest(
            "CI/CD with GitHub Actions",
            "Set up CI/CD with GitHub Actions for our Django monolith.",
        )
    )
    assert plan.domain == "cicd_pipeline"
    assert "Set up GitHub Actions runners, caching and secrets" in [t.title for t in plan.tasks]


def test_product_releases_the_brief_names_reach_the_tasks() -> None:
    plan = _plan(
        PlanRequest(
            "Operator handbook",
            "Write an operator handbook for our self-hosted monitoring appliance.",
            requirements=("Upgrade guide for the 3.x versions",),
            constraints=("Publish it with release 3.4 on 2027-05-03",),
        )
    )
    texts = [f"{t.title} {t.description}" for t in plan.tasks]
    covering = [t for t in plan.tasks if 0 in t.requirement_indexes]
    assert covering and all("3.x" in t.description.split("In this brief:")[-1] for t in covering)
    # A deadline names its target, but the release it ships with is part of the scope.
    assert any("release 3.4" in text for text in texts)


def test_named_parts_and_roles_of_the_description_are_specifics() -> None:
    from plansmith_server.planning.slots import specifics_of

    techs = load_library().technologies
    said = specifics_of(
        "Checkout slowed down after this week's tax-rules plugin update; our new gift-card "
        "feature must keep working.",
        techs,
    )
    assert "tax-rules plugin" in said and "new gift-card feature" in said
    assert "Director of Platform Engineering" in specifics_of(
        "Recruit a Director of Platform Engineering for the Berlin office.", techs
    )
    assert "head of finance" in specifics_of("Hire a head of finance and two accountants.", techs)
    # A bare general noun is not a specific ("the tools", "our process").
    assert not [s for s in specifics_of("Review the tools and our process.", techs)]


def test_a_named_part_reaches_a_task_of_the_plan() -> None:
    plan = _plan(
        PlanRequest(
            "Slow checkout",
            "Our shop's checkout takes 8 seconds since we installed the new tax-rules plugin.",
            requirements=("Find out where the time goes",),
            context={"environment": "production"},
        )
    )
    assert plan.domain == "performance_troubleshooting"
    assert any("tax-rules plugin" in t.description for t in plan.tasks)


def test_a_requirement_covered_by_the_whole_compound_names_its_specifics_once() -> None:
    plan = _plan(
        PlanRequest(
            "Operator handbook",
            "Write an operator handbook for our self-hosted monitoring appliance.",
            requirements=("Configuration reference for all 75 settings",),
        )
    )
    covering = [t for t in plan.tasks if 0 in t.requirement_indexes]
    assert len(covering) > 3  # the whole documentation compound serves it
    naming = [t for t in plan.tasks if "75 settings" in t.description]
    # Said where the reference is written, not on the screenshots and the review.
    assert len(naming) == 1


def test_a_capital_letter_closing_a_name_stays_with_it() -> None:
    from plansmith_server.planning.slots import specifics_of

    techs = load_library().technologies
    assert "Annex A" in specifics_of("Map the Annex A controls", techs)
    assert "Vitamin C" in specifics_of("Add Vitamin C to the label", techs)


def test_possessive_place_names_stay_whole() -> None:
    from plansmith_server.planning.slots import specifics_of

    techs = load_library().technologies
    said = specifics_of("Move the office from Shoreditch to the floor at King's Cross.", techs)
    assert "King's Cross" in said and "Cross" not in said
    # A possessive that ends a name is not part of it.
    assert "Google" in specifics_of("The team uses Google's API.", techs)


def test_the_edition_of_a_standard_is_kept_with_it() -> None:
    plan = _plan(
        PlanRequest(
            "Customer asks for a report",
            "Acme Health will not sign until we hand them a SOC 2 Type II report.",
            requirements=("Quarterly access reviews",),
        )
    )
    assert plan.domain == "compliance_audit"
    assert any("SOC 2 Type II" in t.title for t in plan.tasks)


def test_error_codes_and_roles_without_capitals_are_specifics() -> None:
    from plansmith_server.planning.slots import specifics_of

    techs = load_library().technologies
    said = specifics_of("The payment service returned 502s and users saw HTTP 503.", techs)
    assert "502s" in said and "HTTP 503" in said
    said = specifics_of("Hire 4 backend engineers and 1 engineering manager.", techs)
    assert "engineering manager" in said
    # Counts, durations and latencies stay what they are.
    said = specifics_of("We have 500 employees and a 400 ms budget.", techs)
    assert "500 employees" in said and "400 ms" in said


def test_a_size_in_the_context_is_not_a_count_of_things() -> None:
    from plansmith_server.planning.slots import extract_slots

    techs = load_library().technologies
    slots = extract_slots(["Move the office"], {"team_size": 2, "staff": 120}, techs)
    assert [c.phrase for c in slots.counts] == ["120 staff"]


def test_a_ranked_count_is_still_a_count() -> None:
    from plansmith_server.planning.slots import extract_slots

    techs = load_library().technologies
    slots = extract_slots(["Troubleshooting built from the top 30 support tickets"], {}, techs)
    assert [c.phrase for c in slots.counts] == ["30 support tickets"]


def test_a_target_version_written_apart_from_the_name_is_the_upgrade_target() -> None:
    from plansmith_server.planning.slots import extract_slots

    techs = load_library().technologies

    def labels(text: str) -> list[tuple[str, str]]:
        return [(t.label, t.from_version) for t in extract_slots([text], {}, techs).techs]

    assert labels("Our Postgres 11 cluster is out of support. Upgrade it to 16.") == [
        ("PostgreSQL 16", "11")
    ]
    # A count or a measure after "to" is not a version.
    assert labels("Our Kafka 2.8 cluster: grow it to 16 brokers") == [("Kafka 2.8", "")]
    assert labels("We run Postgres 14; get p95 down to 200 ms") == [("PostgreSQL 14", "")]


def test_where_things_are_today_is_not_where_they_go() -> None:
    plan = _plan(
        PlanRequest(
            "Region outage",
            "All our infrastructure is in eu-central-1. Set up disaster recovery with a warm "
            "standby in a second region.",
            requirements=("RTO 4 hours, RPO 15 minutes",),
        )
    )
    assert plan.domain == "disaster_recovery"
    design = _task(plan, "/dr_architecture")
    assert design.title == "Design the failover from eu-central-1 to the recovery region"


def test_english_is_the_source_language_not_a_target() -> None:
    plan = _plan(
        PlanRequest(
            "Help centre in Spanish",
            "Translate our English help centre and in-app messages into Spanish and Portuguese.",
        )
    )
    translate = _task(plan, "/l10n_translate")
    assert translate.title == "Translate into Spanish and Portuguese"
    assert "from English" in translate.description


def test_the_scheduler_jobs_leave_is_named_in_the_cutover() -> None:
    plan = _plan(
        PlanRequest(
            "Windows jobs",
            "Move our 40 Windows Task Scheduler jobs that feed the finance reports onto Airflow.",
        )
    )
    assert plan.domain == "job_scheduler_migration"
    cutover = _task(plan, "/jobs_cutover")
    assert cutover.title == (
        "Cut over each job to Airflow and disable its Windows Task Scheduler entry"
    )
