"""Server configuration: one frozen dataclass whose fields are the settings.

Each field is declared once with `setting(...)`: its name, type and default are the field's,
its help is the field's metadata, and its flag (`--name-with-dashes`) and environment variable
(`PLANSMITH_NAME`) are derived from the name unless the setting names them. `parser()` and
`load()` read everything from the fields, so a new setting is one field."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from plansmith_server import loops
from plansmith_server.storage import dsn

_T = TypeVar("_T")

ENV_PREFIX = "PLANSMITH_"


def setting(
    default: _T,
    help: str,
    *,
    flag: str | None = None,
    env: str | None = None,
    choices: Sequence[str] | None = None,
    fold: Callable[[str], str] = str.upper,
    check: Callable[[Any], str | None] | None = None,
) -> _T:
    """A field of `Config`: `help` is what `--help` shows; `flag` and `env` default to the
    field's name; `choices` are matched after `fold` (case-insensitive input); `check` says
    why a value is refused (the message follows the flag), or returns None."""
    metadata = dict(help=help, flag=flag, env=env, choices=choices, fold=fold, check=check)
    return dataclasses.field(default=default, metadata=metadata)


def _at_least(low: int) -> Callable[[int], str | None]:
    return lambda value: None if value >= low else f"must be at least {low}, not {value}"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else f"must not be negative, not {value}"


def _positive_seconds(value: float) -> str | None:
    return None if 0 < value < 1e6 else f"must be a positive number of seconds, not {value}"


@dataclass(frozen=True)
class Config:
    """How the server runs."""

    listen: str = setting(
        "127.0.0.1:50051", "address to listen on, host:port (port 0 picks a free one)"
    )
    db_path: str = setting(
        "data/plansmith.db",
        "SQLite database file, created on first run, :memory: for a throwaway, or a "
        "PostgreSQL URL postgresql://user@host:5432/db (password: prefer PGPASSWORD or "
        "~/.pgpass)",
        flag="--db",
        env="PLANSMITH_DB",
        check=lambda value: db_problem(value),  # defined below, with what it refuses
    )
    pg_pool_size: int = setting(
        10, "PostgreSQL: connections per server at most", check=_at_least(1)
    )
    pg_pool_timeout_ms: int = setting(
        2000, "PostgreSQL: how long a call waits for a free connection", check=_at_least(1)
    )
    pg_statement_timeout_ms: int = setting(
        5000,
        "PostgreSQL: longest a statement may run (a call's deadline shortens it)",
        check=_at_least(1),
    )
    pg_lookups_size: int = setting(
        10_000,
        "PostgreSQL: lookups by key remembered until a commit is heard of, in 4 KiB blocks "
        "(a read on another replica right after a write may precede the notification); "
        "0 turns it off: every lookup reads the database",
        check=_not_negative,
    )
    log_level: str = setting("INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = setting(
        "text",
        "text for people, json for log pipelines (one object per line)",
        choices=("text", "json"),
        fold=str.lower,
    )
    access_log: str = setting(
        "errors",
        "access-log lines for calls that did not end OK (errors) or for every call (all; at "
        "INFO a line per call costs a busy server a sizeable share of its rate, see "
        "docs/performance.md)",
        choices=("errors", "all"),
        fold=str.lower,
    )
    grace_seconds: float = setting(
        10.0, "on SIGTERM/SIGINT, how long in-flight calls may take to finish"
    )
    health_probe_seconds: float = setting(
        5.0,
        "how often the database is probed for the health status",
        check=_positive_seconds,
    )
    health_write_lock_seconds: float = setting(
        3.0,
        "health turns NOT_SERVING once writes have been kept this long from the database's "
        "write lock (another process holds it); SERVING again once a write or the probe gets it",
        check=_positive_seconds,
    )
    idempotency_retention_hours: float = setting(
        168.0, "how long request ids are remembered (>= 24)"
    )
    sqlite_synchronous: str = setting(
        "FULL",
        "FULL survives power loss; NORMAL only a process crash",
        choices=("FULL", "NORMAL"),
    )
    traces: str = setting(
        "none",
        "trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT etc. configure otlp)",
        choices=("none", "console", "otlp"),
        fold=str.lower,
    )
    metrics: str = setting(
        "none", "metrics exporter", choices=("none", "otlp", "prometheus"), fold=str.lower
    )
    prometheus_address: str = setting(
        "127.0.0.1:9464", "host:port of the Prometheus scrape endpoint (metrics=prometheus)"
    )
    max_in_flight: int = setting(
        256,
        "calls in progress or waiting in gRPC core to start, beyond which new ones get "
        "RESOURCE_EXHAUSTED with RetryInfo: a share growing from none at this many to all at "
        "twice it (calls in handlers alone: all, at this many)",
        check=_at_least(1),
    )
    max_streams_per_connection: int = setting(
        100,
        "HTTP/2 streams (calls) one connection may have open; its client queues the rest",
        check=_at_least(1),
    )
    max_streams: int = setting(
        64, "open server streams beyond which new ones get RESOURCE_EXHAUSTED", check=_at_least(1)
    )
    retry_after_ms: int = setting(200, "the delay a refused caller is told to wait (RetryInfo)")
    max_message_bytes: int = setting(
        4 * 1024 * 1024,
        "largest request message accepted (larger: RESOURCE_EXHAUSTED)",
        check=_at_least(1),
    )
    max_tasks_per_plan: int = setting(
        10_000,
        "tasks a plan may hold (beyond: FAILED_PRECONDITION PLAN_TASK_LIMIT)",
        check=_at_least(1),
    )
    page_cache_tasks: int = setting(
        10_000,
        "tasks the cached ListTasks pages may hold in all (pages of an unchanged plan are "
        "served again from memory; a large task counts one more per 4 KiB); 0 turns it off",
        check=_not_negative,
    )
    flow_runs_retained: int = setting(
        1_000,
        "completed runs kept per flow (the oldest go first); the path planner learns from them",
        check=_at_least(1),
    )
    event_loop: str = setting(
        "auto",
        "asyncio event loop: auto takes uvloop where installed (faster), else asyncio's",
        choices=loops.CHOICES,
        fold=str.lower,
    )
    heartbeat_timeout_seconds: float = setting(
        60.0,
        "seconds without a Heartbeat after which an agent that sent one counts as unavailable "
        "(its open tasks go through the replanner)",
        flag="--heartbeat-timeout",
        env="PLANSMITH_HEARTBEAT_TIMEOUT",
        check=_positive_seconds,
    )
    reassign_time_limit_seconds: float = setting(
        1.0,
        "seconds the optimizer may search when the replanner reassigns a task",
        flag="--reassign-time-limit",
        env="PLANSMITH_REASSIGN_TIME_LIMIT",
        check=_positive_seconds,
    )
    max_watches: int = setting(
        256,
        "open WatchPlan streams beyond which new ones are refused (not counted against "
        "--max-streams)",
        check=_at_least(1),
    )
    watch_heartbeat_seconds: float = setting(
        10.0, "silence after which a watcher gets a heartbeat", check=_positive_seconds
    )
    watch_max_lag_seconds: float = setting(
        30.0,
        "how long one watch message may wait for a consumer that does not read while later "
        "revisions wait, before the watch is cut (RESOURCE_EXHAUSTED, with the revision to "
        "resume from)",
        check=_positive_seconds,
    )
    change_retention_hours: float = setting(
        168.0,
        "change-log revisions younger than this are kept for WatchPlan",
        check=_not_negative,
    )
    change_retention_revisions: int = setting(
        10_000,
        "the last this many revisions of every plan are kept whatever their age",
        check=_not_negative,
    )


DB_FORMS = (
    "an SQLite file path (e.g. data/plansmith.db, /var/lib/plansmith.db), :memory:, or a "
    "PostgreSQL URL (postgresql://user@host:5432/plansmith)"
)
"""What `--db` takes, as its error says."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def db_problem(value: str) -> str | None:
    """Why `value` is not a database `--db` can open, or None when it is.

    SQLite files and PostgreSQL URLs; a URL of another scheme (`mysql://`, `file:...`)
    would otherwise be taken as a relative file name, and its "folder" created in the
    working directory. A PostgreSQL URL is checked as libpq would read it (the message
    never holds its password)."""
    if not value:
        return f"is empty; give {DB_FORMS}"
    if dsn.is_postgres(value):
        try:
            dsn.parse(value)
        except dsn.DsnError as exc:
            return str(exc)
        return None
    if value != ":memory:" and _SCHEME.match(value):
        scheme = value.split(":", 1)[0]
        return (
            f"{value!r}: the {scheme!r} scheme is not supported; give {DB_FORMS} "
            "(a relative file name with a colon: start it with ./)"
        )
    return None


@dataclass(frozen=True)
class Setting:
    """A field of `Config` as the command line and the environment see it."""

    field: str
    flag: str
    env: str
    value_type: type[Any]
    default: object
    help: str
    choices: Sequence[str] | None
    fold: Callable[[str], str]
    check: Callable[[Any], str | None] | None


def settings() -> list[Setting]:
    """Every setting of `Config`, in field order, derived from the fields."""
    types = typing.get_type_hints(Config)
    out = []
    for f in dataclasses.fields(Config):
        m = f.metadata
        out.append(
            Setting(
                field=f.name,
                flag=m["flag"] or "--" + f.name.replace("_", "-"),
                env=m["env"] or ENV_PREFIX + f.name.upper(),
                value_type=types[f.name],
                default=f.default,
                help=m["help"],
                choices=m["choices"],
                fold=m["fold"],
                check=m["check"],
            )
        )
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="plansmith-server",
        description="The Plansmith gRPC planning service. Every flag also reads the "
        "environment variable named in its help.",
    )
    for s in settings():
        p.add_argument(
            s.flag,
            dest=s.field,
            type=s.fold if s.choices else s.value_type,
            choices=s.choices,
            default=None,
            help=f"{s.help} [env {s.env}; default {s.default}]",
        )
    return p


def load(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Flags win over environment variables, which win over defaults."""
    env = os.environ if env is None else env
    p = parser()
    args = p.parse_args(argv)
    values: dict[str, Any] = {}
    for s in settings():
        value = getattr(args, s.field)
        source = s.flag
        if value is None and env.get(s.env):
            raw = env[s.env]
            source = f"{s.env}={dsn.redact_url(raw)!r}: {s.flag}"  # no password shown
            try:
                value = s.value_type(raw)
            except ValueError:
                p.error(f"{s.env}={raw!r} is not a valid {s.value_type.__name__}")
            if s.choices:
                value = s.fold(value)
                if value not in s.choices:
                    p.error(f"{s.env}={raw!r}: choose from {', '.join(s.choices)}")
        if value is not None and s.check and (why := s.check(value)):
            p.error(f"{source} {why}")
        if value is not None:
            values[s.field] = value
    return Config(**values)
