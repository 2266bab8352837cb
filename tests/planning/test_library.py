"""The packaged library loads; broken libraries are rejected with file and entry named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plansmith_server.planning import LibraryError, load_library, validate_library
from plansmith_server.planning.library import DEFAULT_LIBRARY_DIR

DOMAINS = {
    "web_application",
    "backend_api_service",
    "mobile_app",
    "data_pipeline",
    "database_migration",
    "production_deployment",
    "incident_response",
    "kubernetes_platform",
    "cicd_pipeline",
    "monitoring_alerting",
    "security_review",
    "team_onboarding",
    "monolith_to_microservices",
}

GOOD_PRIMITIVE = """
[primitive.{name}]
title = "Title {name}"
description = "Does {name}."
stage = "{stage}"
capabilities = ["backend"]
estimate = [1, 2, 3]
priority = "HIGH"
acceptance = ["done"]
"""


def _write(tmp_path: Path, text: str, name: str = "broken.toml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def _compound(subtasks: str, after: str = "", name: str = "c1") -> str:
    return f"""
[compound.{name}]
title = "C"
description = "A compound."
domain = "x"
keywords = ["x"]

[[compound.{name}.method]]
name = "m"
description = "The method."
subtasks = {subtasks}
{after}
"""


def test_packaged_library_covers_domains_and_is_cached() -> None:
    lib = load_library()
    assert DOMAINS <= set(lib.compounds)
    assert load_library() is lib
    assert len(lib.primitives) > 100
    for compound in lib.compounds.values():
        for method in compound.methods:
            assert lib.expansion(compound.name, method.name)


def test_valid_minimal_library(tmp_path: Path) -> None:
    text = GOOD_PRIMITIVE.format(name="a", stage="plan") + GOOD_PRIMITIVE.format(
        name="b", stage="build"
    )
    text += _compound('["a", "b"]', 'after.b = ["a"]')
    lib = validate_library(_write(tmp_path, text))
    assert set(lib.primitives) == {"a", "b"}


TECH = """
[technology.mysql]
name = "MySQL"
kind = "database"
"""


def test_schema_extensions_load(tmp_path: Path) -> None:
    text = (
        GOOD_PRIMITIVE.format(name="a", stage="plan").replace(
            "Title a", "Upgrade {database|the database} for {count:users|everyone}"
        )
        + 'tags = ["training"]\nsteps = ["One", { title = "Two {database.version}", weight = 2 }]\n'
    )
    text += 'scale = [{ key = "count:users", per_unit = 0.1, max = 2 }, '
    text += '{ key = "team_size", per_unit = 0.2, max = 3 }]\n'
    text += GOOD_PRIMITIVE.format(name="b", stage="build") + 'tags = ["access_grant"]\n'
    text += _compound('["a", "b"]', 'after.b = ["a"]').replace(
        'keywords = ["x"]',
        'keywords = ["x"]\nevidence = ["upgrade"]\nnegative = ["warehouse"]\n'
        'change = "the move to {database}"',
    )
    text += TECH + 'aliases = ["my sql"]\n'
    text += '[[ordering]]\nname = "o"\ndescription = "d"\nbefore = ["training"]\n'
    text += 'after = ["access_grant"]\n'
    lib = validate_library(_write(tmp_path, text))
    a = lib.primitives["a"]
    assert [s.weight for s in a.steps] == [1.0, 2.0]
    assert [r.keys for r in a.scales] == [("count:user",), ("team_size",)]
    assert lib.technologies["mysql"].aliases == ("my sql", "mysql")
    assert lib.orderings[0].before == ("training",)
    c1 = lib.compounds["c1"]
    assert c1.evidence_found(("upgrad",)) == ("upgrade",)
    assert c1.negatives_found(("big", "warehous")) == ("warehouse",)
    assert c1.change == "the move to {database}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan").replace('priority = "HIGH"\n', ""),
            "missing field(s) priority",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan").replace("[1, 2, 3]", "[3, 2, 1]"),
            "optimistic <= most_likely",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan").replace("[1, 2, 3]", "[0, 2, 3]"),
            "positive",
        ),
        (GOOD_PRIMITIVE.format(name="a", stage="plan").replace("[1, 2, 3]", "[1, 2]"), "estimate"),
        (GOOD_PRIMITIVE.format(name="a", stage="someday"), "stage 'someday'"),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan").replace("acceptance", "acceptence"),
            "unknown field(s) acceptence",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan").replace('"HIGH"', '"URGENT"'),
            "priority 'URGENT'",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan") + _compound('["a", "zzz"]'),
            "subtask 'zzz'",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan")
            + _compound('["a"]', 'after.a = ["ghost"]'),
            "'ghost'",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan")
            + GOOD_PRIMITIVE.format(name="b", stage="plan")
            + _compound('["a", "b"]', 'after.a = ["b"]\nafter.b = ["a"]'),
            "cycle",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="build")
            + GOOD_PRIMITIVE.format(name="b", stage="plan")
            + _compound('["a", "b"]', 'after.b = ["a"]'),
            "go back in stage",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan")
            + _compound('["a", "c2"]', name="c1")
            + _compound('["a", "c1"]', name="c2"),
            "expand into each other",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan").replace("Title a", "Move {gizmo}"),
            "placeholder '{gizmo}' names no technology kind",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan").replace("Title a", "Port {count:}"),
            "count placeholders are",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan") + TECH + TECH.replace("mysql]", "my2]"),
            "alias 'mysql' is already used",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan")
            + '[[ordering]]\nname = "o"\ndescription = "d"\nbefore = ["training"]\n'
            'after = ["access_grant"]\n',
            "no primitive has the tag 'training'",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan") + 'steps = ["only one"]\n',
            "at least two steps",
        ),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan")
            + _compound('["a"]').replace(
                'keywords = ["x"]', 'keywords = ["x"]\nevidence = ["the"]'
            ),
            "has no content words",
        ),
        ("[primitive.a\ntitle = 1", "invalid TOML"),
        ("[other]\nx = 1", "unknown top-level key"),
        (
            GOOD_PRIMITIVE.format(name="a", stage="plan")
            + '[[rule]]\nname = "r"\ndescription = "d"\nwhen = { environment = "production" '
            '}\ntargets = ["x"]\nbefore = ["nope"]\n',
            "unknown primitive 'nope'",
        ),
    ],
)
def test_broken_entries_name_file_and_entry(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(LibraryError) as info:
        validate_library(_write(tmp_path, text))
    message = str(info.value)
    assert "broken.toml" in message
    assert fragment in message


def test_broken_entry_message_names_the_entry(tmp_path: Path) -> None:
    text = GOOD_PRIMITIVE.format(name="db_backup", stage="plan").replace("[1, 2, 3]", "[5, 2, 3]")
    with pytest.raises(LibraryError, match=r"broken\.toml: primitive 'db_backup': estimate"):
        validate_library(_write(tmp_path, text))


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    _write(tmp_path, GOOD_PRIMITIVE.format(name="a", stage="plan"), "one.toml")
    _write(tmp_path, GOOD_PRIMITIVE.format(name="a", stage="plan"), "two.toml")
    with pytest.raises(
        LibraryError,
        match=r"two\.toml: primitive 'a': duplicate name \(already defined as primitive in "
        r"one\.toml\)",
    ):
        validate_library(tmp_path)


def test_copy_of_packaged_library_with_one_broken_file(tmp_path: Path) -> None:
    shutil.copytree(DEFAULT_LIBRARY_DIR, tmp_path / "lib")
    path = tmp_path / "lib" / "web.toml"
    path.write_text(
        path.read_text().replace(
            'after.web_launch = ["web_quality", "web_testing"]',
            'after.web_launch = ["web_quality", "web_nope"]',
        )
    )
    with pytest.raises(
        LibraryError, match=r"web\.toml: compound 'web_application' method 'design_build_launch'"
    ):
        validate_library(tmp_path / "lib")


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match=r"no \*\.toml"):
        validate_library(tmp_path)
