-- Robot permissions by project id (MySQL / MariaDB; the same schema as sqlite/0007, which
-- explains it). JSON_TABLE needs MySQL 8.0 or MariaDB 10.6.
CREATE TABLE robot_permissions (
    robot_id   BIGINT       NOT NULL,
    project_id BIGINT,
    actions    VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    position   BIGINT       NOT NULL DEFAULT 0,
    UNIQUE KEY robot_permissions_robot (robot_id, project_id),
    KEY robot_permissions_by_project (project_id)
) ENGINE = InnoDB;

INSERT IGNORE INTO robot_permissions (robot_id, project_id, actions)
SELECT r.id, r.project_id, COALESCE(JSON_EXTRACT(r.permissions, '$[0].actions'), '[]')
FROM robots r JOIN projects p ON p.id = r.project_id
WHERE JSON_VALID(r.permissions);

INSERT IGNORE INTO robot_permissions (robot_id, project_id, actions, position)
SELECT r.id, NULL, JSON_EXTRACT(r.permissions, CONCAT('$[', j.i - 1, '].actions')), j.i - 1
FROM robots r,
     JSON_TABLE(IF(JSON_VALID(r.permissions), r.permissions, '[]'), '$[*]'
                COLUMNS (i FOR ORDINALITY, project VARCHAR(255) PATH '$.project')) j
WHERE r.project_id IS NULL AND j.project = '*';

INSERT IGNORE INTO robot_permissions (robot_id, project_id, actions, position)
SELECT r.id, p.id, JSON_EXTRACT(r.permissions, CONCAT('$[', j.i - 1, '].actions')), j.i - 1
FROM robots r,
     JSON_TABLE(IF(JSON_VALID(r.permissions), r.permissions, '[]'), '$[*]'
                COLUMNS (i FOR ORDINALITY, project VARCHAR(255) PATH '$.project')) j,
     projects p
WHERE r.project_id IS NULL AND p.name = CONVERT(j.project USING ascii) AND p.created_at <= r.updated_at;
