"""Server configuration: flags, each with a `PLANSMITH_*` environment equivalent."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from plansmith_server import loops


@dataclass(frozen=True)
class Config:
    """How the server runs."""

    listen: str = "127.0.0.1:50051"
    """Address to listen on, `host:port`; port 0 picks a free one."""
    db_path: str = "data/plansmith.db"
    """SQLite database file (created with its folder on first run), or `:memory:`."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""
    log_format: str = "text"
    """`text` for people, `json` for log pipelines (one object per line)."""
    access_log: str = "errors"
    """Which calls get an access-log line: `errors` (every call that did not end OK) or
    `all` (every call; at INFO a line per call costs a busy server a sizeable share of
    its rate, see docs/performance.md)."""
    grace_seconds: float = 10.0
    """On SIGTERM/SIGINT, how long in-flight calls may take to finish."""
    health_probe_seconds: float = 5.0
    """How often the database is probed to keep the health status true."""
    health_write_lock_seconds: float = 3.0
    """How long writes may be kept from the database's write lock (another process holds
    it) before health says NOT_SERVING; SERVING again once a write or the probe gets it."""
    idempotency_retention_hours: float = 168.0
    """How long request ids are remembered (at least 24 h is promised)."""
    sqlite_synchronous: str = "FULL"
    """SQLite `synchronous`: FULL survives power loss; NORMAL only a process crash."""
    traces: str = "none"
    """Trace exporter: none, console or otlp (OTEL_EXPORTER_OTLP_* configure it)."""
    metrics: str = "none"
    """Metrics exporter: none, otlp or prometheus."""
    prometheus_address: str = "127.0.0.1:9464"
    """Where the Prometheus scrape endpoint listens (metrics=prometheus)."""
    max_in_flight: int = 256
    """Calls in progress or waiting in gRPC core to start, beyond which new ones get
    RESOURCE_EXHAUSTED with RetryInfo: a share growing from none at this many to all at
    twice it (calls in handlers alone: all, at this many)."""
    max_streams_per_connection: int = 100
    """HTTP/2 streams (calls) one connection may have open; its client queues the rest."""
    max_streams: int = 64
    """Open server streams beyond which new ones get RESOURCE_EXHAUSTED."""
    retry_after_ms: int = 200
    """The delay a refused caller is told to wait (RetryInfo)."""
    max_message_bytes: int = 4 * 1024 * 1024
    """Largest request message accepted (larger: RESOURCE_EXHAUSTED)."""
    max_tasks_per_plan: int = 10_000
    """Tasks a plan may hold (beyond: FAILED_PRECONDITION PLAN_TASK_LIMIT)."""
    page_cache_tasks: int = 10_000
    """Tasks the cached ListTasks pages may hold in all (pages of an unchanged plan are
    served again from memory); 0 turns the cache off."""
    flow_runs_retained: int = 1_000
    """Completed runs kept per flow (the oldest go first); the path planner learns from them."""
    event_loop: str = "auto"
    """auto (uvloop where installed, else asyncio's loop), uvloop or asyncio."""
    heartbeat_timeout_seconds: float = 60.0
    """An agent that sent a Heartbeat and then none for this long counts as unavailable."""
    reassign_time_limit_seconds: float = 1.0
    """How long the optimizer may search when the replanner reassigns a task."""
    max_watches: int = 256
    """Open WatchPlan streams beyond which new ones get RESOURCE_EXHAUSTED (apart from
    `max_streams`, which they do not count against)."""
    watch_heartbeat_seconds: float = 10.0
    """Silence after which a watcher gets a heartbeat with the plan's current revision."""
    watch_max_lag_seconds: float = 30.0
    """How long one WatchPlan message may wait for its consumer to take it while later
    revisions wait too, before the watch is cut (RESOURCE_EXHAUSTED with the revision to
    resume from)."""
    change_retention_hours: float = 168.0
    """Change-log revisions younger than this are kept (WatchPlan can replay them)."""
    change_retention_revisions: int = 10_000
    """The last this many revisions of every plan are kept whatever their age."""


DB_FORMS = "an SQLite file path (e.g. data/plansmith.db, /var/lib/plansmith.db) or :memory:"
"""What `--db` takes, as its error says."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def db_problem(value: str) -> str | None:
    """Why `value` is not a database `--db` can open, or None when it is.

    Only SQLite is supported. A URL (`postgresql://...`, `file:...`) would otherwise be
    taken as a relative file name, and its "folder" created in the working directory."""
    if not value:
        return f"is empty; give {DB_FORMS}"
    if value != ":memory:" and _SCHEME.match(value):
        scheme = value.split(":", 1)[0]
        return (
            f"{value!r}: the {scheme!r} scheme is not supported; give {DB_FORMS} "
            "(a relative file name with a colon: start it with ./)"
        )
    return None


_FLAGS: list[tuple[str, str, str, type]] = [
    # (flag, field, env var, type)
    ("--listen", "listen", "PLANSMITH_LISTEN", str),
    ("--db", "db_path", "PLANSMITH_DB", str),
    ("--log-level", "log_level", "PLANSMITH_LOG_LEVEL", str),
    ("--log-format", "log_format", "PLANSMITH_LOG_FORMAT", str),
    ("--access-log", "access_log", "PLANSMITH_ACCESS_LOG", str),
    ("--grace-seconds", "grace_seconds", "PLANSMITH_GRACE_SECONDS", float),
    ("--health-probe-seconds", "health_probe_seconds", "PLANSMITH_HEALTH_PROBE_SECONDS", float),
    (
        "--health-write-lock-seconds",
        "health_write_lock_seconds",
        "PLANSMITH_HEALTH_WRITE_LOCK_SECONDS",
        float,
    ),
    (
        "--idempotency-retention-hours",
        "idempotency_retention_hours",
        "PLANSMITH_IDEMPOTENCY_RETENTION_HOURS",
        float,
    ),
    ("--sqlite-synchronous", "sqlite_synchronous", "PLANSMITH_SQLITE_SYNCHRONOUS", str),
    ("--traces", "traces", "PLANSMITH_TRACES", str),
    ("--metrics", "metrics", "PLANSMITH_METRICS", str),
    ("--prometheus-address", "prometheus_address", "PLANSMITH_PROMETHEUS_ADDRESS", str),
    ("--max-in-flight", "max_in_flight", "PLANSMITH_MAX_IN_FLIGHT", int),
    ("--max-streams", "max_streams", "PLANSMITH_MAX_STREAMS", int),
    (
        "--max-streams-per-connection",
        "max_streams_per_connection",
        "PLANSMITH_MAX_STREAMS_PER_CONNECTION",
        int,
    ),
    ("--retry-after-ms", "retry_after_ms", "PLANSMITH_RETRY_AFTER_MS", int),
    ("--max-message-bytes", "max_message_bytes", "PLANSMITH_MAX_MESSAGE_BYTES", int),
    ("--max-tasks-per-plan", "max_tasks_per_plan", "PLANSMITH_MAX_TASKS_PER_PLAN", int),
    ("--page-cache-tasks", "page_cache_tasks", "PLANSMITH_PAGE_CACHE_TASKS", int),
    ("--flow-runs-retained", "flow_runs_retained", "PLANSMITH_FLOW_RUNS_RETAINED", int),
    ("--event-loop", "event_loop", "PLANSMITH_EVENT_LOOP", str),
    (
        "--heartbeat-timeout",
        "heartbeat_timeout_seconds",
        "PLANSMITH_HEARTBEAT_TIMEOUT",
        float,
    ),
    (
        "--reassign-time-limit",
        "reassign_time_limit_seconds",
        "PLANSMITH_REASSIGN_TIME_LIMIT",
        float,
    ),
    ("--max-watches", "max_watches", "PLANSMITH_MAX_WATCHES", int),
    (
        "--watch-heartbeat-seconds",
        "watch_heartbeat_seconds",
        "PLANSMITH_WATCH_HEARTBEAT_SECONDS",
        float,
    ),
    ("--watch-max-lag-seconds", "watch_max_lag_seconds", "PLANSMITH_WATCH_MAX_LAG_SECONDS", float),
    (
        "--change-retention-hours",
        "change_retention_hours",
        "PLANSMITH_CHANGE_RETENTION_HOURS",
        float,
    ),
    (
        "--change-retention-revisions",
        "change_retention_revisions",
        "PLANSMITH_CHANGE_RETENTION_REVISIONS",
        int,
    ),
]

_CHOICES = {
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "log_format": ("text", "json"),
    "access_log": ("errors", "all"),
    "sqlite_synchronous": ("FULL", "NORMAL"),
    "traces": ("none", "console", "otlp"),
    "metrics": ("none", "otlp", "prometheus"),
    "event_loop": loops.CHOICES,
}
_LOWER = {"log_format", "access_log", "traces", "metrics", "event_loop"}


_HELP = {
    "listen": "address to listen on, host:port (port 0 picks a free one)",
    "db_path": "SQLite database file, created on first run, or :memory: for a throwaway "
    "(no URLs: only SQLite is supported)",
    "log_level": "log level",
    "log_format": "text for people, json for log pipelines",
    "access_log": "access-log lines for calls that did not end OK (errors) or for every "
    "call (all)",
    "grace_seconds": "on SIGTERM/SIGINT, how long in-flight calls may take to finish",
    "health_probe_seconds": "how often the database is probed for the health status",
    "health_write_lock_seconds": "health turns NOT_SERVING once writes have been kept this "
    "long from the database's write lock (another process holds it)",
    "idempotency_retention_hours": "how long request ids are remembered (>= 24)",
    "sqlite_synchronous": "FULL survives power loss; NORMAL only a process crash",
    "traces": "trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT etc. configure otlp)",
    "metrics": "metrics exporter",
    "prometheus_address": "host:port of the Prometheus scrape endpoint (metrics=prometheus)",
    "max_in_flight": "calls in progress or queued beyond which new ones are refused "
    "(RESOURCE_EXHAUSTED): a growing share, all at twice this many",
    "max_streams": "open server streams beyond which new ones are refused",
    "max_streams_per_connection": "calls one connection may have open; its client queues the rest",
    "retry_after_ms": "the RetryInfo delay given to refused callers",
    "max_message_bytes": "largest request message accepted",
    "max_tasks_per_plan": "tasks a plan may hold",
    "page_cache_tasks": (
        "tasks the cached ListTasks pages may hold in all (a large task counts one more per "
        "4 KiB); 0 turns it off"
    ),
    "flow_runs_retained": "completed runs kept per flow (the path planner learns from them)",
    "event_loop": "asyncio event loop: auto takes uvloop where installed (faster), else asyncio's",
    "heartbeat_timeout_seconds": "seconds without a Heartbeat after which an agent that sent "
    "one counts as unavailable (its open tasks go through the replanner)",
    "reassign_time_limit_seconds": "seconds the optimizer may search when the replanner "
    "reassigns a task",
    "max_watches": "open WatchPlan streams beyond which new ones are refused (not counted "
    "against --max-streams)",
    "watch_heartbeat_seconds": "silence after which a watcher gets a heartbeat",
    "watch_max_lag_seconds": "how long one watch message may wait for a consumer that does "
    "not read while later revisions wait, before the watch is cut (RESOURCE_EXHAUSTED, with "
    "the revision to resume from)",
    "change_retention_hours": "change-log revisions younger than this are kept for WatchPlan",
    "change_retention_revisions": "the last this many revisions of every plan are kept "
    "whatever their age",
}


def parser() -> argparse.ArgumentParser:
    defaults = Config()
    p = argparse.ArgumentParser(
        prog="plansmith-server",
        description="The Plansmith gRPC planning service. Every flag also reads the "
        "environment variable named in its help.",
    )
    for flag, field, env, typ in _FLAGS:
        doc = _HELP[field]
        choices = _CHOICES.get(field)
        p.add_argument(
            flag,
            dest=field,
            type=(lambda s, f=field: s.lower() if f in _LOWER else s.upper()) if choices else typ,
            choices=choices,
            default=None,
            help=f"{doc} [env {env}; default {getattr(defaults, field)}]",
        )
    return p


def load(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Flags win over environment variables, which win over defaults."""
    env = os.environ if env is None else env
    p = parser()
    args = p.parse_args(argv)
    values: dict[str, object] = {}
    for flag, field, var, typ in _FLAGS:
        value = getattr(args, field)
        if value is None and env.get(var):
            raw = env[var]
            try:
                value = typ(raw)
            except ValueError:
                p.error(f"{var}={raw!r} is not a valid {typ.__name__}")
            if field in _CHOICES:
                value = str(value).lower() if field in _LOWER else str(value).upper()
                if value not in _CHOICES[field]:
                    p.error(f"{var}={raw!r}: choose from {', '.join(_CHOICES[field])}")
        if isinstance(value, int) and field.startswith("max_") and value < 1:
            p.error(f"{flag} must be at least 1, not {value}")
        if isinstance(value, int) and field == "flow_runs_retained" and value < 1:
            p.error(f"{flag} must be at least 1, not {value}")
        if field.startswith("change_retention_") and value is not None and value < 0:
            p.error(f"{flag} must not be negative, not {value}")
        if field.startswith("watch_") and value is not None and not 0 < value < 1e6:
            p.error(f"{flag} must be a positive number of seconds, not {value}")
        if isinstance(value, int) and field == "page_cache_tasks" and value < 0:
            p.error(f"{flag} must not be negative, not {value}")
        if (
            (
                field.startswith("health_")
                or (field.endswith("_seconds") and field != "grace_seconds")
            )
            and value is not None
            and not 0 < value < 1e6
        ):
            p.error(f"{flag} must be a positive number of seconds, not {value}")
        if field == "db_path" and value is not None and (why := db_problem(str(value))):
            p.error(f"{flag if getattr(args, field) is not None else var} {why}")
        if value is not None:
            values[field] = value
    return Config(**values)  # type: ignore[arg-type]
