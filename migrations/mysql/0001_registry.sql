-- Repositories, blobs and their links, manifests, tags, referrers and upload sessions
-- (MySQL / MariaDB; the same schema as sqlite/0001). Times are Unix seconds.
-- Names, digests and tags are ASCII with binary collation: comparisons are case-sensitive and
-- ordering is by byte, as in SQLite (catalog order and project name ranges rely on it).

CREATE TABLE repositories (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(700) CHARACTER SET ascii COLLATE ascii_bin NOT NULL UNIQUE,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL
) ENGINE = InnoDB;

CREATE TABLE blobs (
    digest      VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    size        BIGINT       NOT NULL,
    created_at  BIGINT       NOT NULL
) ENGINE = InnoDB;

CREATE TABLE repository_blobs (
    repository_id BIGINT       NOT NULL,
    digest        VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at    BIGINT       NOT NULL,
    PRIMARY KEY (repository_id, digest),
    FOREIGN KEY (repository_id) REFERENCES repositories (id),
    FOREIGN KEY (digest) REFERENCES blobs (digest)
) ENGINE = InnoDB;

CREATE TABLE manifests (
    repository_id  BIGINT       NOT NULL,
    digest         VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    media_type     VARCHAR(255) NOT NULL,
    artifact_type  VARCHAR(255),
    subject_digest VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin,
    annotations    MEDIUMTEXT,
    size           BIGINT       NOT NULL,
    content        LONGBLOB     NOT NULL,
    created_at     BIGINT       NOT NULL,
    PRIMARY KEY (repository_id, digest),
    KEY manifests_by_subject (repository_id, subject_digest),
    FOREIGN KEY (repository_id) REFERENCES repositories (id)
) ENGINE = InnoDB;

CREATE TABLE manifest_references (
    repository_id   BIGINT       NOT NULL,
    manifest_digest VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    child_digest    VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind            VARCHAR(16)  NOT NULL,
    PRIMARY KEY (repository_id, manifest_digest, child_digest),
    KEY manifest_references_by_child (repository_id, child_digest)
) ENGINE = InnoDB;

CREATE TABLE tags (
    repository_id   BIGINT       NOT NULL,
    name            VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    manifest_digest VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    updated_at      BIGINT       NOT NULL,
    PRIMARY KEY (repository_id, name),
    KEY tags_by_manifest (repository_id, manifest_digest),
    FOREIGN KEY (repository_id) REFERENCES repositories (id)
) ENGINE = InnoDB;

CREATE TABLE uploads (
    id          VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    repository  VARCHAR(700) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    size        BIGINT       NOT NULL,
    hash_state  MEDIUMBLOB,
    started_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL
) ENGINE = InnoDB;
