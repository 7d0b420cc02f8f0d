//! Blobs and their links to repositories: lookup, cross-repository mount, linking a committed
//! blob and unlinking.

use berth_core::Digest;

use crate::MetaError;
use crate::cache::{Lookup, Ticket};
use crate::store::{MetadataStore, to_u64};

/// Outcome of unlinking a blob from a repository.
#[derive(Debug, PartialEq, Eq)]
pub enum BlobUnlink {
    /// Unlinked.
    Unlinked,
    /// Not linked to the repository.
    Unknown,
    /// A manifest in the repository still references it.
    ReferencedBy(String),
}

impl MetadataStore {
    /// Size of `digest` if it is linked to `repository`.
    pub async fn repository_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, MetaError> {
        let field = format!("b:{digest}");
        let ticket = match self.lookups.read(repository, &field).await {
            Lookup::Hit(v) => match std::str::from_utf8(&v).ok().and_then(|v| v.parse().ok()) {
                Some(size) => return Ok(Some(size)),
                None => Ticket::None,
            },
            Lookup::Miss(ticket) => ticket,
        };
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repository_blobs rb \
             JOIN repositories r ON r.id = rb.repository_id \
             JOIN blobs b ON b.digest = rb.digest \
             WHERE r.name = ? AND rb.digest = ?",
        )
        .bind(repository)
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let size = size.map(to_u64);
        if let Some(size) = size {
            self.lookups
                .fill(repository, ticket, &field, size.to_string().as_bytes())
                .await;
        }
        Ok(size)
    }

    /// Links a blob already in the blob store to `repository` if it is linked to `from`
    /// (cross-repository mount), or, with `from` absent, if the blob store holds it at all.
    /// Returns whether the blob is now linked.
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: Option<&str>,
    ) -> Result<bool, MetaError> {
        let mut tx = self.pool.begin().await?;
        let repo_id = self.lock_repository(&mut tx, repository, true).await?;
        let source: Option<i64> = match from {
            Some(from) => sqlx::query_scalar(
                "SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id \
                     WHERE r.name = ? AND rb.digest = ?",
            )
            .bind(from)
            .bind(digest.as_str())
            .fetch_optional(&mut *tx)
            .await?,
            None => {
                sqlx::query_scalar("SELECT 1 FROM blobs WHERE digest = ?")
                    .bind(digest.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
            }
        };
        let (Some(repo_id), Some(_)) = (repo_id, source) else {
            // Nothing to mount: leave no empty repository behind.
            tx.rollback().await?;
            return Ok(false);
        };
        sqlx::query(&self.dialect.insert_ignore(
            "repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?)",
        ))
        .bind(repo_id)
        .bind(digest.as_str())
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// Removes the link between `repository` and `digest`, unless a manifest there uses it.
    pub async fn unlink_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<BlobUnlink, MetaError> {
        let mut tx = self.pool.begin().await?;
        let Some(repo_id) = self.lock_repository(&mut tx, repository, false).await? else {
            return Ok(BlobUnlink::Unknown);
        };
        let user: Option<String> = sqlx::query_scalar(
            "SELECT manifest_digest FROM manifest_references \
             WHERE repository_id = ? AND child_digest = ? AND kind = 'blob' LIMIT 1",
        )
        .bind(repo_id)
        .bind(digest.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(manifest) = user {
            return Ok(BlobUnlink::ReferencedBy(manifest));
        }
        let removed =
            sqlx::query("DELETE FROM repository_blobs WHERE repository_id = ? AND digest = ?")
                .bind(repo_id)
                .bind(digest.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        self.commit(tx).await?;
        if removed == 0 {
            return Ok(BlobUnlink::Unknown);
        }
        self.lookups.invalidate(repository).await;
        Ok(BlobUnlink::Unlinked)
    }

    /// Records a committed blob, links it to `repository` and ends the upload session `id`
    /// (when given), in one transaction.
    pub async fn link_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        finished_upload: Option<&str>,
    ) -> Result<(), MetaError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let repo_id = self
            .lock_repository(&mut tx, repository, true)
            .await?
            .ok_or_else(|| MetaError::Database(sqlx::Error::RowNotFound))?;
        sqlx::query(
            &self
                .dialect
                .insert_ignore("blobs (digest, size, created_at) VALUES (?, ?, ?)"),
        )
        .bind(digest.as_str())
        .bind(size as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.dialect.insert_ignore(
            "repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?)",
        ))
        .bind(repo_id)
        .bind(digest.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(id) = finished_upload {
            sqlx::query("DELETE FROM uploads WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        self.commit(tx).await?;
        Ok(())
    }
}
