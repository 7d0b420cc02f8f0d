-- Identity and access: users, projects and their members, token signing keys
-- (MySQL / MariaDB; the same schema as sqlite/0002). User names and group DNs compare
-- case-sensitively, as in SQLite.

CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL UNIQUE,
    password_hash VARCHAR(255),
    email         VARCHAR(255),
    sysadmin      BIGINT       NOT NULL DEFAULT 0,
    disabled      BIGINT       NOT NULL DEFAULT 0,
    created_at    BIGINT       NOT NULL,
    updated_at    BIGINT       NOT NULL
) ENGINE = InnoDB;

CREATE TABLE projects (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name       VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL UNIQUE,
    public     BIGINT       NOT NULL DEFAULT 0,
    created_at BIGINT       NOT NULL
) ENGINE = InnoDB;
INSERT INTO projects (name, public, created_at) VALUES ('library', 1, UNIX_TIMESTAMP());

CREATE TABLE project_members (
    project_id BIGINT        NOT NULL,
    kind       VARCHAR(16)   NOT NULL,
    principal  VARCHAR(700)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    role       VARCHAR(32)   NOT NULL,
    created_at BIGINT        NOT NULL,
    PRIMARY KEY (project_id, kind, principal),
    FOREIGN KEY (project_id) REFERENCES projects (id)
) ENGINE = InnoDB;

CREATE TABLE signing_keys (
    kid          VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    private_pem  TEXT        NOT NULL,
    cert_pem     TEXT        NOT NULL,
    created_at   BIGINT      NOT NULL,
    activates_at BIGINT      NOT NULL,
    retires_at   BIGINT
) ENGINE = InnoDB;
