"""Backends and routing rules: the TOML file (`PLANSMITH_ROUTING_RULES`) or, without one,
the `PLANSMITH_LLM_*` environment variables. Read once at start-up; any mistake stops the
server with a message naming the file and line.

    [backends.openai]
    kind = "openai"                  # an OpenAI-compatible Chat Completions server
    base_url = "https://api.openai.com/v1"
    model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"   # the variable holding the key ("" = no key)
    structured_output = "json_schema"  # or "ollama_format", "json_object"

    [[rules]]
    name = "production work"
    priority = 10
    backend = "openai"
    fallback = []
    [rules.when]
    keywords = ["migration"]
    context = [{ path = "environment", equals = "production" }]

See docs/planning.md for every key.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EMBEDDED = "embedded"
DIALECTS = ("json_schema", "ollama_format", "json_object")
METHODS = ("generate", "decompose", "estimate", "plan_path")
KINDS = ("openai", EMBEDDED)
OPERATORS = ("equals", "gt", "lt", "in")


class RoutingConfigError(ValueError):
    """The routing file (or the environment) is wrong; the message names file and line."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class BackendConfig:
    """One backend of the routing file."""

    name: str
    kind: str = "openai"
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""
    structured_output: str = "json_schema"
    timeout_seconds: float = 60.0
    """Per attempt, when the caller sends no deadline (a deadline always bounds it)."""
    price_input_per_1k: float = 0.0
    price_output_per_1k: float = 0.0
    max_output_tokens: int = 4096
    temperature: float = 0.2
    breaker_failures: int = 3
    """Consecutive health failures that open the breaker."""
    breaker_reset_seconds: float = 30.0
    """How long the breaker stays open (a 429's Retry-After overrides it)."""
    max_retry_wait_seconds: float = 2.0
    """A 429 whose Retry-After is at most this (and fits the deadline) is waited out and
    retried once; a longer one opens the breaker for that long."""
    api_key: str = field(default="", repr=False, compare=False)
    """Read from `api_key_env` at start-up; never printed (repr=False)."""

    def estimated_cost(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.price_input_per_1k + output_tokens * self.price_output_per_1k
        ) / 1000


@dataclass(frozen=True)
class ContextCondition:
    """`context.<path>` compared with a value (`equals`, `gt`, `lt`, `in`)."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Rule:
    """A routing rule: when every condition holds, try `backend`, then `fallback`, then the
    embedded planner."""

    name: str
    backend: str
    priority: int = 0
    line: int = 0
    fallback: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    context: tuple[ContextCondition, ...] = ()
    min_requirements: int | None = None
    max_requirements: int | None = None
    min_budget: float | None = None
    max_budget: float | None = None
    methods: tuple[str, ...] = METHODS
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingConfig:
    """Every backend by name (file order) and the rules, highest priority first."""

    source: str
    backends: Mapping[str, BackendConfig]
    rules: tuple[Rule, ...] = ()
    default: tuple[str, ...] = ()
    """The chain when no rule matches (the embedded planner is appended anyway)."""


_BACKEND_KEYS = {
    "kind": str,
    "base_url": str,
    "model": str,
    "api_key_env": str,
    "structured_output": str,
    "timeout_seconds": float,
    "price_input_per_1k": float,
    "price_output_per_1k": float,
    "max_output_tokens": int,
    "temperature": float,
    "breaker_failures": int,
    "breaker_reset_seconds": float,
    "max_retry_wait_seconds": float,
}
_RULE_KEYS = {"name", "priority", "backend", "fallback", "when", "options"}
_WHEN_KEYS = {
    "keywords",
    "context",
    "min_requirements",
    "max_requirements",
    "min_budget",
    "max_budget",
    "methods",
}
_OPTION_KEYS = {"temperature": float, "max_output_tokens": int}


def load(env: Mapping[str, str] | None = None) -> RoutingConfig | None:
    """The routing configuration from the environment, or None (embedded planner only)."""
    env = os.environ if env is None else env
    path = env.get("PLANSMITH_ROUTING_RULES", "")
    if path:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
        except OSError as exc:
            raise RoutingConfigError(path, None, f"cannot read: {exc.strerror}") from None
        return parse(text, path, env)
    if env.get("PLANSMITH_LLM_BASE_URL"):
        return from_env(env)
    return None


def from_env(env: Mapping[str, str]) -> RoutingConfig:
    """One backend `llm` from `PLANSMITH_LLM_*`, used for every request."""
    source = "environment"
    key_env = env.get("PLANSMITH_LLM_API_KEY_ENV", "OPENAI_API_KEY")
    b = BackendConfig(
        name="llm",
        base_url=env["PLANSMITH_LLM_BASE_URL"],
        model=env.get("PLANSMITH_LLM_MODEL", ""),
        api_key_env=key_env,
        structured_output=env.get("PLANSMITH_LLM_STRUCTURED_OUTPUT", "json_schema"),
    )
    if not b.model:
        raise RoutingConfigError(source, None, "PLANSMITH_LLM_MODEL is required")
    b = _finish_backend(b, source, None, env)
    return RoutingConfig(source, {"llm": b}, (), ("llm",))


def parse(text: str, source: str, env: Mapping[str, str]) -> RoutingConfig:
    """Parses a routing file; `RoutingConfigError` names the line of the first mistake."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise RoutingConfigError(
            source, int(m.group(1)) if m else None, f"not valid TOML: {exc}"
        ) from None
    lines = text.splitlines()
    unknown = set(data) - {"backends", "rules", "default"}
    if unknown:
        name = sorted(unknown)[0]
        raise RoutingConfigError(
            source,
            _line(lines, rf"^\s*\[*\s*{re.escape(name)}\b"),
            (f"unknown section {name!r}; expected backends, rules, default"),
        )
    backends: dict[str, BackendConfig] = {}
    for name, raw in _table(data.get("backends", {}), source, None, "backends").items():
        line = _line(lines, rf"^\s*\[\s*backends\.\"?{re.escape(name)}\"?\s*\]")
        backends[name] = _backend(name, raw, source, line, env)
    if EMBEDDED in backends:
        raise RoutingConfigError(
            source,
            _line(lines, r"^\s*\[\s*backends\.\"?embedded"),
            ("'embedded' is the built-in planner's name; choose another"),
        )
    known = [*backends, EMBEDDED]
    headers = [i + 1 for i, s in enumerate(lines) if re.match(r"^\s*\[\[\s*rules\s*\]\]", s)]
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RoutingConfigError(source, _line(lines, r"^\s*rules\b"), "rules must be [[rules]]")
    rules = []
    for i, raw in enumerate(raw_rules):
        start = headers[i] if i < len(headers) else None
        rules.append(_rule(i, raw, source, lines, start, known))
    # Highest priority first; equal priorities keep the file's order.
    rules.sort(key=lambda r: -r.priority)
    default_raw = data.get("default", {})
    default: tuple[str, ...] = ()
    if default_raw:
        d = _table(default_raw, source, _line(lines, r"^\s*\[\s*default\s*\]"), "default")
        line = _line(lines, r"^\s*\[\s*default\s*\]")
        extra = set(d) - {"backend", "fallback"}
        if extra:
            raise RoutingConfigError(source, line, f"unknown key(s) in [default]: {sorted(extra)}")
        chain = [d.get("backend", EMBEDDED), *d.get("fallback", [])]
        for b in chain:
            if b not in known:
                raise RoutingConfigError(
                    source, line, f"unknown backend {b!r}; configured: {', '.join(known)}"
                )
        default = tuple(chain)
    return RoutingConfig(source, backends, tuple(rules), default)


def _table(value: Any, source: str, line: int | None, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RoutingConfigError(source, line, f"{what} must be a table")
    return value


def _line(lines: list[str], pattern: str, start: int = 1, end: int | None = None) -> int | None:
    """The 1-based number of the first line from `start` matching `pattern`."""
    rx = re.compile(pattern)
    for i in range(start - 1, len(lines) if end is None else min(end, len(lines))):
        if rx.search(lines[i]):
            return i + 1
    return None


def _typed(value: Any, typ: type, what: str, source: str, line: int | None) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, typ) or isinstance(value, bool):
        raise RoutingConfigError(source, line, f"{what} must be a {typ.__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RoutingConfigError(source, line, f"{what} must be finite")
    return value


def _backend(
    name: str, raw: Any, source: str, line: int | None, env: Mapping[str, str]
) -> BackendConfig:
    raw = _table(raw, source, line, f"backends.{name}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _BACKEND_KEYS:
            raise RoutingConfigError(
                source,
                line,
                f"backends.{name}: unknown key {key!r}; expected one of "
                + ", ".join(_BACKEND_KEYS),
            )
        values[key] = _typed(value, _BACKEND_KEYS[key], f"backends.{name}.{key}", source, line)
    b = BackendConfig(name=name, **values)
    return _finish_backend(b, source, line, env)


def _finish_backend(
    b: BackendConfig, source: str, line: int | None, env: Mapping[str, str]
) -> BackendConfig:
    where = f"backend {b.name!r}"
    if b.kind not in KINDS or b.kind == EMBEDDED:
        raise RoutingConfigError(source, line, f"{where}: kind must be 'openai', not {b.kind!r}")
    if not re.match(r"^https?://", b.base_url):
        raise RoutingConfigError(source, line, f"{where}: base_url must be an http(s) URL")
    if not b.model:
        raise RoutingConfigError(source, line, f"{where}: model is required")
    if b.structured_output not in DIALECTS:
        raise RoutingConfigError(
            source, line, f"{where}: structured_output must be one of {', '.join(DIALECTS)}"
        )
    for key in ("timeout_seconds", "breaker_reset_seconds"):
        if getattr(b, key) <= 0:
            raise RoutingConfigError(source, line, f"{where}: {key} must be positive")
    for key in ("price_input_per_1k", "price_output_per_1k", "max_retry_wait_seconds"):
        if getattr(b, key) < 0:
            raise RoutingConfigError(source, line, f"{where}: {key} must not be negative")
    if b.max_output_tokens < 1 or b.breaker_failures < 1:
        raise RoutingConfigError(
            source, line, f"{where}: max_output_tokens and breaker_failures must be at least 1"
        )
    key = ""
    if b.api_key_env:
        key = env.get(b.api_key_env, "")
        if not key:
            raise RoutingConfigError(
                source,
                line,
                f"{where}: the environment variable {b.api_key_env} (api_key_env) is not set",
            )
    return BackendConfig(**{**b.__dict__, "api_key": key})


def _rule(
    index: int, raw: Any, source: str, lines: list[str], start: int | None, known: list[str]
) -> Rule:
    nxt = _line(lines, r"^\s*\[\[\s*rules\s*\]\]", (start or 0) + 1) if start else None

    def line_of(key: str) -> int | None:
        return (_line(lines, rf"^\s*{key}\b", start, nxt and nxt - 1) if start else None) or start

    raw = _table(raw, source, start, f"rules[{index}]")
    extra = set(raw) - _RULE_KEYS
    if extra:
        k = sorted(extra)[0]
        raise RoutingConfigError(source, line_of(k), f"rules[{index}]: unknown key {k!r}")
    name = raw.get("name", f"rule {index + 1}")
    if "backend" not in raw:
        raise RoutingConfigError(source, start, f"rule {name!r}: backend is required")
    backend = _typed(raw["backend"], str, f"rule {name!r} backend", source, line_of("backend"))
    fallback = raw.get("fallback", [])
    if not isinstance(fallback, list) or not all(isinstance(x, str) for x in fallback):
        raise RoutingConfigError(source, line_of("fallback"), "fallback must be a list of names")
    for key, names in (("backend", [backend]), ("fallback", fallback)):
        for b in names:
            if b not in known:
                raise RoutingConfigError(
                    source,
                    line_of(key),
                    f"rule {name!r}: unknown backend {b!r}; configured: {', '.join(known)}",
                )
    priority = _typed(raw.get("priority", 0), int, "priority", source, line_of("priority"))
    when = _table(raw.get("when", {}), source, line_of(r"\[\s*rules\.when"), "when")
    extra = set(when) - _WHEN_KEYS
    if extra:
        k = sorted(extra)[0]
        raise RoutingConfigError(
            source,
            line_of(k),
            f"rule {name!r}: unknown condition {k!r}; expected one of "
            + ", ".join(sorted(_WHEN_KEYS)),
        )
    keywords = when.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
        raise RoutingConfigError(source, line_of("keywords"), "keywords must be a list of words")
    methods = when.get("methods", list(METHODS))
    if not isinstance(methods, list) or any(m not in METHODS for m in methods):
        raise RoutingConfigError(
            source, line_of("methods"), f"methods must be a list of {', '.join(METHODS)}"
        )
    conditions = []
    raw_ctx = when.get("context", [])
    if not isinstance(raw_ctx, list):
        raise RoutingConfigError(source, line_of("context"), "context must be a list of tables")
    for c in raw_ctx:
        ops = [k for k in c if k in OPERATORS] if isinstance(c, dict) else []
        if not isinstance(c, dict) or "path" not in c or len(ops) != 1 or len(c) != 2:
            raise RoutingConfigError(
                source,
                line_of("context"),
                'each context condition is {path = "a.b", and one of equals, gt, lt, in}',
            )
        op = ops[0]
        value = c[op]
        if op in ("gt", "lt") and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise RoutingConfigError(source, line_of("context"), f"{op} takes a number")
        if op == "in" and not isinstance(value, list):
            raise RoutingConfigError(source, line_of("context"), "in takes a list")
        conditions.append(ContextCondition(str(c["path"]), op, value))
    numbers: dict[str, Any] = {}
    for key, typ in (
        ("min_requirements", int),
        ("max_requirements", int),
        ("min_budget", float),
        ("max_budget", float),
    ):
        if key in when:
            numbers[key] = _typed(when[key], typ, key, source, line_of(key))
    options = _table(raw.get("options", {}), source, line_of(r"\[\s*rules\.options"), "options")
    for key, value in options.items():
        if key not in _OPTION_KEYS:
            raise RoutingConfigError(
                source,
                line_of(key),
                f"rule {name!r}: unknown option {key!r}; expected " + ", ".join(_OPTION_KEYS),
            )
        options[key] = _typed(value, _OPTION_KEYS[key], key, source, line_of(key))
    return Rule(
        name=str(name),
        backend=backend,
        priority=priority,
        line=start or 0,
        fallback=tuple(fallback),
        keywords=tuple(k.lower() for k in keywords),
        context=tuple(conditions),
        methods=tuple(methods),
        options=dict(options),
        **numbers,
    )
