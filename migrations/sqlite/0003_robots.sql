-- Robot accounts: `robot$<name>` (system level) or `robot$<project>+<name>` (project level).
-- permissions: JSON [{"project": "<name>" or "*", "actions": ["pull", "push", "delete"]}].
-- The secret is stored as an argon2id hash; expires_at NULL means never.
CREATE TABLE robots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    secret_hash TEXT    NOT NULL,
    permissions TEXT    NOT NULL,
    expires_at  INTEGER,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
