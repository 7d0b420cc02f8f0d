-- Leases of background jobs (MySQL / MariaDB; the same schema as sqlite/0005).
CREATE TABLE job_leases (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    holder     VARCHAR(255) NOT NULL,
    expires_at BIGINT      NOT NULL
) ENGINE = InnoDB;
