-- Robot accounts (MySQL / MariaDB; the same schema as sqlite/0003).

CREATE TABLE robots (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL UNIQUE,
    secret_hash VARCHAR(255) NOT NULL,
    permissions MEDIUMTEXT   NOT NULL,
    expires_at  BIGINT,
    disabled    BIGINT       NOT NULL DEFAULT 0,
    created_at  BIGINT       NOT NULL
) ENGINE = InnoDB;
