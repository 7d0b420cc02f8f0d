-- The job system (MySQL / MariaDB; the same schema as sqlite/0009, which explains it).
-- Claims use SELECT … FOR UPDATE SKIP LOCKED (MySQL 8.0, MariaDB 10.6).
CREATE TABLE job_executions (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    trigger_type VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    schedule    VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin,
    created_by  VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at  BIGINT       NOT NULL,
    KEY job_executions_kind (kind, id)
) ENGINE = InnoDB;

CREATE TABLE jobs (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    execution_id   BIGINT       NOT NULL,
    kind           VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    params         TEXT         NOT NULL,
    state          VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    attempts       INT          NOT NULL DEFAULT 0,
    max_attempts   INT          NOT NULL,
    run_at         BIGINT       NOT NULL,
    holder         VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin,
    lease_until    BIGINT,
    fence          BIGINT       NOT NULL DEFAULT 0,
    checkpoint     MEDIUMTEXT,
    stop_requested INT          NOT NULL DEFAULT 0,
    result         MEDIUMTEXT,
    error          TEXT,
    created_at     BIGINT       NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT,
    updated_at     BIGINT       NOT NULL,
    KEY jobs_due (state, run_at),
    KEY jobs_execution (execution_id),
    KEY jobs_kind (kind, state)
) ENGINE = InnoDB;

CREATE TABLE job_logs (
    id      BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_id  BIGINT      NOT NULL,
    at      BIGINT      NOT NULL,
    level   VARCHAR(8)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    message TEXT        NOT NULL,
    KEY job_logs_job (job_id, id)
) ENGINE = InnoDB;

CREATE TABLE job_schedules (
    name       VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    kind       VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    params     TEXT         NOT NULL,
    cron       VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    next_at    BIGINT       NOT NULL,
    last_at    BIGINT,
    paused     INT          NOT NULL DEFAULT 0,
    updated_at BIGINT       NOT NULL
) ENGINE = InnoDB;

CREATE TABLE job_kinds (
    kind   VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    paused INT         NOT NULL DEFAULT 0
) ENGINE = InnoDB;

CREATE TABLE job_nodes (
    node         VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    host         VARCHAR(255) NOT NULL,
    workers      INT          NOT NULL,
    started_at   BIGINT       NOT NULL,
    heartbeat_at BIGINT       NOT NULL
) ENGINE = InnoDB;
