-- Robot permissions by project id, one row per robot and project (NULL: every project), so
-- that a grant follows its project and dies with it: a project deleted and re-created under the
-- same name by someone else inherits nothing. Replaces robots.permissions (JSON by project
-- name), which nodes of this release no longer read and write as '[]' (expand/contract: a
-- later release drops it; a robot created on an upgraded node has no permissions on nodes still
-- running the previous release).
CREATE TABLE robot_permissions (
    robot_id   INTEGER NOT NULL,
    project_id INTEGER,
    -- JSON array of registry actions: "pull", "push", "delete".
    actions    TEXT    NOT NULL,
    -- Where the grant was in the list it was given in (shown in that order).
    position   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (robot_id, project_id)
);
CREATE INDEX robot_permissions_by_project ON robot_permissions (project_id);

-- Project robots: their own project, whatever name their permission carried (an id written as a
-- name used to be matched by name).
INSERT OR IGNORE INTO robot_permissions (robot_id, project_id, actions)
SELECT r.id, r.project_id, COALESCE(json_extract(r.permissions, '$[0].actions'), '[]')
FROM robots r JOIN projects p ON p.id = r.project_id
WHERE json_valid(r.permissions);

-- System robots: every project ('*'), and each project named that already existed when the
-- permission was last written (a project created later under that name is not the one meant).
INSERT OR IGNORE INTO robot_permissions (robot_id, project_id, actions, position)
SELECT r.id, NULL, json_extract(j.value, '$.actions'), j.key
FROM robots r, json_each(CASE WHEN json_valid(r.permissions) THEN r.permissions ELSE '[]' END) j
WHERE r.project_id IS NULL AND json_extract(j.value, '$.project') = '*';

INSERT OR IGNORE INTO robot_permissions (robot_id, project_id, actions, position)
SELECT r.id, p.id, json_extract(j.value, '$.actions'), j.key
FROM robots r, json_each(CASE WHEN json_valid(r.permissions) THEN r.permissions ELSE '[]' END) j
JOIN projects p ON p.name = json_extract(j.value, '$.project')
WHERE r.project_id IS NULL AND p.created_at <= r.updated_at;
