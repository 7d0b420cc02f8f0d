-- Secrets every node shares, created by whichever node asks first (insert-or-ignore, then read):
-- today the key of the shared credential cache, so that what Redis holds about recent logins
-- is a keyed hash nobody without the database can test passwords against.
CREATE TABLE cluster_secrets (
    name   TEXT PRIMARY KEY,
    secret TEXT NOT NULL
);
