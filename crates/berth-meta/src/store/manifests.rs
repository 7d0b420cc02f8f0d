//! Manifests: storing one after checking its references, looking it up (cached), deleting it,
//! and the referrers of a subject.

use berth_core::{Digest, Reference};
use sqlx::Row;

use crate::MetaError;
use crate::cache::{Lookup, Ticket};
use crate::store::{MetadataStore, text, to_u64};

/// A manifest to store.
#[derive(Debug, Clone)]
pub struct NewManifest<'a> {
    /// Digest of `content`.
    pub digest: &'a Digest,
    /// Media type.
    pub media_type: &'a str,
    /// Artifact type for the referrers API.
    pub artifact_type: Option<&'a str>,
    /// Digest of the `subject`, if any.
    pub subject: Option<&'a Digest>,
    /// The `annotations` object as JSON text.
    pub annotations: Option<String>,
    /// The manifest bytes exactly as pushed.
    pub content: &'a [u8],
    /// Blobs it references, with the sizes it declares.
    pub blobs: Vec<(&'a Digest, u64)>,
    /// Manifests it references, with the sizes it declares.
    pub manifests: Vec<(&'a Digest, u64)>,
    /// Tag to point at it.
    pub tag: Option<&'a str>,
}

/// Outcome of storing a manifest.
#[derive(Debug, PartialEq, Eq)]
pub enum ManifestPut {
    /// Stored (or already present) and tagged as asked.
    Stored,
    /// A referenced blob or manifest is not in the repository.
    MissingReference(Digest),
    /// A referenced blob or manifest exists with a different size than declared.
    SizeMismatch {
        /// The reference.
        digest: Digest,
        /// Size in the manifest.
        declared: u64,
        /// Size stored.
        actual: u64,
    },
}

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub content: Vec<u8>,
}

impl StoredManifest {
    /// The cache's form: digest, newline, media type, newline, content.
    fn encode(&self) -> Vec<u8> {
        let mut v =
            Vec::with_capacity(self.digest.len() + self.media_type.len() + 2 + self.content.len());
        v.extend_from_slice(self.digest.as_bytes());
        v.push(b'\n');
        v.extend_from_slice(self.media_type.as_bytes());
        v.push(b'\n');
        v.extend_from_slice(&self.content);
        v
    }

    fn decode(v: &[u8]) -> Option<Self> {
        let mut parts = v.splitn(3, |b| *b == b'\n');
        let digest = std::str::from_utf8(parts.next()?).ok()?.to_owned();
        let media_type = std::str::from_utf8(parts.next()?).ok()?.to_owned();
        let content = parts.next()?.to_vec();
        Some(Self {
            digest,
            media_type,
            content,
        })
    }
}

/// Outcome of deleting a manifest by digest.
#[derive(Debug, PartialEq, Eq)]
pub enum ManifestDelete {
    /// Deleted, with its tags.
    Deleted,
    /// Not in the repository.
    Unknown,
    /// An index in the repository still lists it.
    ReferencedBy(String),
}

/// A manifest that names a given subject: one entry of a referrers response.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// Digest of the referring manifest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its artifact type.
    pub artifact_type: Option<String>,
    /// Its annotations, as JSON text.
    pub annotations: Option<String>,
}

impl MetadataStore {
    /// Stores a manifest after checking, in the same transaction, that everything it
    /// references is in the repository with the declared size.
    pub async fn put_manifest(
        &self,
        repository: &str,
        manifest: &NewManifest<'_>,
    ) -> Result<ManifestPut, MetaError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let repo_id = self
            .lock_repository(&mut tx, repository, true)
            .await?
            .ok_or_else(|| MetaError::Database(sqlx::Error::RowNotFound))?;
        let checks = [
            (
                &manifest.blobs,
                "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
                 WHERE rb.repository_id = ? AND rb.digest = ?",
            ),
            (
                &manifest.manifests,
                "SELECT size FROM manifests WHERE repository_id = ? AND digest = ?",
            ),
        ];
        for (references, sql) in checks {
            for &(digest, declared) in references.iter() {
                let actual: Option<i64> = sqlx::query_scalar(sql)
                    .bind(repo_id)
                    .bind(digest.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                match actual.map(to_u64) {
                    None => {
                        tx.rollback().await?;
                        return Ok(ManifestPut::MissingReference(digest.clone()));
                    }
                    Some(actual) if actual != declared => {
                        tx.rollback().await?;
                        return Ok(ManifestPut::SizeMismatch {
                            digest: digest.clone(),
                            declared,
                            actual,
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        sqlx::query(&self.dialect.insert_ignore(
            "manifests (repository_id, digest, media_type, artifact_type, subject_digest, \
             annotations, size, content, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(repo_id)
        .bind(manifest.digest.as_str())
        .bind(manifest.media_type)
        .bind(manifest.artifact_type)
        .bind(manifest.subject.map(Digest::as_str))
        .bind(manifest.annotations.as_deref())
        .bind(manifest.content.len() as i64)
        .bind(manifest.content)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let references = manifest
            .blobs
            .iter()
            .map(|(d, _)| (d, "blob"))
            .chain(manifest.manifests.iter().map(|(d, _)| (d, "manifest")));
        let insert_reference = self.dialect.insert_ignore(
            "manifest_references (repository_id, manifest_digest, child_digest, kind) VALUES (?, ?, ?, ?)",
        );
        for (child, kind) in references {
            let added = sqlx::query(&insert_reference)
                .bind(repo_id)
                .bind(manifest.digest.as_str())
                .bind(child.as_str())
                .bind(kind)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // A manifest an index lists is counted with the index, not listed on its own.
            if added == 1 && kind == "manifest" {
                sqlx::query(
                    "UPDATE manifests SET index_parents = index_parents + 1 \
                     WHERE repository_id = ? AND digest = ?",
                )
                .bind(repo_id)
                .bind(child.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(tag) = manifest.tag {
            sqlx::query(self.dialect.upsert_tag())
                .bind(repo_id)
                .bind(tag)
                .bind(manifest.digest.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        self.commit(tx).await?;
        if manifest.tag.is_some() {
            // The tag may have moved.
            self.lookups.invalidate(repository).await;
        }
        Ok(ManifestPut::Stored)
    }

    /// Looks a manifest up by tag or digest.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>, MetaError> {
        let field = format!("m:{reference}");
        let ticket = match self.lookups.read(repository, &field).await {
            Lookup::Hit(v) => match StoredManifest::decode(&v) {
                Some(m) => return Ok(Some(m)),
                None => Ticket::None,
            },
            Lookup::Miss(ticket) => ticket,
        };
        let query = match reference {
            Reference::Digest(d) => sqlx::query(
                "SELECT m.digest, m.media_type, m.content FROM manifests m \
                 JOIN repositories r ON r.id = m.repository_id WHERE r.name = ? AND m.digest = ?",
            )
            .bind(repository)
            .bind(d.as_str()),
            Reference::Tag(t) => sqlx::query(
                "SELECT m.digest, m.media_type, m.content FROM tags t \
                 JOIN repositories r ON r.id = t.repository_id \
                 JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest \
                 WHERE r.name = ? AND t.name = ?",
            )
            .bind(repository)
            .bind(t.as_str()),
        };
        let row = query.fetch_optional(&self.pool).await?;
        let found = row
            .map(|r| -> Result<_, MetaError> {
                Ok(StoredManifest {
                    digest: r.try_get(0)?,
                    media_type: r.try_get(1)?,
                    content: r.try_get(2)?,
                })
            })
            .transpose()?;
        if let Some(m) = &found {
            self.lookups
                .fill(repository, ticket, &field, &m.encode())
                .await;
        }
        Ok(found)
    }

    /// Deletes a manifest and the tags pointing at it, unless an index in the repository lists it.
    pub async fn delete_manifest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<ManifestDelete, MetaError> {
        let mut tx = self.pool.begin().await?;
        let Some(repo_id) = self.lock_repository(&mut tx, repository, false).await? else {
            return Ok(ManifestDelete::Unknown);
        };
        let parent: Option<String> = sqlx::query_scalar(
            "SELECT manifest_digest FROM manifest_references \
             WHERE repository_id = ? AND child_digest = ? AND kind = 'manifest' LIMIT 1",
        )
        .bind(repo_id)
        .bind(digest.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(parent) = parent {
            return Ok(ManifestDelete::ReferencedBy(parent));
        }
        let removed = sqlx::query("DELETE FROM manifests WHERE repository_id = ? AND digest = ?")
            .bind(repo_id)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Ok(ManifestDelete::Unknown);
        }
        for sql in [
            "DELETE FROM tags WHERE repository_id = ? AND manifest_digest = ?",
            // The manifests this one listed are listed on their own again.
            "UPDATE manifests SET index_parents = index_parents - 1 \
             WHERE repository_id = ? AND index_parents > 0 AND digest IN (SELECT child_digest \
               FROM manifest_references WHERE repository_id = manifests.repository_id \
               AND manifest_digest = ? AND kind = 'manifest')",
            "DELETE FROM manifest_references WHERE repository_id = ? AND manifest_digest = ?",
        ] {
            sqlx::query(sql)
                .bind(repo_id)
                .bind(digest.as_str())
                .execute(&mut *tx)
                .await?;
        }
        self.commit(tx).await?;
        self.lookups.invalidate(repository).await;
        Ok(ManifestDelete::Deleted)
    }

    /// Manifests in `repository` whose subject is `subject`, optionally of one artifact type.
    pub async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, MetaError> {
        let mut sql = String::from(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m \
             JOIN repositories r ON r.id = m.repository_id WHERE r.name = ? AND m.subject_digest = ?",
        );
        if artifact_type.is_some() {
            sql.push_str(" AND m.artifact_type = ?");
        }
        sql.push_str(" ORDER BY m.created_at, m.digest");
        let mut query = sqlx::query(&sql).bind(repository).bind(subject.as_str());
        if let Some(t) = artifact_type {
            query = query.bind(t);
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Referrer {
                    digest: r.try_get(0)?,
                    media_type: r.try_get(1)?,
                    size: to_u64(r.try_get(2)?),
                    artifact_type: r.try_get(3)?,
                    annotations: text(r, 4)?,
                })
            })
            .collect()
    }
}
