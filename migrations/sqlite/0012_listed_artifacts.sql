-- How many indexes in its repository list each manifest (0: an artifact a repository's listing
-- shows). Kept by manifest put and delete, so that listings, their totals and a repository's
-- artifact count read an index instead of probing manifest_references once per manifest.
ALTER TABLE manifests ADD COLUMN index_parents INTEGER NOT NULL DEFAULT 0;
UPDATE manifests SET index_parents = (
    SELECT COUNT(*) FROM manifest_references x
    WHERE x.repository_id = manifests.repository_id AND x.child_digest = manifests.digest
      AND x.kind = 'manifest'
);
CREATE INDEX manifests_listed ON manifests (repository_id, index_parents, created_at, digest, subject_digest);
