//! Repository rows: the per-repository write lock every write transaction starts with, and
//! the repository listing.

use crate::MetaError;
use crate::store::{MetadataStore, Tx};

impl MetadataStore {
    /// Starts a write transaction on `repository`, creating the repository row if asked, and
    /// returns the repository id. The first statement is a write, so that the transaction holds
    /// the write lock from the start (SQLite) or the repository row lock (MySQL): writers to one
    /// repository are serialized, which is what reference checks and deletions rely on.
    pub(crate) async fn lock_repository(
        &self,
        tx: &mut Tx<'_>,
        repository: &str,
        create: bool,
    ) -> Result<Option<i64>, MetaError> {
        let now = self.now();
        if create {
            sqlx::query(
                &self
                    .dialect
                    .insert_ignore("repositories (name, created_at, updated_at) VALUES (?, ?, ?)"),
            )
            .bind(repository)
            .bind(now)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query("UPDATE repositories SET updated_at = ? WHERE name = ?")
            .bind(now)
            .bind(repository)
            .execute(&mut **tx)
            .await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(repository)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(id)
    }

    /// Repository names after `last`, in lexical order, at most `limit`.
    pub async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, MetaError> {
        Ok(
            sqlx::query_scalar(
                "SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?",
            )
            .bind(last.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?,
        )
    }
}
