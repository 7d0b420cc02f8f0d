-- Leases of background jobs that run on one node at a time: the holder (a node id) until
-- expires_at (Unix seconds); another node takes over once it has expired.
CREATE TABLE job_leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
