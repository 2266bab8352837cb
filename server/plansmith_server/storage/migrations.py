"""Versioned schema migrations, applied in order at start-up (tracked in PRAGMA user_version).

Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: plans, tasks, dependency edges, the per-plan change log, idempotency records.
    """
    CREATE TABLE plans (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order, for stable paging
        id           TEXT NOT NULL UNIQUE,
        project_id   TEXT NOT NULL,
        name         TEXT NOT NULL,
        description  TEXT NOT NULL,
        objectives   TEXT NOT NULL,      -- JSON array
        constraints  TEXT NOT NULL,      -- JSON array
        metadata     TEXT NOT NULL,      -- JSON object
        status       INTEGER NOT NULL,
        agents       TEXT NOT NULL,      -- JSON array of {id, name, capabilities}
        create_time  INTEGER NOT NULL,   -- µs since the epoch
        update_time  INTEGER NOT NULL,
        version      INTEGER NOT NULL,   -- the etag derives from it
        revision     INTEGER NOT NULL    -- bumped by every mutation of the plan or its tasks
    );
    CREATE INDEX plans_by_project ON plans(project_id, seq);
    CREATE INDEX plans_by_status ON plans(status, seq);

    CREATE TABLE tasks (
        seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
        id                    TEXT NOT NULL UNIQUE,
        plan_id               TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        title                 TEXT NOT NULL,
        description           TEXT NOT NULL,
        priority              INTEGER NOT NULL,
        status                INTEGER NOT NULL,
        estimated_hours       REAL NOT NULL,
        actual_hours          REAL NOT NULL,
        progress              INTEGER NOT NULL,
        assigned_to           TEXT NOT NULL,
        required_capabilities TEXT NOT NULL,  -- JSON array
        parent_task_id        TEXT NOT NULL,
        metadata              TEXT NOT NULL,  -- JSON object
        optimistic_hours      REAL NOT NULL,
        pessimistic_hours     REAL NOT NULL,
        acceptance_criteria   TEXT NOT NULL,  -- JSON array
        schedule_start        REAL,           -- NULL when not scheduled
        schedule_end          REAL,
        create_time           INTEGER NOT NULL,
        update_time           INTEGER NOT NULL,
        version               INTEGER NOT NULL
    );
    CREATE INDEX tasks_by_plan ON tasks(plan_id, seq);
    CREATE INDEX tasks_by_plan_status ON tasks(plan_id, status, seq);
    CREATE INDEX tasks_by_plan_assignee ON tasks(plan_id, assigned_to, seq);

    CREATE TABLE task_dependencies (
        plan_id     TEXT NOT NULL,
        task_id     TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        depends_on  TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,     -- keeps the caller's order
        PRIMARY KEY (task_id, depends_on)
    ) WITHOUT ROWID;
    CREATE INDEX task_dependencies_reverse ON task_dependencies(depends_on);
    CREATE INDEX task_dependencies_by_plan ON task_dependencies(plan_id);

    -- No foreign key to plans: the log outlives a deleted plan so a watcher can see the end.
    CREATE TABLE plan_changes (
        plan_id      TEXT NOT NULL,
        revision     INTEGER NOT NULL,
        position     INTEGER NOT NULL,    -- order of the changes within one revision
        kind         TEXT NOT NULL,
        entity_type  TEXT NOT NULL,
        entity_id    TEXT NOT NULL,
        snapshot     TEXT NOT NULL,       -- JSON of the entity after the change
        create_time  INTEGER NOT NULL,
        PRIMARY KEY (plan_id, revision, position)
    ) WITHOUT ROWID;

    CREATE TABLE idempotency_keys (
        request_id   TEXT PRIMARY KEY,
        method       TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,       -- hash of the request without its request_id
        response     TEXT NOT NULL,       -- JSON of what the first call returned
        create_time  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_by_time ON idempotency_keys(create_time);
    """,
    # 2: find a task's subtasks (DecomposeTask) without scanning the plan.
    """
    CREATE INDEX tasks_by_parent ON tasks(parent_task_id) WHERE parent_task_id != '';
    """,
    # 3: a plan's task count kept by triggers, so the per-plan task limit is checked by
    # reading one row instead of counting the plan's tasks on every insert.
    """
    ALTER TABLE plans ADD COLUMN task_count INTEGER NOT NULL DEFAULT 0;
    UPDATE plans SET task_count = (SELECT count(*) FROM tasks WHERE tasks.plan_id = plans.id);
    CREATE TRIGGER tasks_counted_on_insert AFTER INSERT ON tasks BEGIN
        UPDATE plans SET task_count = task_count + 1 WHERE id = NEW.plan_id;
    END;
    CREATE TRIGGER tasks_counted_on_delete AFTER DELETE ON tasks BEGIN
        UPDATE plans SET task_count = task_count - 1 WHERE id = OLD.plan_id;
    END;
    CREATE TRIGGER tasks_counted_on_move AFTER UPDATE OF plan_id ON tasks
    WHEN OLD.plan_id != NEW.plan_id BEGIN
        UPDATE plans SET task_count = task_count - 1 WHERE id = OLD.plan_id;
        UPDATE plans SET task_count = task_count + 1 WHERE id = NEW.plan_id;
    END;
    """,
    # 4: ListTasks by priority, of a plan or of every plan of a project (an agent's work
    # across plans), seeks an index instead of reading every task of the plans.
    """
    CREATE INDEX tasks_by_plan_priority ON tasks(plan_id, priority, seq);
    """,
    # 5: flows (every version kept: runs keep the one they started on) and their runs;
    # a completed run keeps its message and collapsed path for the planner to learn from.
    """
    CREATE TABLE flows (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order, for paging
        id              TEXT NOT NULL UNIQUE,
        latest_version  INTEGER NOT NULL
    );
    CREATE TABLE flow_versions (
        flow_id     TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
        version     INTEGER NOT NULL,
        definition  TEXT NOT NULL,       -- JSON of the flow at this version
        PRIMARY KEY (flow_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE flow_runs (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
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
    # 6: execution and replanning: a task's earliest start and outputs, a plan's recovery
    # policy, agents' availability, and the history of replanning decisions.
    """
    ALTER TABLE tasks ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;  -- µs, 0: any time
    ALTER TABLE tasks ADD COLUMN outputs TEXT NOT NULL DEFAULT '{}';     -- JSON object
    ALTER TABLE plans ADD COLUMN replan_policy TEXT;                     -- JSON, NULL: defaults

    CREATE TABLE agent_availability (
        plan_id         TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        agent_id        TEXT NOT NULL,
        available       INTEGER NOT NULL,
        until           INTEGER NOT NULL,   -- µs, 0: until changed
        reason          TEXT NOT NULL,
        last_heartbeat  INTEGER NOT NULL,   -- µs, 0: never sent one
        timed_out       INTEGER NOT NULL,   -- made unavailable by the heartbeat timeout
        PRIMARY KEY (plan_id, agent_id)
    ) WITHOUT ROWID;
    CREATE INDEX agent_availability_by_heartbeat ON agent_availability(last_heartbeat)
        WHERE available = 1 AND last_heartbeat > 0;

    CREATE TABLE replan_records (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,  -- decision order
        id                TEXT NOT NULL UNIQUE,
        plan_id           TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        task_id           TEXT NOT NULL,   -- no foreign key: the history outlives the task
        revision          INTEGER NOT NULL,
        category          INTEGER NOT NULL,
        decision          INTEGER NOT NULL,
        confidence        REAL NOT NULL,
        reason            TEXT NOT NULL,
        state             INTEGER NOT NULL,
        trigger           INTEGER NOT NULL,
        tasks_added       TEXT NOT NULL,   -- JSON arrays of task ids
        tasks_changed     TEXT NOT NULL,
        tasks_removed     TEXT NOT NULL,
        failure           TEXT,            -- JSON of the failure reported, NULL for none
        agent_id          TEXT NOT NULL,
        new_agent_id      TEXT NOT NULL,
        not_before        INTEGER NOT NULL,
        attempt           INTEGER NOT NULL,
        applied_revision  INTEGER NOT NULL,
        create_time       INTEGER NOT NULL
    );
    CREATE INDEX replan_records_by_plan ON replan_records(plan_id, seq);
    CREATE INDEX replan_records_by_task ON replan_records(task_id, seq);
    """,
    # 7: why the replanner blocked a task (a dependency it sent back to retry).
    """
    ALTER TABLE tasks ADD COLUMN blocked_reason TEXT NOT NULL DEFAULT '';  -- '': not blocked
    """,
]


def statements(script: str) -> list[str]:
    """The statements of a migration, whole: a trigger's body has semicolons of its own."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete statement in migration: {current.strip()[:80]!r}")
    return out
