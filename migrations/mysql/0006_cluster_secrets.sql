-- Secrets every node shares (MySQL / MariaDB; the same schema as sqlite/0006).
CREATE TABLE cluster_secrets (
    name   VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    secret VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
) ENGINE = InnoDB;
