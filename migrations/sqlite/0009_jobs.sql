-- The job system. Times are Unix milliseconds.
--
-- An execution is one run of something (a purge, a replication) started by hand, by a
-- schedule or by an event; its jobs (Harbor's tasks) are the units a worker claims. A job is
-- held by one node at a time: `holder` until `lease_until`, renewed by heartbeats. Every claim
-- increments `fence`, and every write a worker makes names the fence it claimed with, so a
-- node that lost its lease can no longer write results or checkpoints.
CREATE TABLE job_executions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    trigger_type TEXT   NOT NULL,
    schedule    TEXT,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX job_executions_kind ON job_executions (kind, id);

CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id   INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    params         TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    max_attempts   INTEGER NOT NULL,
    run_at         INTEGER NOT NULL,
    holder         TEXT,
    lease_until    INTEGER,
    fence          INTEGER NOT NULL DEFAULT 0,
    checkpoint     TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    result         TEXT,
    error          TEXT,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_execution ON jobs (execution_id);
CREATE INDEX jobs_kind ON jobs (kind, state);

-- A job's log, bounded per job (the oldest lines go first).
CREATE TABLE job_logs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    level   TEXT    NOT NULL,
    message TEXT    NOT NULL
);
CREATE INDEX job_logs_job ON job_logs (job_id, id);

-- Schedules fire once per occurrence across all nodes: the node that moves `next_at` on from
-- the occurrence it saw creates the execution, in the same transaction.
CREATE TABLE job_schedules (
    name       TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    params     TEXT    NOT NULL,
    cron       TEXT    NOT NULL,
    next_at    INTEGER NOT NULL,
    last_at    INTEGER,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

-- Job kinds an administrator paused: their jobs wait, unclaimed.
CREATE TABLE job_kinds (
    kind   TEXT    PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0
);

-- The nodes running workers, and when each last reported.
CREATE TABLE job_nodes (
    node         TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    workers      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
