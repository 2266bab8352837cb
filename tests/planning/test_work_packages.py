"""Work packages inside a recognized plan: named by the requirement's main clause,
placed beside the library task they resemble, carrying what the requirement names; and
orderings that tag tasks by the words leading their titles."""

from __future__ import annotations

from datetime import date

from plansmith_server.planning import PlanRequest, generate_plan, load_library, validate_plan
from plansmith_server.planning.workpackage import headline

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


def _work_packages(plan):
    return [t for t in plan.tasks if t.source == "generic:work_package"]


def test_headline_is_the_main_clause_without_its_qualifiers() -> None:
    assert headline("Shift calendar with a cap of volunteers per shift") == "Shift calendar"
    assert headline("Scan a QR code at the till to collect a stamp") == "Scan a QR code"
    assert headline("Staging environment for the partners") == "Staging environment"
    assert headline("Answering chats alone by the end of week two") == "Answering chats alone"
    # A one-word clause is no title: the cut moves on, or the text stays whole.
    assert headline("Cope with late and duplicated readings") == (
        "Cope with late and duplicated readings"
    )
    assert headline("claim status timeline") == "Claim status timeline"


BACKUPS = PlanRequest(
    name="Trustworthy backups",
    description=(
        "Make sure we can recover our file servers after a ransomware attack with immutable "
        "backups."
    ),
    requirements=("Quarterly restore tests with a written report",),
    context={"environment": "production"},
)


def test_work_package_of_a_recognized_plan_is_titled_by_its_main_clause() -> None:
    plan = generate_plan(BACKUPS, now=NOW)
    assert plan.domain == "disaster_recovery"
    (package,) = _work_packages(plan)
    assert package.title == "Quarterly restore tests"
    # The whole requirement is still there, in the description.
    assert "Quarterly restore tests with a written report" in package.description


def test_work_package_sits_beside_the_library_task_it_resembles() -> None:
    plan = generate_plan(BACKUPS, now=NOW)
    (package,) = _work_packages(plan)
    by_source = {t.source.rsplit("/", 1)[-1]: t.id for t in plan.tasks}
    # It waits for what the library's restore tests wait for (the backups exist) ...
    assert by_source["dr_backup_setup"] in _ancestors(plan, package.id)
    # ... and the recovery drill waits for it.
    assert package.id in _ancestors(plan, by_source["dr_restore_drill"])
    assert validate_plan(plan) == []


ROTA = PlanRequest(
    name="Volunteer rota web app",
    description="Build a web application where our volunteers pick shifts.",
)


def test_what_a_work_package_names_is_said_outside_its_quoted_requirement() -> None:
    plan = generate_plan(
        PlanRequest(
            ROTA.name,
            ROTA.description,
            requirements=("Contacts kept in step with the Salesforce and HubSpot lists",),
        ),
        now=NOW,
    )
    assert plan.domain == "web_application"
    (package,) = _work_packages(plan)
    assert package.title == "Contacts kept in step"
    said = package.description.split("In this brief:", 1)
    assert len(said) == 2 and "Salesforce" in said[1] and "HubSpot" in said[1]


def test_ordering_words_tag_tasks_by_what_their_titles_lead_with() -> None:
    library = load_library()
    pilot = next(o for o in library.orderings if o.name == "pilot_before_rollout")
    assert pilot.before_words and pilot.after_words
    plan = generate_plan(
        PlanRequest(
            ROTA.name,
            ROTA.description,
            requirements=(
                "Pilot the shift sign-up with 20 volunteers",
                "Cut over the rota spreadsheet to the shift sign-up",
            ),
        ),
        now=NOW,
    )
    pilot_task, cutover = _work_packages(plan)
    assert pilot_task.title.startswith("Pilot") and cutover.title.startswith("Cut over")
    assert "pilot" in pilot_task.tags and "rollout" in cutover.tags
    assert pilot_task.id in _ancestors(plan, cutover.id)
    assert validate_plan(plan) == []


def test_words_that_only_qualify_a_title_do_not_tag_it() -> None:
    plan = generate_plan(
        PlanRequest(
            name="Move the support desk to Intercom",
            description="Migrate our support desk from Zendesk to Intercom.",
        ),
        now=NOW,
    )
    training = next(t for t in plan.tasks if t.title.startswith("Train the users"))
    assert "switch-over" in training.title
    assert "rollout" not in training.tags


def test_a_constraint_gives_its_specifics_to_the_task_it_resembles() -> None:
    plan = generate_plan(
        PlanRequest(
            name="Orders API",
            description="Build a REST API for the orders of our shop.",
            constraints=("Load testing with Gatling at 2x the Black Friday peak",),
        ),
        now=NOW,
    )
    load_test = next(t for t in plan.tasks if t.source.endswith("/api_load_test"))
    assert "Gatling" in load_test.description
    # Not in the scoping task, where it would read as the first thing to do.
    assert "Gatling" not in plan.tasks[0].description


def test_parts_are_the_separate_things_a_requirement_asks_for() -> None:
    from plansmith_server.planning.workpackage import parts

    assert parts("Photo capture and customer signature") == ["photo capture", "customer signature"]
    assert parts("API keys per agency with usage limits") == ["API keys per agency", "usage limits"]
    assert parts("Handle 3,000 events per second") == ["handle 3,000 events per second"]
    assert parts("Nightly loads from the Salesforce and HubSpot APIs")[1:] == ["HubSpot APIs"]


HOTEL_API = PlanRequest(
    name="Hotel partner API",
    description="Build a REST API for travel agencies to book rooms in our hotels.",
    requirements=("API keys per agency with usage limits", "Room photos and floor plans"),
)


def test_a_work_package_lists_its_parts() -> None:
    plan = generate_plan(HOTEL_API, now=NOW)
    (package,) = _work_packages(plan)
    assert "Its parts: room photos; floor plans." in package.description
    assert "Delivered and checked: floor plans" in package.acceptance_criteria


def test_what_a_covering_library_task_does_not_say_is_written_into_it() -> None:
    plan = generate_plan(HOTEL_API, now=NOW)
    (coverage, _) = plan.explanation.requirement_coverage
    assert coverage.match == "library_task"
    auth = next(t for t in plan.tasks if t.id in coverage.task_ids)
    assert "Also asked (requirements[0]): API keys per agency; usage limits." in auth.description


CLICKS = PlanRequest(
    name="Clickstream stream",
    description=(
        "Build a streaming pipeline that reads click events from Kafka, joins them with "
        "campaign data and writes sessions to ClickHouse."
    ),
    requirements=("Sustain 5,000 events per second at the evening peak",),
)


def test_a_stated_rate_is_verified_by_a_load_test_before_the_release() -> None:
    plan = generate_plan(CLICKS, now=NOW)
    assert plan.domain == "data_pipeline"
    (load_test,) = [t for t in plan.tasks if t.source == "generic:stated_targets"]
    assert "5,000 events per second at the evening peak" in load_test.description
    assert 0 in load_test.requirement_indexes
    processing = next(t for t in plan.tasks if t.source.endswith("/data_stream_processing"))
    release = next(t for t in plan.tasks if t.source.endswith("/data_release"))
    assert processing.id in _ancestors(plan, load_test.id)
    assert load_test.id in _ancestors(plan, release.id)
    assert validate_plan(plan) == []


def test_no_second_load_test_when_the_plan_has_one() -> None:
    plan = generate_plan(
        PlanRequest(
            name="Orders API",
            description="Build a REST API for the orders of our shop.",
            requirements=("p95 latency under 200 ms at 400 requests per second",),
        ),
        now=NOW,
    )
    assert not [t for t in plan.tasks if t.source == "generic:stated_targets"]


def test_a_clause_no_task_speaks_of_is_written_into_the_work_it_belongs_to() -> None:
    plan = generate_plan(CLICKS, now=NOW)
    processing = next(t for t in plan.tasks if t.source.endswith("/data_stream_processing"))
    assert "Also in the brief: joins them with campaign data." in processing.description
    # The first clause is what the whole plan is about: not repeated anywhere.
    assert not any("Also in the brief: Build a streaming" in t.description for t in plan.tasks)


def test_what_the_brief_replaces_is_retired_after_the_switch() -> None:
    plan = generate_plan(
        PlanRequest(
            name="Fraud model",
            description=(
                "Deliver a real-time fraud scoring model that replaces the static rules "
                "engine for card payments."
            ),
        ),
        now=NOW,
    )
    (retire,) = [t for t in plan.tasks if t.source == "generic:retire_replaced"]
    assert "static rules engine" in retire.title and "retire" in retire.tags
    shadow = next(t for t in plan.tasks if t.source.endswith("/ml_shadow"))
    assert shadow.id in _ancestors(plan, retire.id)
    assert validate_plan(plan) == []


def test_data_read_from_a_system_does_not_retire_it() -> None:
    plan = generate_plan(
        PlanRequest(
            name="Warehouse",
            description="Build a BigQuery data warehouse fed from our Postgres databases.",
        ),
        now=NOW,
    )
    assert not [t for t in plan.tasks if t.source == "generic:retire_replaced"]


def test_a_requirement_to_switch_the_old_system_off_comes_last() -> None:
    plan = generate_plan(
        PlanRequest(
            name="A real website",
            description="Replace our Wix site with a new marketing website for the bakery.",
            requirements=("Wix switched off at the end",),
        ),
        now=NOW,
    )
    (package,) = _work_packages(plan)
    assert "retire" in package.tags
    # After everything the plan builds and verifies, the launch included.
    for suffix in ("/web_pages", "/web_testing", "/web_launch"):
        built = next(t for t in plan.tasks if t.source.endswith(suffix))
        assert built.id in _ancestors(plan, package.id)
    # The requirement is the retirement: no second one is added.
    assert not [t for t in plan.tasks if t.source == "generic:retire_replaced"]


def test_a_work_package_resembling_two_tasks_equally_waits_with_the_later() -> None:
    plan = generate_plan(
        PlanRequest(
            name="Shop in three languages",
            description="Localize our web shop into French, German and Italian before launch.",
            # Resembles the translation tool's setup and the translation equally.
            requirements=("Translation vendor invoices checked monthly",),
        ),
        now=NOW,
    )
    (package,) = _work_packages(plan)
    glossary = next(t for t in plan.tasks if t.source.endswith("/l10n_glossary"))
    # Placed with the translation (which waits for the glossary), not with the
    # translation tool's setup it resembles as much.
    assert glossary.id in _ancestors(plan, package.id)
