-- Identity and access: users, projects and their members, token signing keys.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT,
    email         TEXT,
    sysadmin      INTEGER NOT NULL DEFAULT 0,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- The first path component of a repository name is its project.
CREATE TABLE projects (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    public     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
INSERT INTO projects (name, public, created_at) VALUES ('library', 1, CAST(strftime('%s', 'now') AS INTEGER));

-- Members of a project: users (kind 'user', principal = user id) with a role.
-- role: 'projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'.
CREATE TABLE project_members (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    kind       TEXT    NOT NULL,
    principal  TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, kind, principal)
);

-- Token signing keys, shared by every node through this table. The key that signs is the
-- newest one already active; every key not retired verifies.
CREATE TABLE signing_keys (
    kid          TEXT    PRIMARY KEY,
    private_pem  TEXT    NOT NULL,
    cert_pem     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retires_at   INTEGER
);
