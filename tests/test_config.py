"""The server's settings are derived from the fields of `Config`: one definition each."""

from __future__ import annotations

import dataclasses

import pytest

from plansmith_server import config

# Today's flags and environment variables: scripts and deployments use these names.
NAMES = {
    ("--listen", "PLANSMITH_LISTEN"),
    ("--db", "PLANSMITH_DB"),
    ("--log-level", "PLANSMITH_LOG_LEVEL"),
    ("--log-format", "PLANSMITH_LOG_FORMAT"),
    ("--access-log", "PLANSMITH_ACCESS_LOG"),
    ("--grace-seconds", "PLANSMITH_GRACE_SECONDS"),
    ("--health-probe-seconds", "PLANSMITH_HEALTH_PROBE_SECONDS"),
    ("--health-write-lock-seconds", "PLANSMITH_HEALTH_WRITE_LOCK_SECONDS"),
    ("--idempotency-retention-hours", "PLANSMITH_IDEMPOTENCY_RETENTION_HOURS"),
    ("--sqlite-synchronous", "PLANSMITH_SQLITE_SYNCHRONOUS"),
    ("--traces", "PLANSMITH_TRACES"),
    ("--metrics", "PLANSMITH_METRICS"),
    ("--prometheus-address", "PLANSMITH_PROMETHEUS_ADDRESS"),
    ("--max-in-flight", "PLANSMITH_MAX_IN_FLIGHT"),
    ("--max-streams", "PLANSMITH_MAX_STREAMS"),
    ("--max-streams-per-connection", "PLANSMITH_MAX_STREAMS_PER_CONNECTION"),
    ("--retry-after-ms", "PLANSMITH_RETRY_AFTER_MS"),
    ("--max-message-bytes", "PLANSMITH_MAX_MESSAGE_BYTES"),
    ("--max-tasks-per-plan", "PLANSMITH_MAX_TASKS_PER_PLAN"),
    ("--page-cache-tasks", "PLANSMITH_PAGE_CACHE_TASKS"),
    ("--flow-runs-retained", "PLANSMITH_FLOW_RUNS_RETAINED"),
    ("--event-loop", "PLANSMITH_EVENT_LOOP"),
    ("--heartbeat-timeout", "PLANSMITH_HEARTBEAT_TIMEOUT"),
    ("--reassign-time-limit", "PLANSMITH_REASSIGN_TIME_LIMIT"),
    ("--max-watches", "PLANSMITH_MAX_WATCHES"),
    ("--watch-heartbeat-seconds", "PLANSMITH_WATCH_HEARTBEAT_SECONDS"),
    ("--watch-max-lag-seconds", "PLANSMITH_WATCH_MAX_LAG_SECONDS"),
    ("--change-retention-hours", "PLANSMITH_CHANGE_RETENTION_HOURS"),
    ("--change-retention-revisions", "PLANSMITH_CHANGE_RETENTION_REVISIONS"),
    ("--pg-pool-size", "PLANSMITH_PG_POOL_SIZE"),
    ("--pg-pool-timeout-ms", "PLANSMITH_PG_POOL_TIMEOUT_MS"),
    ("--pg-statement-timeout-ms", "PLANSMITH_PG_STATEMENT_TIMEOUT_MS"),
    ("--pg-lookups-size", "PLANSMITH_PG_LOOKUPS_SIZE"),
}


def test_every_field_is_a_setting_with_todays_names():
    settings = config.settings()
    assert [s.field for s in settings] == [f.name for f in dataclasses.fields(config.Config)]
    assert {(s.flag, s.env) for s in settings} == NAMES
    flags = {a.option_strings[0]: a.dest for a in config.parser()._actions if a.dest != "help"}
    assert flags == {s.flag: s.field for s in settings}


def test_help_type_and_default_come_from_the_field(capsys):
    text = config.parser().format_help().replace("\n", " ")
    text = " ".join(text.split())  # argparse wraps lines
    for f in dataclasses.fields(config.Config):
        s = next(s for s in config.settings() if s.field == f.name)
        assert s.help == f.metadata["help"]
        assert " ".join(f"{s.help} [env {s.env}; default {f.default}]".split()) in text
        assert s.value_type is {"str": str, "int": int, "float": float}[str(f.type)]
    cfg = config.load([], env={"PLANSMITH_MAX_STREAMS": "7", "PLANSMITH_GRACE_SECONDS": "0.5"})
    assert (cfg.max_streams, cfg.grace_seconds) == (7, 0.5)
    with pytest.raises(SystemExit) as e:
        config.load([], env={"PLANSMITH_MAX_STREAMS": "1.5"})
    assert e.value.code == 2
    assert "PLANSMITH_MAX_STREAMS='1.5' is not a valid int" in capsys.readouterr().err


def test_a_refused_environment_value_names_the_variable_and_its_flag(capsys):
    with pytest.raises(SystemExit):
        config.load([], env={"PLANSMITH_MAX_STREAMS": "0"})
    err = capsys.readouterr().err
    assert "PLANSMITH_MAX_STREAMS='0': --max-streams must be at least 1, not 0" in err
    with pytest.raises(SystemExit):
        config.load(["--max-streams", "0"], env={"PLANSMITH_MAX_STREAMS": "9"})
    assert "--max-streams must be at least 1, not 0" in capsys.readouterr().err
