"""The routing file: the committed example loads, rules route as documented, and every
mistake is a start-up error naming the file and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plansmith_server.backends import config
from plansmith_server.backends.routing import Budget, RouteRequest, choose

EXAMPLE = Path(__file__).parents[2] / "examples" / "routing.toml"
ENV = {"OPENAI_API_KEY": "sk-example"}


def example() -> config.RoutingConfig:
    return config.parse(EXAMPLE.read_text(), str(EXAMPLE), ENV)


def test_the_example_loads_and_routes_as_its_comments_say():
    cfg = example()
    assert list(cfg.backends) == ["local", "openai"]
    assert cfg.backends["local"].structured_output == "ollama_format"
    prod = RouteRequest(
        "generate", "Migrate the orders DB", 1, {"environment": "production"}, Budget()
    )
    route = choose(cfg, prod)
    assert (route.rule, route.chain) == ("production migrations", ("openai", "local", "embedded"))
    assert route.options == {"temperature": 0.1}
    staging = RouteRequest("generate", "Migrate the orders DB", 1, {"environment": "staging"})
    assert choose(cfg, staging).chain == ("local", "embedded")
    big = RouteRequest("generate", "A shop", 6, {}, Budget(max_cost=0.1))
    assert choose(cfg, big).rule == "large briefs"
    assert choose(cfg, RouteRequest("generate", "A shop", 6, {}, Budget())).rule == "default"
    assert choose(cfg, RouteRequest("estimate", "A shop", 6, {}, Budget(0.1))).rule == "default"
    assert choose(cfg, big, "embedded").chain == ("embedded",)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("[backends.a]\nkind = 'openai'\nmodel = \n", 3, "not valid TOML"),
        (
            "[backends.a]\nbase_url = 'http://x'\nmodel = 'm'\n\n[[rules]]\nname = 'r'\n"
            "backend = 'b'\n",
            7,
            "unknown backend 'b'; configured: a, embedded",
        ),
        (
            "[backends.a]\nbase_url = 'http://x'\nmodel = 'm'\n[[rules]]\nbackend = 'a'\n"
            "fallback = ['a', 'zz']\n",
            6,
            "unknown backend 'zz'",
        ),
        (
            "\n[backends.a]\nbase_url = 'http://x'\nmodel = 'm'\napi_key_env = 'NOPE_KEY'\n",
            2,
            "NOPE_KEY (api_key_env) is not set",
        ),
        ("[backends.a]\nbase_url = 'http://x'\nmodel = 'm'\ncolour = 1\n", 1, "unknown key"),
        (
            "[backends.a]\nbase_url = 'http://x'\nmodel = 'm'\nstructured_output = 'xml'\n",
            1,
            "structured_output must be one of",
        ),
    ],
)
def test_mistakes_name_the_file_and_line(text, line, problem):
    with pytest.raises(config.RoutingConfigError) as e:
        config.parse(text, "rules.toml", {})
    assert str(e.value).startswith(f"rules.toml:{line}: "), str(e.value)
    assert problem in str(e.value)


def test_the_environment_defines_one_backend_with_the_embedded_fallback():
    assert config.load({}) is None
    env = {
        "PLANSMITH_LLM_BASE_URL": "http://127.0.0.1:1/v1",
        "PLANSMITH_LLM_MODEL": "m",
        "OPENAI_API_KEY": "k",
    }
    cfg = config.load(env)
    assert cfg is not None and list(cfg.backends) == ["llm"]
    assert choose(cfg, RouteRequest("generate", "x")).chain == ("llm", "embedded")
    with pytest.raises(config.RoutingConfigError, match="OPENAI_API_KEY"):
        config.load({**env, "OPENAI_API_KEY": ""})


def test_the_server_refuses_to_start_with_a_bad_file(tmp_path):
    bad = tmp_path / "rules.toml"
    bad.write_text("[backends.a]\nbase_url = 'http://x'\nmodel = 'm'\n[[rules]]\nbackend = 'q'\n")
    r = subprocess.run(
        [sys.executable, "-m", "plansmith_server", "--listen", "127.0.0.1:0", "--db", ":memory:"],
        env={"PLANSMITH_ROUTING_RULES": str(bad), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"{bad}:5: rule 'rule 1': unknown backend 'q'" in r.stderr
