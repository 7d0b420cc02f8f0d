-- Repositories, blobs and their links, manifests, tags, referrers and upload sessions.
-- Times are Unix seconds. Digests are stored as their canonical text ("sha256:…").

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Every verified blob in the blob store (global, content-addressed).
CREATE TABLE blobs (
    digest      TEXT    PRIMARY KEY,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Which repositories may serve which blob.
CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    digest        TEXT    NOT NULL REFERENCES blobs(digest),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);

CREATE TABLE manifests (
    repository_id  INTEGER NOT NULL REFERENCES repositories(id),
    digest         TEXT    NOT NULL,
    media_type     TEXT    NOT NULL,
    artifact_type  TEXT,
    subject_digest TEXT,
    annotations    TEXT,
    size           INTEGER NOT NULL,
    content        BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests (repository_id, subject_digest);

-- What each manifest references: kind 'blob' (config, layers) or 'manifest' (index entries).
CREATE TABLE manifest_references (
    repository_id   INTEGER NOT NULL,
    manifest_digest TEXT    NOT NULL,
    child_digest    TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    PRIMARY KEY (repository_id, manifest_digest, child_digest)
);
CREATE INDEX manifest_references_by_child ON manifest_references (repository_id, child_digest);

CREATE TABLE tags (
    repository_id   INTEGER NOT NULL REFERENCES repositories(id),
    name            TEXT    NOT NULL,
    manifest_digest TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name)
);
CREATE INDEX tags_by_manifest ON tags (repository_id, manifest_digest);

-- Upload sessions. The bytes are in the blob store; the offset and the running hash state are
-- here, so that any node can continue any upload. (One writer at a time is the blob store's
-- job; progress is recorded only if the size is still the one the writer started from.)
CREATE TABLE uploads (
    id            TEXT    PRIMARY KEY,
    repository    TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    hash_state    BLOB,
    started_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
