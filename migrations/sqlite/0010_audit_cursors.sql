-- How far the audit log has been forwarded (to syslog): the last entry id delivered. One row
-- per destination; the node holding the forwarder's lease advances it after each delivery.
CREATE TABLE audit_cursors (
    name       TEXT    PRIMARY KEY,
    last_id    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
