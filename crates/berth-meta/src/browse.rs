//! Repositories, artifacts and tags as the management API shows them: pages with totals,
//! sizes, tags and push times.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::identity::{Bind, Conditions, Page, Paged, project_repositories};
use crate::store::MetadataStore;

/// A repository with content.
#[derive(Debug, Clone)]
pub struct RepositorySummary {
    /// Row id.
    pub id: i64,
    /// Full name, `<project>/…`.
    pub name: String,
    /// Artifacts not listed by an index (those are counted with their index).
    pub artifact_count: u64,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last pushed to or changed (Unix seconds).
    pub updated_at: i64,
}

/// An artifact: a manifest, with its tags and what it references.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Manifest digest.
    pub digest: String,
    /// Manifest media type.
    pub media_type: String,
    /// Artifact type (the config media type of images).
    pub artifact_type: Option<String>,
    /// Digest of the subject, for signatures, SBOMs and other referrers.
    pub subject: Option<String>,
    /// The manifest's size plus the sizes of the blobs it references.
    pub size: u64,
    /// Pushed (Unix seconds).
    pub pushed_at: i64,
    /// Tags pointing at it, by name, with when each was pushed.
    pub tags: Vec<(String, i64)>,
    /// Manifests it lists (an index's children).
    pub children: Vec<String>,
}

/// Outcome of tagging an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagCreate {
    /// Tagged.
    Created,
    /// The tag exists already and points at this digest.
    Exists(String),
    /// The artifact is not in the repository.
    UnknownArtifact,
}

fn repository_from_row(r: &AnyRow) -> Result<RepositorySummary, MetaError> {
    Ok(RepositorySummary {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        artifact_count: u64::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
        created_at: r.try_get(3)?,
        updated_at: r.try_get(4)?,
    })
}

const REPOSITORY_SELECT: &str = "SELECT r.id, r.name, \
     (SELECT COUNT(*) FROM manifests m WHERE m.repository_id = r.id AND m.index_parents = 0), \
     r.created_at, r.updated_at";

/// An artifact that is not a referrer of another in its repository (those are shown under
/// their subject).
const UNDER_NO_SUBJECT: &str = "(m.subject_digest IS NULL OR NOT EXISTS (SELECT 1 FROM \
     manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest))";

/// Manifests of a repository that no index in it lists (the index `manifests_listed`).
const TOP_LEVEL: &str = "m.index_parents = 0";

impl MetadataStore {
    /// Repositories with content a page at a time, by name: those of the projects named in
    /// `projects` (all when `None`), optionally only names containing `name`.
    pub async fn list_repository_summaries(
        &self,
        projects: Option<&[String]>,
        name: Option<&str>,
        page: Page,
    ) -> Result<Paged<RepositorySummary>, MetaError> {
        let mut c = Conditions::default();
        c.push(
            "EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)",
            [],
        );
        if let Some(projects) = projects {
            if projects.is_empty() {
                return Ok(Paged {
                    items: Vec::new(),
                    total: 0,
                });
            }
            let (conditions, binds): (Vec<String>, Vec<_>) = projects
                .iter()
                .map(|p| project_repositories("r.name", p))
                .unzip();
            c.push(
                format!("({})", conditions.join(" OR ")),
                binds.into_iter().flatten(),
            );
        }
        if let Some(part) = name {
            c.push("INSTR(r.name, ?) > 0", [Bind::Text(part.to_owned())]);
        }
        let (rows, total) = c
            .page(
                &self.pool,
                REPOSITORY_SELECT,
                "FROM repositories r",
                "ORDER BY r.name",
                page,
            )
            .await?;
        Ok(Paged {
            items: rows
                .iter()
                .map(repository_from_row)
                .collect::<Result<_, _>>()?,
            total,
        })
    }

    /// One repository, if it has content.
    pub async fn repository_summary(
        &self,
        name: &str,
    ) -> Result<Option<RepositorySummary>, MetaError> {
        let sql = format!(
            "{REPOSITORY_SELECT} FROM repositories r WHERE r.name = ? \
             AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)"
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(repository_from_row).transpose()
    }

    /// Deletes a repository: its tags, manifests and blob links (the blobs stay in the blob
    /// store for garbage collection). Returns whether it had content.
    pub async fn delete_repository(&self, name: &str) -> Result<bool, MetaError> {
        let mut tx = self.pool.begin().await?;
        let Some(id) = self.lock_repository(&mut tx, name, false).await? else {
            return Ok(false);
        };
        let had: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM manifests WHERE repository_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM tags WHERE repository_id = ?",
            "DELETE FROM manifest_references WHERE repository_id = ?",
            "DELETE FROM manifests WHERE repository_id = ?",
            "DELETE FROM repository_blobs WHERE repository_id = ?",
            "DELETE FROM repositories WHERE id = ?",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        // Upload sessions into it end too: none is finished in a repository re-created later.
        sqlx::query("DELETE FROM uploads WHERE repository = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if had > 0 {
            self.commit(tx).await?;
        } else {
            // An empty repository row goes, but no content was deleted: nothing to record.
            tx.commit().await?;
        }
        self.lookups.invalidate(name).await;
        Ok(had > 0)
    }

    /// A repository's artifacts a page at a time, newest first; index children are left out
    /// (they appear as their index's `children`). `tag` keeps only artifacts with that tag
    /// (`exact`) or a tag containing it. `under_subjects` leaves out referrers whose subject
    /// is in the repository (signatures, SBOMs: shown under their subject).
    pub async fn list_artifacts(
        &self,
        repository: &str,
        tag: Option<(&str, bool)>,
        under_subjects: bool,
        page: Page,
    ) -> Result<Option<Paged<Artifact>>, MetaError> {
        let repo_id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(repository)
            .fetch_optional(&self.pool)
            .await?;
        let Some(repo_id) = repo_id else {
            return Ok(None);
        };
        let mut c = Conditions::default();
        c.push("m.repository_id = ?", [Bind::Int(repo_id)]);
        c.push(TOP_LEVEL, []);
        if under_subjects {
            c.push(UNDER_NO_SUBJECT, []);
        }
        if let Some((tag, exact)) = tag {
            let test = if exact {
                "t.name = ?"
            } else {
                "INSTR(t.name, ?) > 0"
            };
            c.push(
                format!(
                    "EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id \
                     AND t.manifest_digest = m.digest AND {test})"
                ),
                [Bind::Text(tag.to_owned())],
            );
        }
        let (rows, total) = c
            .page(
                &self.pool,
                ARTIFACT_SELECT,
                "FROM manifests m",
                "ORDER BY m.created_at DESC, m.digest DESC",
                page,
            )
            .await?;
        let items = self.artifacts_from_rows(repo_id, &rows).await?;
        Ok(Some(Paged { items, total }))
    }

    /// One artifact by digest.
    pub async fn artifact(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<Artifact>, MetaError> {
        let sql = format!(
            "{ARTIFACT_SELECT} FROM manifests m JOIN repositories r ON r.id = m.repository_id \
             WHERE r.name = ? AND m.digest = ?"
        );
        let row = sqlx::query(&sql)
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => {
                let repo_id: i64 = row.try_get(6)?;
                let mut found = self
                    .artifacts_from_rows(repo_id, std::slice::from_ref(&row))
                    .await?;
                Ok(found.pop())
            }
            None => Ok(None),
        }
    }

    /// Points a new tag at an artifact. An existing tag is not moved.
    pub async fn create_tag(
        &self,
        repository: &str,
        tag: &str,
        digest: &str,
    ) -> Result<TagCreate, MetaError> {
        let mut tx = self.pool.begin().await?;
        let Some(repo_id) = self.lock_repository(&mut tx, repository, false).await? else {
            return Ok(TagCreate::UnknownArtifact);
        };
        let known: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM manifests WHERE repository_id = ? AND digest = ?")
                .bind(repo_id)
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?;
        if known.is_none() {
            return Ok(TagCreate::UnknownArtifact);
        }
        let current: Option<String> = sqlx::query_scalar(
            "SELECT manifest_digest FROM tags WHERE repository_id = ? AND name = ?",
        )
        .bind(repo_id)
        .bind(tag)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(current) = current {
            return Ok(TagCreate::Exists(current));
        }
        sqlx::query(
            "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?)",
        )
        .bind(repo_id)
        .bind(tag)
        .bind(digest)
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        // The cached tag list lacks it.
        self.lookups.invalidate(repository).await;
        Ok(TagCreate::Created)
    }
}

/// `?, ?, …`: one placeholder per value (an `IN (…)` list).
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl MetadataStore {
    /// How many artifacts in `repository` name each of `subjects` as their subject (signatures,
    /// SBOMs, attestations): one query for a whole page of artifacts. Subjects without
    /// referrers are absent from the map.
    pub async fn referrer_counts(
        &self,
        repository: &str,
        subjects: &[String],
    ) -> Result<std::collections::HashMap<String, u64>, MetaError> {
        let mut counts = std::collections::HashMap::new();
        if subjects.is_empty() {
            return Ok(counts);
        }
        let sql = format!(
            "SELECT m.subject_digest, COUNT(*) FROM manifests m \
             JOIN repositories r ON r.id = m.repository_id \
             WHERE r.name = ? AND m.subject_digest IN ({}) GROUP BY m.subject_digest",
            placeholders(subjects.len())
        );
        let mut query = sqlx::query(&sql).bind(repository);
        for s in subjects {
            query = query.bind(s.as_str());
        }
        for row in query.fetch_all(&self.pool).await? {
            let subject: String = row.try_get(0)?;
            let count: i64 = row.try_get(1)?;
            counts.insert(subject, u64::try_from(count).unwrap_or(0));
        }
        Ok(counts)
    }

    /// The artifacts in `repository` whose subject is `subject`, oldest first, a page at a
    /// time, each with its tags, size and children as [`MetadataStore::artifact`] gives them:
    /// a fixed number of queries whatever the page holds.
    pub async fn list_referrers(
        &self,
        repository: &str,
        subject: &str,
        page: Page,
    ) -> Result<Paged<Artifact>, MetaError> {
        let mut c = Conditions::default();
        c.push("r.name = ?", [Bind::Text(repository.to_owned())]);
        c.push("m.subject_digest = ?", [Bind::Text(subject.to_owned())]);
        let (rows, total) = c
            .page(
                &self.pool,
                ARTIFACT_SELECT,
                "FROM manifests m JOIN repositories r ON r.id = m.repository_id",
                "ORDER BY m.created_at, m.digest",
                page,
            )
            .await?;
        let Some(first) = rows.first() else {
            return Ok(Paged {
                items: Vec::new(),
                total,
            });
        };
        let repo_id: i64 = first.try_get(6)?;
        let items = self.artifacts_from_rows(repo_id, &rows).await?;
        Ok(Paged { items, total })
    }

    /// The artifacts of `rows` (of `ARTIFACT_SELECT`, in repository `repo_id`) with their
    /// tags, sizes and children: three queries for the whole page, not three per row.
    async fn artifacts_from_rows(
        &self,
        repo_id: i64,
        rows: &[AnyRow],
    ) -> Result<Vec<Artifact>, MetaError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let manifest_size: i64 = r.try_get(4)?;
            items.push(Artifact {
                digest: r.try_get(0)?,
                media_type: r.try_get(1)?,
                artifact_type: r.try_get(2)?,
                subject: r.try_get(3)?,
                size: u64::try_from(manifest_size).unwrap_or(0),
                pushed_at: r.try_get(5)?,
                tags: Vec::new(),
                children: Vec::new(),
            });
        }
        let digests: Vec<String> = items.iter().map(|a| a.digest.clone()).collect();
        let list = placeholders(digests.len());
        let at: std::collections::HashMap<String, usize> = digests
            .iter()
            .enumerate()
            .map(|(i, d)| (d.clone(), i))
            .collect();
        let fetch = |sql: String| {
            let digests = digests.clone();
            async move {
                let mut query = sqlx::query(&sql).bind(repo_id);
                for d in &digests {
                    query = query.bind(d.as_str());
                }
                query.fetch_all(&self.pool).await
            }
        };
        // Ordered by the key of the index each query reads (`tags_by_manifest`, the primary
        // key): ordered otherwise, SQLite walks the whole repository's rows to avoid a sort.
        let tags = fetch(format!(
            "SELECT manifest_digest, name, updated_at FROM tags \
             WHERE repository_id = ? AND manifest_digest IN ({list}) ORDER BY manifest_digest, name"
        ))
        .await?;
        // Summed here: SUM() is DECIMAL in MySQL, which sqlx's `Any` driver does not decode.
        let blobs = fetch(format!(
            "SELECT x.manifest_digest, b.size FROM manifest_references x \
             JOIN blobs b ON b.digest = x.child_digest \
             WHERE x.repository_id = ? AND x.kind = 'blob' AND x.manifest_digest IN ({list})"
        ))
        .await?;
        let children = fetch(format!(
            "SELECT manifest_digest, child_digest FROM manifest_references \
             WHERE repository_id = ? AND kind = 'manifest' AND manifest_digest IN ({list}) \
             ORDER BY manifest_digest, child_digest"
        ))
        .await?;
        for t in &tags {
            let digest: String = t.try_get(0)?;
            if let Some(a) = at.get(&digest).and_then(|&i| items.get_mut(i)) {
                a.tags.push((t.try_get(1)?, t.try_get(2)?));
            }
        }
        for b in &blobs {
            let digest: String = b.try_get(0)?;
            let size: i64 = b.try_get(1)?;
            if let Some(a) = at.get(&digest).and_then(|&i| items.get_mut(i)) {
                a.size = a.size.saturating_add(u64::try_from(size).unwrap_or(0));
            }
        }
        for x in &children {
            let digest: String = x.try_get(0)?;
            if let Some(a) = at.get(&digest).and_then(|&i| items.get_mut(i)) {
                a.children.push(x.try_get(1)?);
            }
        }
        Ok(items)
    }
}

const ARTIFACT_SELECT: &str = "SELECT m.digest, m.media_type, m.artifact_type, m.subject_digest, m.size, m.created_at, m.repository_id";
