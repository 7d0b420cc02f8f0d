//! Settings administrators change while the registry runs, stored by key with a JSON value.
//! What the keys mean and which values are valid is the registry service's business; this
//! module only keeps them.

use sqlx::Row;

use crate::MetaError;
use crate::store::{MetadataStore, text};

/// A stored setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSetting {
    /// Its key.
    pub name: String,
    /// Its value, as JSON.
    pub value: String,
    /// Last changed (Unix seconds).
    pub updated_at: i64,
}

impl MetadataStore {
    /// Every stored setting, by key.
    pub async fn stored_settings(&self) -> Result<Vec<StoredSetting>, MetaError> {
        let rows = sqlx::query("SELECT name, value, updated_at FROM settings ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredSetting {
                    name: text(r, 0)?.unwrap_or_default(),
                    value: text(r, 1)?.unwrap_or_default(),
                    updated_at: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Stores `values` (key, JSON) in one transaction, with this handle's audit entry.
    pub async fn put_settings(&self, values: &[(String, String)]) -> Result<(), MetaError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        for (name, value) in values {
            sqlx::query("DELETE FROM settings WHERE name = ?")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)")
                .bind(name)
                .bind(value)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        self.commit(tx).await
    }
}
