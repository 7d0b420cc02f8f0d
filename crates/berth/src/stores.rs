//! The stores a node works on: the metadata database (migrated) and its lookup cache, the
//! blob store the configuration names, and Redis, connected in the background.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{self, Config, StorageDriver};

pub(crate) async fn migrate(c: &Config) -> anyhow::Result<berth_meta::MetadataStore> {
    std::fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("cannot create data_dir {}", c.data_dir.display()))?;
    let url = c.database_url();
    let meta = berth_meta::MetadataStore::connect(&url, &c.pool_settings())
        .await
        .with_context(|| {
            format!(
                "cannot open the metadata database (database.url = {:?})",
                c.database_url_redacted()
            )
        })?;
    meta.migrate()
        .await
        .context("cannot migrate the metadata database")?;
    tracing::info!("metadata database migrated");
    Ok(meta)
}

/// The blob store the configuration names. An S3 bucket that cannot be reached is logged and
/// leaves the node unready (`/readyz`) until it can; it does not stop the node.
pub(crate) async fn open_blob_store(
    c: &Config,
    meta: &berth_meta::MetadataStore,
    node: &str,
) -> anyhow::Result<Arc<dyn berth_storage::BlobStore>> {
    if c.storage.driver == StorageDriver::S3 {
        let locks = Arc::new(LeaseLocks {
            meta: meta.clone(),
            node: node.to_owned(),
        });
        let store = berth_storage::S3Store::new(&c.s3_settings(), locks)
            .context("cannot use the S3 blob store (storage.s3)")?;
        if let Err(e) = berth_storage::BlobStore::check(&store).await {
            tracing::error!(error = %e, "the S3 blob store cannot be used yet (storage.s3); not ready until it can");
        }
        return Ok(Arc::new(store));
    }
    let path = c.storage_path();
    let store = berth_storage::FilesystemStore::open(&path, c.storage.fsync)
        .with_context(|| {
            format!(
                "cannot open blob storage at {} (storage.path)",
                path.display()
            )
        })?
        .with_direct_writes(c.storage.direct_writes);
    Ok(Arc::new(store))
}

/// Upload leases for the S3 store, kept in the metadata database so that every node sees them.
struct LeaseLocks {
    meta: berth_meta::MetadataStore,
    node: String,
}

#[async_trait::async_trait]
impl berth_storage::UploadLocks for LeaseLocks {
    async fn lock(
        &self,
        id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, berth_storage::StorageError> {
        self.meta
            .acquire_lease(
                &format!("upload:{id}"),
                &format!("{}/{holder}", self.node),
                ttl,
            )
            .await
            .map_err(|e| berth_storage::StorageError::Backend {
                context: "taking an upload lease",
                location: "metadata database".into(),
                message: e.to_string(),
            })
    }

    async fn unlock(&self, id: &str, holder: &str) {
        let _ = self
            .meta
            .release_lease(&format!("upload:{id}"), &format!("{}/{holder}", self.node))
            .await;
    }
}

/// Connects to Redis in the background, retrying until it succeeds, and hands the connection
/// to what shares state through it: the lookup cache, and the login limits and sessions. A
/// node starts (and serves pushes and pulls) while Redis is down; meanwhile nothing is cached
/// and failed logins and sessions are kept per node.
pub(crate) fn connect_redis(
    url: &str,
    meta: &berth_meta::MetadataStore,
    auth: Option<&Arc<berth_auth::AuthService>>,
) -> anyhow::Result<()> {
    let spec = berth_shared::RedisSpec::parse(url)?;
    if let Some(service) = auth {
        service.expect_shared_limits();
    }
    let (meta, auth) = (meta.clone(), auth.cloned());
    tokio::spawn(async move {
        let mut logged = false;
        loop {
            match berth_shared::Shared::connect(&spec).await {
                Ok(shared) => {
                    tracing::info!(redis = %shared.describe(), "lookup cache, sessions and failed-login limits shared through redis");
                    meta.share_cache(shared.clone());
                    if let Some(service) = &auth {
                        service.share_state(shared);
                    }
                    return;
                }
                Err(error) => {
                    if !logged {
                        tracing::warn!(%error, "redis unreachable: retrying every 5 s; meanwhile no lookup cache, and sessions and failed logins per node");
                        logged = true;
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
    Ok(())
}

/// Gives the metadata store its lookup cache (see `Config::cache_place`).
pub(crate) fn with_lookup_cache(
    c: &Config,
    meta: berth_meta::MetadataStore,
) -> berth_meta::MetadataStore {
    let ttl = Duration::from_secs(c.cache.ttl_secs);
    let place = c.cache_place();
    tracing::info!(%place, ttl_secs = c.cache.ttl_secs, "lookup cache");
    match place {
        config::CachePlace::Redis => meta.cache_in_redis(ttl),
        config::CachePlace::Process => meta.cache_in_process(ttl),
        config::CachePlace::Off | config::CachePlace::Unshared => meta,
    }
}
