use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_core::{Digest, Reference};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::MetaError;
use crate::audit::{self, AuditEntry};
use crate::cache::{Lookup, LookupCache, Ticket};
use crate::tags::{self, TagPage};

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

/// The lookup-cache field of a repository's tag list.
const TAG_LIST: &str = "tags";
/// Longest tag list cached whole, in tags and in bytes; a longer one is paged from the database.
const CACHED_TAGS: usize = 20_000;
const CACHED_TAG_BYTES: usize = 200 << 10;

/// An audit entry waiting for the write it records, and whether that write committed it.
#[derive(Debug)]
struct Journal {
    entry: AuditEntry,
    written: AtomicBool,
}

/// The metadata store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MetadataStore {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
    pub(crate) lookups: Arc<LookupCache>,
    /// The audit entry that writes through this handle record with their change.
    journal: Option<Arc<Journal>>,
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
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
        let now = now();
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

    /// A handle to the same store whose writes each record `entry` in the audit log, in the
    /// write's own transaction: the entry exists exactly when the change was committed. A write
    /// that changes nothing (a refusal, an unknown row) records nothing.
    pub fn recording(&self, entry: AuditEntry) -> Self {
        Self {
            journal: Some(Arc::new(Journal {
                entry,
                written: AtomicBool::new(false),
            })),
            ..self.clone()
        }
    }

    /// Whether a write through this [`recording`](Self::recording) handle committed its entry.
    pub fn recorded(&self) -> bool {
        self.journal
            .as_ref()
            .is_some_and(|j| j.written.load(Ordering::Acquire))
    }

    /// Commits `tx`, recording the audit entry of this handle in it first.
    pub(crate) async fn commit(&self, tx: Tx<'_>) -> Result<(), MetaError> {
        self.commit_in_project(tx, None).await
    }

    /// Commits `tx` as [`commit`](Self::commit) does; the entry belongs to `project` (a
    /// project created in `tx`) unless it names a project already.
    pub(crate) async fn commit_in_project(
        &self,
        mut tx: Tx<'_>,
        project: Option<i64>,
    ) -> Result<(), MetaError> {
        let Some(journal) = &self.journal else {
            tx.commit().await?;
            return Ok(());
        };
        if journal.entry.project_id.is_none() && project.is_some() {
            let entry = AuditEntry {
                project_id: project,
                ..journal.entry.clone()
            };
            audit::insert(&mut tx, &entry).await?;
        } else {
            audit::insert(&mut tx, &journal.entry).await?;
        }
        tx.commit().await?;
        journal.written.store(true, Ordering::Release);
        Ok(())
    }

    /// Runs one statement, with this handle's audit entry in the same transaction when it
    /// changed a row. Returns the rows changed.
    pub(crate) async fn execute_recorded<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<u64, MetaError> {
        if self.journal.is_none() {
            return Ok(query.execute(&self.pool).await?.rows_affected());
        }
        let mut tx = self.pool.begin().await?;
        let n = query.execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            tx.rollback().await?;
        } else {
            self.commit(tx).await?;
        }
        Ok(n)
    }

    /// Lookups the cache answered, and missed, on this node since it started.
    pub fn lookup_stats(&self) -> (u64, u64) {
        self.lookups.stats()
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Upload sessions in progress (rows in `uploads`).
    pub async fn count_uploads(&self) -> Result<u64, MetaError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(n))
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<(), MetaError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

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
        let now = now();
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

    // ---- repositories -------------------------------------------------------------------

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

    // ---- blobs ------------------------------------------------------------------------------

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
        .bind(now())
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

    // ---- uploads ----------------------------------------------------------------------------

    /// Records a new, empty upload session.
    pub async fn create_upload(&self, id: &str, repository: &str) -> Result<(), MetaError> {
        let now = now();
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
        .bind(now())
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

    /// Records a committed blob, links it to `repository` and ends the upload session `id`
    /// (when given), in one transaction.
    pub async fn link_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        finished_upload: Option<&str>,
    ) -> Result<(), MetaError> {
        let now = now();
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

    // ---- manifests and tags -----------------------------------------------------------------

    /// Stores a manifest after checking, in the same transaction, that everything it
    /// references is in the repository with the declared size.
    pub async fn put_manifest(
        &self,
        repository: &str,
        manifest: &NewManifest<'_>,
    ) -> Result<ManifestPut, MetaError> {
        let now = now();
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
            sqlx::query(&insert_reference)
                .bind(repo_id)
                .bind(manifest.digest.as_str())
                .bind(child.as_str())
                .bind(kind)
                .execute(&mut *tx)
                .await?;
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

    /// Deletes a tag (not the manifest). Returns whether it existed.
    pub async fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool, MetaError> {
        let n = self
            .execute_recorded(
                sqlx::query(
                    "DELETE FROM tags WHERE name = ? AND repository_id = \
             (SELECT id FROM repositories WHERE name = ?)",
                )
                .bind(tag)
                .bind(repository),
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        self.lookups.invalidate(repository).await;
        Ok(true)
    }

    /// Tags of `repository` after `last` in lexical order, at most `limit` (all when `None`).
    /// `None` when the repository does not exist.
    pub async fn list_tags(
        &self,
        repository: &str,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Option<TagPage>, MetaError> {
        // The whole list is cached (when it is not too long) and pages are cut from it: a
        // page from the database costs a round trip per row through sqlx's SQLite worker.
        let cached = |lookup| match lookup {
            Lookup::Hit(v) if v.first() == Some(&b'L') => {
                TagPage::of_cached(v, 1, last, limit).ok_or(Ticket::None)
            }
            Lookup::Hit(_) => Err(Ticket::None),
            Lookup::Miss(ticket) => Err(ticket),
        };
        let mut ticket = match cached(self.lookups.read(repository, TAG_LIST).await) {
            Ok(page) => return Ok(Some(page)),
            Err(ticket) => ticket,
        };
        // One whole-list read per repository at a time: requests that missed together wait for
        // the first to fill the cache, then page from what it stored.
        let _gate = match ticket {
            Ticket::None => None,
            _ => {
                let gate = self.lookups.gate(repository, TAG_LIST).await;
                ticket = match cached(self.lookups.read(repository, TAG_LIST).await) {
                    Ok(page) => return Ok(Some(page)),
                    Err(ticket) => ticket,
                };
                Some(gate)
            }
        };
        let repo_id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(repository)
            .fetch_optional(&self.pool)
            .await?;
        let Some(repo_id) = repo_id else {
            return Ok(None);
        };
        let query = |after: &str, n: i64| {
            sqlx::query_scalar(
                "SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?",
            )
            .bind(repo_id)
            .bind(after.to_owned())
            .bind(n)
        };
        if !matches!(ticket, Ticket::None) {
            // Read the whole list (up to a bound) to cache it.
            let all: Vec<String> = query("", CACHED_TAGS as i64 + 1)
                .fetch_all(&self.pool)
                .await?;
            let value = [b"L", tags::list_of(&all).as_slice()].concat();
            if all.len() <= CACHED_TAGS && value.len() <= CACHED_TAG_BYTES {
                self.lookups
                    .fill(repository, ticket, TAG_LIST, &value)
                    .await;
                return Ok(Some(TagPage::of_list(value.into(), 1, last, limit)));
            }
            // Too long to cache whole: remember that, and page from the database.
            self.lookups.fill(repository, ticket, TAG_LIST, b"X").await;
        }
        let tags: Vec<String> = query(last.unwrap_or(""), limit.map_or(i64::MAX, i64::from))
            .fetch_all(&self.pool)
            .await?;
        Ok(Some(TagPage::from_tags(&tags)))
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

fn upload_from_row(r: &AnyRow) -> Result<UploadSession, MetaError> {
    Ok(UploadSession {
        id: r.try_get(0)?,
        repository: r.try_get(1)?,
        size: to_u64(r.try_get(2)?),
        hash_state: r.try_get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tag_lists_missed_together_are_read_from_the_database_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/meta.db", dir.path().display());
        let store = MetadataStore::connect(&url, &PoolSettings::default())
            .await
            .unwrap()
            .cache_in_process(Duration::from_secs(60));
        store.migrate().await.unwrap();
        // A fill is under way: a request that missed waits for it...
        let gate = store.lookups.gate("r", TAG_LIST).await;
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.list_tags("r", None, None).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        // ...and then pages from what the fill stored. Had it gone to the database, it would
        // have found no repository "r".
        let Lookup::Miss(ticket) = store.lookups.read("r", TAG_LIST).await else {
            panic!("nothing was cached yet")
        };
        store.lookups.fill("r", ticket, TAG_LIST, b"La\nb\n").await;
        drop(gate);
        let page = waiting
            .await
            .unwrap()
            .unwrap()
            .expect("served from the cache");
        assert_eq!(page.to_vec(), ["a", "b"]);
        assert!(
            store
                .list_tags("missing", None, None)
                .await
                .unwrap()
                .is_none()
        );
    }
}
