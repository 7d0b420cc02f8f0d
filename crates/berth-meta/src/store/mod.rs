//! The store type, its connection pool and SQL dialect, migrations, job leases and health
//! figures, with the helpers every part of the store shares. The operations live in the
//! submodules, each an `impl MetadataStore` block.

use std::sync::Arc;
use std::time::Duration;

use berth_core::{Clock, SystemClock};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::MetaError;
use crate::cache::LookupCache;

mod blobs;
mod manifests;
mod repositories;
mod tags;
mod transactions;
mod uploads;

pub use blobs::BlobUnlink;
pub use manifests::{ManifestDelete, ManifestPut, NewManifest, Referrer, StoredManifest};
use transactions::Journal;
pub use uploads::UploadSession;

pub(crate) type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// The SQL dialect behind a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite, the embedded default.
    Sqlite,
    /// MySQL or MariaDB, shared by the nodes of a cluster.
    MySql,
}

impl Dialect {
    fn from_url(url: &str) -> Result<Self, MetaError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Ok(Self::MySql)
        } else {
            Err(MetaError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// `INSERT … ` that does nothing when the key exists; `{}` is the rest of the statement.
    pub(crate) fn insert_ignore(self, rest: &str) -> String {
        match self {
            Self::Sqlite => format!("INSERT INTO {rest} ON CONFLICT DO NOTHING"),
            Self::MySql => format!("INSERT IGNORE INTO {rest}"),
        }
    }

    fn upsert_tag(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (repository_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest, \
                 updated_at = excluded.updated_at"
            }
            Self::MySql => {
                "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE manifest_digest = VALUES(manifest_digest), \
                 updated_at = VALUES(updated_at)"
            }
        }
    }
}

/// Connection pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections held open.
    pub max_connections: u32,
    /// How long a request waits for a connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The metadata store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MetadataStore {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
    pub(crate) lookups: Arc<LookupCache>,
    /// The audit entry that writes through this handle record with their change.
    journal: Option<Arc<Journal>>,
    /// Where the times written come from.
    clock: Arc<dyn Clock>,
}

impl MetadataStore {
    /// The store reading the time from `clock` (the system's by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The current time (Unix seconds), as written to rows.
    pub(crate) fn now(&self) -> i64 {
        self.clock.unix_seconds()
    }
}

/// A text column that may be NULL. MySQL's `TEXT` types reach sqlx's `Any` driver as blobs,
/// so bytes are accepted too (as UTF-8).
pub(crate) fn text(r: &AnyRow, index: usize) -> Result<Option<String>, MetaError> {
    match r.try_get::<Option<String>, _>(index) {
        Ok(v) => Ok(v),
        Err(_) => match r.try_get::<Option<Vec<u8>>, _>(index)? {
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| MetaError::Database(sqlx::Error::Decode(Box::new(e)))),
            None => Ok(None),
        },
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl MetadataStore {
    /// Connects to `url` (`sqlite://PATH`; the file is created if missing).
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Self, MetaError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let url = match dialect {
            Dialect::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            Dialect::MySql if url.starts_with("mariadb:") => format!("mysql:{}", &url[8..]),
            _ => url.to_owned(),
        };
        if dialect == Dialect::MySql {
            // One direct connection first: the pool would retry a refused login or an unknown
            // host until its timeout and then report only that it timed out.
            let mut probe = tokio::time::timeout(
                settings.acquire_timeout,
                <sqlx::AnyConnection as sqlx::Connection>::connect(&url),
            )
            .await
            .map_err(|_| MetaError::Unavailable(sqlx::Error::PoolTimedOut))??;
            sqlx::query("SELECT 1").execute(&mut probe).await?;
            let _ = sqlx::Connection::close(probe).await;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL: readers never wait for the writer. FULL: a push the client was
                        // told succeeded survives a power loss, as its blobs (fsynced) do.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Self {
            pool,
            dialect,
            lookups: Arc::new(LookupCache::nowhere()),
            journal: None,
            clock: Arc::new(SystemClock),
        })
    }

    /// Caches lookups (manifests, blob sizes) in this process. Only for a single node: other
    /// nodes' writes would not reach this cache.
    pub fn cache_in_process(mut self, ttl: Duration) -> Self {
        self.lookups = Arc::new(LookupCache::in_process(ttl));
        self
    }

    /// Caches lookups in Redis, shared by every node, once `share_cache` hands it over (until
    /// then nothing is cached). Entries expire `ttl` after they were first cached.
    pub fn cache_in_redis(mut self, ttl: Duration) -> Self {
        self.lookups = Arc::new(LookupCache::in_redis(ttl));
        self
    }

    /// Hands over the Redis connection for `cache_in_redis`.
    pub fn share_cache(&self, shared: berth_shared::Shared) {
        self.lookups.share(shared);
    }

    /// Where lookups are cached: "none", "in process" or "redis…", for logs and health.
    pub fn cache_place(&self) -> &'static str {
        self.lookups.place()
    }

    /// Applies pending migrations. Safe to run from several nodes at once.
    pub async fn migrate(&self) -> Result<(), MetaError> {
        match self.dialect {
            Dialect::Sqlite => {
                sqlx::migrate!("../../migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            // sqlx takes a named lock (GET_LOCK) around MySQL migrations: nodes starting at
            // once apply each migration once.
            Dialect::MySql => {
                sqlx::migrate!("../../migrations/mysql")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Takes, or renews, the lease of background job `job` for `holder` until `ttl` from now:
    /// whether `holder` has it. A lease another holder let expire is taken over.
    pub async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, MetaError> {
        let now = self.now();
        let until = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        sqlx::query(
            &self
                .dialect
                .insert_ignore("job_leases (name, holder, expires_at) VALUES (?, ?, ?)"),
        )
        .bind(job)
        .bind(holder)
        .bind(until)
        .execute(&self.pool)
        .await?;
        let taken = sqlx::query(
            "UPDATE job_leases SET holder = ?, expires_at = ? \
             WHERE name = ? AND (holder = ? OR expires_at < ?)",
        )
        .bind(holder)
        .bind(until)
        .bind(job)
        .bind(holder)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Gives a lease up (a node shutting down), so that another node need not wait for it to
    /// expire.
    pub async fn release_lease(&self, job: &str, holder: &str) -> Result<(), MetaError> {
        sqlx::query("DELETE FROM job_leases WHERE name = ? AND holder = ?")
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Lookups the cache answered, and missed, on this node since it started.
    pub fn lookup_stats(&self) -> (u64, u64) {
        self.lookups.stats()
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<(), MetaError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
