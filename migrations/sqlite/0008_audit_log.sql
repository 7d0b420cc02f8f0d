-- The audit log: one row per state change (written in the change's own transaction) or
-- refused attempt. op_time is Unix milliseconds. project_id names the project the entry
-- belongs to (for a project's own log); user_id the acting user, so that a user deleted with
-- their data forgotten can have their name replaced in old entries.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    op_time        INTEGER NOT NULL,
    project_id     INTEGER,
    user_id        INTEGER,
    principal      TEXT    NOT NULL,
    username       TEXT    NOT NULL,
    operation      TEXT    NOT NULL,
    resource_type  TEXT    NOT NULL,
    resource       TEXT    NOT NULL,
    client_address TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    detail         TEXT
);
CREATE INDEX audit_log_time ON audit_log (op_time);
CREATE INDEX audit_log_project ON audit_log (project_id, op_time);
CREATE INDEX audit_log_user ON audit_log (username, op_time);
CREATE INDEX audit_log_user_id ON audit_log (user_id);
