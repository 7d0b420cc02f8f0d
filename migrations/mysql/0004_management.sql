-- What the management API needs (MySQL / MariaDB; the same schema as sqlite/0004).

ALTER TABLE users ADD COLUMN realname VARCHAR(255), ADD COLUMN comment TEXT;

ALTER TABLE projects ADD COLUMN owner_id BIGINT, ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE projects SET updated_at = created_at;

-- Members get an id; one row per project and principal.
ALTER TABLE project_members
    DROP FOREIGN KEY project_members_ibfk_1,
    DROP PRIMARY KEY,
    ADD COLUMN id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY FIRST,
    ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT project_members_unique UNIQUE (project_id, kind, principal),
    ADD CONSTRAINT project_members_project FOREIGN KEY (project_id) REFERENCES projects (id);
UPDATE project_members SET updated_at = created_at;

ALTER TABLE robots
    ADD COLUMN description TEXT NOT NULL DEFAULT '',
    ADD COLUMN project_id BIGINT,
    ADD COLUMN duration_days BIGINT NOT NULL DEFAULT -1,
    ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE robots SET updated_at = created_at;
