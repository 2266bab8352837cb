"""Request types of the text-to-SQL example and the paths the embedded planner must plan
(written before the planner: the table is the specification)."""

from __future__ import annotations

import pytest

from plansmith_server.flows.embedded import plan_embedded
from plansmith_server.flows.graph import Graph
from tests.flows.example import text_to_sql

DATA = (
    "classify_prompt",
    "rewrite_prompt",
    "get_relevant_tables",
    "trim_relevant_tables",
    "generate_sql",
    "validate_sql",
    "execute_sql",
    "format_final_response",
)
DATA_APPROVED = (
    "classify_prompt",
    "rewrite_prompt",
    "get_relevant_tables",
    "has_user_approved",
    "trim_relevant_tables",
    "generate_sql",
    "validate_sql",
    "execute_sql",
    "format_final_response",
)
GIVEN_SQL = ("classify_prompt", "validate_sql", "execute_sql", "format_final_response")
GENERAL = ("classify_prompt", "general_questions", "format_final_response")

CASES = [
    # (request type, message, state, expected path)
    ("count question", "How many orders shipped last month?", {}, DATA),
    ("ranking question", "Show the top 10 customers by total revenue this year", {}, DATA),
    ("listing question", "List all users who signed up last week", {}, DATA),
    (
        "data question needing approval",
        "What is the average order value per month?",
        {"requires_approval": True},
        DATA_APPROVED,
    ),
    (
        "data question, approval off",
        "Which products sold most in March?",
        {"requires_approval": False},
        DATA,
    ),
    ("fix given SQL", "Fix this SQL: SELECT name FORM users WHERE id = 3", {}, GIVEN_SQL),
    (
        "run given SQL",
        "Run this query: SELECT count(*) FROM orders WHERE status = 'shipped'",
        {},
        GIVEN_SQL,
    ),
    ("greeting", "Hello! What can you do?", {}, GENERAL),
    ("concept question", "What is a foreign key? Explain it simply.", {}, GENERAL),
    ("thanks", "Thanks, that was helpful", {}, GENERAL),
    (
        "already classified as general: the state decides over the words",
        "How many orders shipped last month?",
        {"intent": "general"},
        GENERAL,
    ),
]


@pytest.mark.parametrize(
    ("message", "state", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_request_type_gets_expected_path(message, state, expected):
    g = Graph(text_to_sql())
    path = plan_embedded(g, message, state)
    assert path.nodes == expected
    assert path.check.valid
    assert path.planner == "embedded"
    skipped = {s.node for s in path.skipped}
    assert skipped == set(g.names) - set(expected)
    assert all(s.reason for s in path.skipped)
    assert [h.node for h in path.hops] == list(expected)


def test_data_path_records_its_assumptions():
    g = Graph(text_to_sql())
    path = plan_embedded(g, "How many orders shipped last month?", {})
    assumed = {(a.from_node, a.to_node): a for a in path.check.assumptions}
    assert assumed[("classify_prompt", "rewrite_prompt")].condition == (
        'state.intent == "data_question"'
    )
    assert assumed[("classify_prompt", "rewrite_prompt")].unknown_keys == (
        "intent (classify_prompt)",
    )
    # requires_approval is an initial state key the request did not give: assumed too.
    assert ("get_relevant_tables", "trim_relevant_tables") in assumed
    assert ("validate_sql", "execute_sql") in assumed


def test_state_known_now_is_checked_not_assumed():
    g = Graph(text_to_sql())
    path = plan_embedded(g, "How many orders shipped?", {"requires_approval": False})
    assumed = {(a.from_node, a.to_node) for a in path.check.assumptions}
    assert ("get_relevant_tables", "trim_relevant_tables") not in assumed
    assert path.check.conditions_checked >= 1


def test_confidence_is_the_share_of_the_evidence_on_the_path():
    from plansmith_server.flows.embedded import relevance

    g = Graph(text_to_sql())
    assert plan_embedded(g, "zzz qqq", {}).confidence == 0.0  # nothing matched
    assert plan_embedded(g, "How many orders shipped last month?", {}).confidence == 1.0
    message = "Explain the SQL join, then how many orders shipped"
    path = plan_embedded(g, message, {})
    rel = relevance(g, message, {})
    on_path = {g.index[n] for n in path.nodes}
    share = sum(rel.scores[i] for i in rel.needed & on_path) / sum(
        rel.scores[i] for i in rel.needed
    )
    assert 0 < path.confidence < 1
    assert path.confidence == round(share, 4)
    # The needed node the path leaves out says so.
    left_out = [s for s in path.skipped if g.index[s.node] in rel.needed]
    assert left_out and all("matches the request" in s.reason for s in left_out)
