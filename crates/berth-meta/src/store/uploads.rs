//! Upload sessions: creating, reading, advancing, listing idle ones and ending them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::store::{MetadataStore, to_u64};

/// An upload session as recorded.
#[derive(Debug, Clone)]
pub struct UploadSession {
    /// Session id (in the upload URL).
    pub id: String,
    /// Repository the upload belongs to.
    pub repository: String,
    /// Bytes received so far.
    pub size: u64,
    /// Saved running SHA-256 state at `size`, when one was saved.
    pub hash_state: Option<Vec<u8>>,
}

impl MetadataStore {
    /// Upload sessions in progress (rows in `uploads`).
    pub async fn count_uploads(&self) -> Result<u64, MetaError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(n))
    }

    /// Records a new, empty upload session.
    pub async fn create_upload(&self, id: &str, repository: &str) -> Result<(), MetaError> {
        let now = self.now();
        sqlx::query(
            "INSERT INTO uploads (id, repository, size, hash_state, started_at, updated_at) \
             VALUES (?, ?, 0, NULL, ?, ?)",
        )
        .bind(id)
        .bind(repository)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Reads an upload session of `repository`.
    pub async fn upload(
        &self,
        repository: &str,
        id: &str,
    ) -> Result<Option<UploadSession>, MetaError> {
        let row = sqlx::query(
            "SELECT id, repository, size, hash_state FROM uploads \
             WHERE id = ? AND repository = ?",
        )
        .bind(id)
        .bind(repository)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| upload_from_row(&r)).transpose()
    }

    /// Records the new size and hash state of an upload, if it still has `expected_size`
    /// bytes recorded (optimistic concurrency). Returns false when it does not (cancelled,
    /// finished or advanced by another request): nothing is recorded then.
    pub async fn record_upload(
        &self,
        id: &str,
        expected_size: u64,
        size: u64,
        hash_state: Option<&[u8]>,
    ) -> Result<bool, MetaError> {
        let n = sqlx::query(
            "UPDATE uploads SET size = ?, hash_state = ?, updated_at = ? WHERE id = ? AND size = ?",
        )
        .bind(size as i64)
        .bind(hash_state)
        .bind(self.now())
        .bind(id)
        .bind(expected_size as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// When an upload session last recorded progress (Unix seconds); `None` if there is none.
    pub async fn upload_updated_at(&self, id: &str) -> Result<Option<i64>, MetaError> {
        Ok(
            sqlx::query_scalar("SELECT updated_at FROM uploads WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Ids of upload sessions that recorded nothing since `cutoff` (Unix seconds).
    pub async fn uploads_idle_since(&self, cutoff: i64) -> Result<Vec<String>, MetaError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < ?")
                .bind(cutoff)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Deletes an upload session of any repository. Returns whether it existed.
    pub async fn forget_upload(&self, id: &str) -> Result<bool, MetaError> {
        let n = sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Deletes an upload session. Returns whether it existed.
    pub async fn delete_upload(&self, repository: &str, id: &str) -> Result<bool, MetaError> {
        let n = sqlx::query("DELETE FROM uploads WHERE id = ? AND repository = ?")
            .bind(id)
            .bind(repository)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }
}

fn upload_from_row(r: &AnyRow) -> Result<UploadSession, MetaError> {
    Ok(UploadSession {
        id: r.try_get(0)?,
        repository: r.try_get(1)?,
        size: to_u64(r.try_get(2)?),
        hash_state: r.try_get(3)?,
    })
}
