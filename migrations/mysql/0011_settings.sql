-- Settings administrators change while the registry runs (MySQL / MariaDB; as sqlite/0011).
CREATE TABLE settings (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    value      TEXT        NOT NULL,
    updated_at BIGINT      NOT NULL
) ENGINE = InnoDB;
