-- Settings administrators change while the registry runs (the configuration page and
-- `/api/v2.0/configurations`), by Harbor's key; the value is JSON. Every node reads them
-- every few seconds; a key absent here has the configuration file's (or the default) value.
CREATE TABLE settings (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
