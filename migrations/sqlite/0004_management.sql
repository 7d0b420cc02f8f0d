-- What the management API (/api/v2.0) needs beyond authentication: user profiles, project
-- owners and update times, member ids, and robot descriptions, levels and durations.

ALTER TABLE users ADD COLUMN realname TEXT;
ALTER TABLE users ADD COLUMN comment TEXT;

ALTER TABLE projects ADD COLUMN owner_id INTEGER;
ALTER TABLE projects ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
UPDATE projects SET updated_at = created_at;

-- Members get an id (the API addresses them by it); one row per project and principal.
CREATE TABLE members (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    kind       TEXT    NOT NULL,
    principal  TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    -- A default, so that nodes still running the previous release can insert members.
    updated_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project_id, kind, principal)
);
INSERT INTO members (project_id, kind, principal, role, created_at, updated_at)
    SELECT project_id, kind, principal, role, created_at, created_at FROM project_members;
DROP TABLE project_members;
ALTER TABLE members RENAME TO project_members;

-- Project robots belong to their project (project_id); system robots have none.
-- duration_days: the lifetime asked for (-1: never), kept so that a refresh can renew it.
ALTER TABLE robots ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE robots ADD COLUMN project_id INTEGER;
ALTER TABLE robots ADD COLUMN duration_days INTEGER NOT NULL DEFAULT -1;
ALTER TABLE robots ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
UPDATE robots SET updated_at = created_at;
