//! Token signing keys (rotation and retirement) and the cluster's shared secrets.

use sqlx::Row;

use crate::MetaError;
use crate::store::{MetadataStore, text};

/// A token signing key as stored.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// libtrust key id.
    pub kid: String,
    /// PKCS#8 PEM private key.
    pub private_pem: String,
    /// PEM certificate.
    pub cert_pem: String,
    /// When it starts signing (Unix seconds).
    pub activates_at: i64,
    /// When it stops verifying (Unix seconds); `None`: not scheduled.
    pub retires_at: Option<i64>,
}

impl MetadataStore {
    /// Signing keys not retired at `at` (Unix seconds), oldest activation first.
    pub async fn signing_keys(&self, at: i64) -> Result<Vec<StoredKey>, MetaError> {
        let rows = sqlx::query(
            "SELECT kid, private_pem, cert_pem, activates_at, retires_at FROM signing_keys \
             WHERE retires_at IS NULL OR retires_at > ? ORDER BY activates_at, kid",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: r.try_get(0)?,
                    private_pem: text(r, 1)?.unwrap_or_default(),
                    cert_pem: text(r, 2)?.unwrap_or_default(),
                    activates_at: r.try_get(3)?,
                    retires_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Records a signing key (nothing if its kid is already there).
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), MetaError> {
        sqlx::query(&self.dialect.insert_ignore(
            "signing_keys (kid, private_pem, cert_pem, created_at, activates_at, retires_at) VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(&key.kid)
        .bind(&key.private_pem)
        .bind(&key.cert_pem)
        .bind(self.now())
        .bind(key.activates_at)
        .bind(key.retires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The cluster's secret `name`: `candidate` if no node stored one before, otherwise the one
    /// stored first (every node gets the same answer, however many ask at once).
    pub async fn cluster_secret(&self, name: &str, candidate: &str) -> Result<String, MetaError> {
        sqlx::query(
            &self
                .dialect
                .insert_ignore("cluster_secrets (name, secret) VALUES (?, ?)"),
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT secret FROM cluster_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(text(&row, 0)?.unwrap_or_default())
    }

    /// Schedules the retirement of every key other than `keep` that is not retiring already.
    pub async fn retire_signing_keys_except(&self, keep: &str, at: i64) -> Result<u64, MetaError> {
        Ok(sqlx::query(
            "UPDATE signing_keys SET retires_at = ? WHERE kid <> ? AND retires_at IS NULL",
        )
        .bind(at)
        .bind(keep)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
