"""Versioned schema migrations for PostgreSQL, beside SQLite's (`migrations.py`).

The same tables, columns and meanings as SQLite's schema (a row reads back the same on
either store, and `plansmith-server migrate` copies one into the other): JSON values are
kept as text in the same encoding, times as µs since the epoch, hours as double
precision (SQLite's REAL). Applied in order at start-up under an advisory lock (see
`PostgresStore._migrate`); the version is kept in `schema_migrations`.

Never edit a migration that has shipped: append a new one. A table another feature adds
to SQLite's schema gets its migration here too.
"""

from __future__ import annotations

MIGRATION_LOCK = 0x706C616E736D6974  # "plansmit": the advisory lock key of migrations

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

MIGRATIONS: list[str] = [
    # 1: SQLite's migrations 1 to 4 in one: plans, tasks, dependency edges, the per-plan
    # change log, idempotency records, the per-plan task count kept by a trigger.
    """
    CREATE TABLE plans (
        seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order
        id           TEXT NOT NULL UNIQUE,
        project_id   TEXT NOT NULL,
        name         TEXT NOT NULL,
        description  TEXT NOT NULL,
        objectives   TEXT NOT NULL,      -- JSON array
        constraints  TEXT NOT NULL,      -- JSON array
        metadata     TEXT NOT NULL,      -- JSON object
        status       INTEGER NOT NULL,
        agents       TEXT NOT NULL,      -- JSON array of {id, name, capabilities}
        create_time  BIGINT NOT NULL,    -- µs since the epoch
        update_time  BIGINT NOT NULL,
        version      BIGINT NOT NULL,    -- the etag derives from it
        revision     BIGINT NOT NULL,    -- bumped by every mutation of the plan or its tasks
        task_count   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX plans_by_project ON plans(project_id, seq);
    CREATE INDEX plans_by_status ON plans(status, seq);

    CREATE TABLE tasks (
        seq                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id                    TEXT NOT NULL UNIQUE,
        plan_id               TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        title                 TEXT NOT NULL,
        description           TEXT NOT NULL,
        priority              INTEGER NOT NULL,
        status                INTEGER NOT NULL,
        estimated_hours       DOUBLE PRECISION NOT NULL,
        actual_hours          DOUBLE PRECISION NOT NULL,
        progress              INTEGER NOT NULL,
        assigned_to           TEXT NOT NULL,
        required_capabilities TEXT NOT NULL,  -- JSON array
        parent_task_id        TEXT NOT NULL,
        metadata              TEXT NOT NULL,  -- JSON object
        optimistic_hours      DOUBLE PRECISION NOT NULL,
        pessimistic_hours     DOUBLE PRECISION NOT NULL,
        acceptance_criteria   TEXT NOT NULL,  -- JSON array
        schedule_start        DOUBLE PRECISION,  -- NULL when not scheduled
        schedule_end          DOUBLE PRECISION,
        create_time           BIGINT NOT NULL,
        update_time           BIGINT NOT NULL,
        version               BIGINT NOT NULL
    );
    CREATE INDEX tasks_by_plan ON tasks(plan_id, seq);
    CREATE INDEX tasks_by_plan_status ON tasks(plan_id, status, seq);
    CREATE INDEX tasks_by_plan_assignee ON tasks(plan_id, assigned_to, seq);
    CREATE INDEX tasks_by_plan_priority ON tasks(plan_id, priority, seq);
    CREATE INDEX tasks_by_parent ON tasks(parent_task_id) WHERE parent_task_id <> '';

    CREATE TABLE task_dependencies (
        plan_id     TEXT NOT NULL,
        task_id     TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        depends_on  TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,     -- keeps the caller's order
        PRIMARY KEY (task_id, depends_on)
    );
    CREATE INDEX task_dependencies_reverse ON task_dependencies(depends_on);
    CREATE INDEX task_dependencies_by_plan ON task_dependencies(plan_id);

    -- No foreign key to plans: the log outlives a deleted plan so a watcher can see the end.
    CREATE TABLE plan_changes (
        plan_id      TEXT NOT NULL,
        revision     BIGINT NOT NULL,
        position     INTEGER NOT NULL,    -- order of the changes within one revision
        kind         TEXT NOT NULL,
        entity_type  TEXT NOT NULL,
        entity_id    TEXT NOT NULL,
        snapshot     TEXT NOT NULL,       -- JSON of the entity after the change
        create_time  BIGINT NOT NULL,
        PRIMARY KEY (plan_id, revision, position)
    );
    -- What changed since a time: the commit listener's catch-up after a reconnect.
    CREATE INDEX plan_changes_by_time ON plan_changes(create_time);

    CREATE TABLE idempotency_keys (
        request_id   TEXT PRIMARY KEY,
        method       TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,       -- hash of the request without its request_id
        response     TEXT NOT NULL,       -- JSON of what the first call returned
        create_time  BIGINT NOT NULL
    );
    CREATE INDEX idempotency_keys_by_time ON idempotency_keys(create_time);

    CREATE FUNCTION plansmith_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE plans SET task_count = task_count - 1 WHERE id = OLD.plan_id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            UPDATE plans SET task_count = task_count + 1 WHERE id = NEW.plan_id;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER tasks_counted_on_insert AFTER INSERT ON tasks
        FOR EACH ROW EXECUTE FUNCTION plansmith_count_tasks();
    CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks
        FOR EACH ROW EXECUTE FUNCTION plansmith_count_tasks();
    CREATE TRIGGER tasks_counted_on_move AFTER UPDATE OF plan_id ON tasks
        FOR EACH ROW WHEN (OLD.plan_id IS DISTINCT FROM NEW.plan_id)
        EXECUTE FUNCTION plansmith_count_tasks();
    """,
    # 2: flows (every version kept: runs keep the one they started on) and their runs;
    # SQLite's migration 5.
    """
    CREATE TABLE flows (
        seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order
        id              TEXT NOT NULL UNIQUE,
        latest_version  INTEGER NOT NULL
    );
    CREATE TABLE flow_versions (
        flow_id     TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
        version     INTEGER NOT NULL,
        definition  TEXT NOT NULL,       -- JSON of the flow at this version
        PRIMARY KEY (flow_id, version)
    );
    CREATE TABLE flow_runs (
        seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id              TEXT NOT NULL UNIQUE,
        flow_id         TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
        status          INTEGER NOT NULL,
        body            TEXT NOT NULL,   -- JSON of the run
        message         TEXT NOT NULL,
        completed_path  TEXT NOT NULL    -- JSON array; [] until the run completes
    );
    CREATE INDEX flow_runs_by_flow ON flow_runs(flow_id, status, seq);
    CREATE INDEX flow_runs_by_status ON flow_runs(status, seq);
    """,
    # 3: execution and replanning (SQLite's migration 6): a task's earliest start and
    # outputs, a plan's recovery policy, agents' availability, the replanning history.
    """
    ALTER TABLE tasks ADD COLUMN not_before BIGINT NOT NULL DEFAULT 0;  -- µs, 0: any time
    ALTER TABLE tasks ADD COLUMN outputs TEXT NOT NULL DEFAULT '{}';    -- JSON object
    ALTER TABLE plans ADD COLUMN replan_policy TEXT;                    -- JSON, NULL: defaults

    CREATE TABLE agent_availability (
        plan_id         TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        agent_id        TEXT NOT NULL,
        available       INTEGER NOT NULL,
        until           BIGINT NOT NULL,    -- µs, 0: until changed
        reason          TEXT NOT NULL,
        last_heartbeat  BIGINT NOT NULL,    -- µs, 0: never sent one
        timed_out       INTEGER NOT NULL,   -- made unavailable by the heartbeat timeout
        PRIMARY KEY (plan_id, agent_id)
    );
    CREATE INDEX agent_availability_by_heartbeat ON agent_availability(last_heartbeat)
        WHERE available = 1 AND last_heartbeat > 0;

    CREATE TABLE replan_records (
        seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- decision order
        id                TEXT NOT NULL UNIQUE,
        plan_id           TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        task_id           TEXT NOT NULL,   -- no foreign key: the history outlives the task
        revision          BIGINT NOT NULL,
        category          INTEGER NOT NULL,
        decision          INTEGER NOT NULL,
        confidence        DOUBLE PRECISION NOT NULL,
        reason            TEXT NOT NULL,
        state             INTEGER NOT NULL,
        trigger           INTEGER NOT NULL,
        tasks_added       TEXT NOT NULL,   -- JSON arrays of task ids
        tasks_changed     TEXT NOT NULL,
        tasks_removed     TEXT NOT NULL,
        failure           TEXT,            -- JSON of the failure reported, NULL for none
        agent_id          TEXT NOT NULL,
        new_agent_id      TEXT NOT NULL,
        not_before        BIGINT NOT NULL,
        attempt           INTEGER NOT NULL,
        applied_revision  BIGINT NOT NULL,
        create_time       BIGINT NOT NULL
    );
    CREATE INDEX replan_records_by_plan ON replan_records(plan_id, seq);
    CREATE INDEX replan_records_by_task ON replan_records(task_id, seq);
    """,
    # 4: why the replanner blocked a task (SQLite's migration 7).
    """
    ALTER TABLE tasks ADD COLUMN blocked_reason TEXT NOT NULL DEFAULT '';  -- '': not blocked
    """,
]
