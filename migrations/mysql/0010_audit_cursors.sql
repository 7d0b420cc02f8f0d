-- How far the audit log has been forwarded (MySQL / MariaDB; as sqlite/0010).
CREATE TABLE audit_cursors (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    last_id    BIGINT      NOT NULL,
    updated_at BIGINT      NOT NULL
) ENGINE = InnoDB;
