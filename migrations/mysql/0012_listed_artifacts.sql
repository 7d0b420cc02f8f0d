-- How many indexes in its repository list each manifest (MySQL / MariaDB; as sqlite/0012).
ALTER TABLE manifests ADD COLUMN index_parents INT NOT NULL DEFAULT 0;
UPDATE manifests m SET index_parents = (
    SELECT COUNT(*) FROM manifest_references x
    WHERE x.repository_id = m.repository_id AND x.child_digest = m.digest
      AND x.kind = 'manifest'
);
CREATE INDEX manifests_listed ON manifests (repository_id, index_parents, created_at, digest, subject_digest);
