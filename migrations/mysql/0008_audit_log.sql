-- The audit log (MySQL / MariaDB; the same schema as sqlite/0008, which explains it).
CREATE TABLE audit_log (
    id             BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    op_time        BIGINT        NOT NULL,
    project_id     BIGINT,
    user_id        BIGINT,
    principal      VARCHAR(16)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    username       VARCHAR(255)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    operation      VARCHAR(32)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    resource_type  VARCHAR(32)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    resource       VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    client_address VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    outcome        VARCHAR(16)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    detail         TEXT,
    KEY audit_log_time (op_time),
    KEY audit_log_project (project_id, op_time),
    KEY audit_log_user (username, op_time),
    KEY audit_log_user_id (user_id)
) ENGINE = InnoDB;
