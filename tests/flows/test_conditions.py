"""The condition language: what parses, what it means, and what is refused (with where)."""

from __future__ import annotations

import pytest

from plansmith_server.flows import conditions as c

TRUE_ON = {"is_sql": True, "intent": "sql_provided", "n": 3, "tags": ["a", "b"], "o": {"k": 1}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state.is_sql == true", True),
        ('"sql" in state.intent', True),
        ('"general" in state.intent', False),
        ('state.intent == "sql_provided" and state.n > 2', True),
        ("state.n >= 4 or not state.is_sql", False),
        ("not (state.n < 3)", True),
        ('"a" in state.tags and "c" not in state.tags', True),
        ("state.o.k == 1", True),
        ("state.missing == null", True),
        ("state.missing", False),
        ("state.n == 3.0", True),
        ("state.is_sql == 1", False),  # true is not 1
        ('state.n < "4"', False),  # numbers and strings do not order
        ("state.intent != 'general'", True),
        ('state.intent == "sql_\\"x"', False),
    ],
)
def test_evaluates(text, expected):
    assert c.compile_condition(text).holds(TRUE_ON) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("state.is_sql ==", "expected a value, found the end"),
        ("state.", "expected a key after '.'"),
        ("__import__('os')", "unknown name '__import__'"),
        ("state.a == 1 extra", "unexpected 'extra'"),
        ("(state.a == 1", "expected ')'"),
        ("state.a = 1", "unexpected character '='"),
        ("", "is empty"),
        ("x" * 501, "at most 500"),
        ("not " * 9 + "state.a", "nested deeper than 8 levels"),
        ("(" * 9 + "state.a" + ")" * 9, "nested deeper than 8 levels"),
    ],
)
def test_refuses(text, message):
    with pytest.raises(c.ConditionError) as e:
        c.parse(text)
    assert message in str(e.value)


def test_deepest_allowed_nesting_parses():
    assert c.compile_condition("not " * 8 + "state.a").holds({"a": True}) is True


def test_keys_are_the_top_level_state_keys_read():
    assert c.compile_condition('state.a.b == 1 or "x" in state.c').keys == {"a", "c"}
