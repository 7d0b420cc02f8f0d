//! The stores' sections (`[database]`, `[storage]`, `[storage.s3]`): their structures as
//! read from TOML, and their defaults.

use std::path::PathBuf;

use serde::Deserialize;

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://PATH` or `mysql://USER:PASSWORD@HOST:PORT/DATABASE` (MySQL or
    /// MariaDB). Default: a SQLite file in the data directory.
    pub url: Option<String>,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Seconds a request waits for a connection before answering 503.
    pub acquire_timeout_secs: u64,
    /// The kind of database `url` names (set by `Config::load`).
    #[serde(skip)]
    pub kind: DatabaseKind,
}

/// The kind of metadata database, from the scheme of its URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DatabaseKind {
    /// `sqlite:`: a file, which one node alone uses.
    #[default]
    Sqlite,
    /// `mysql:` or `mariadb:`: a server, which several nodes may share.
    MySql,
}

impl DatabaseKind {
    /// The kind a database URL names, if any.
    pub(super) fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if ["mysql:", "mariadb:"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            Some(Self::MySql)
        } else {
            None
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// Blob store driver: `filesystem` (local disk or a shared mount such as CephFS) or `s3`,
    /// as written; `driver` is what it names.
    #[serde(rename = "driver")]
    pub(in crate::config) driver_name: String,
    /// The blob store driver (set from `storage.driver` by `Config::load`).
    #[serde(skip)]
    pub driver: StorageDriver,
    /// Root directory of the filesystem driver. Default: `<data_dir>/storage`.
    pub path: Option<PathBuf>,
    /// Flush each blob to stable storage before it becomes visible.
    pub fsync: bool,
    /// Write uploads with O_DIRECT (filesystem driver): less CPU per pushed byte, but a blob
    /// pulled right after its push is read from disk, not memory.
    pub direct_writes: bool,
    /// The S3 driver's bucket and how to reach it.
    pub s3: S3Config,
}

/// The blob store driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StorageDriver {
    /// `filesystem`: a directory on local disk or a shared mount.
    #[default]
    Filesystem,
    /// `s3`: an S3 bucket (AWS, Ceph RGW, MinIO); see `[storage.s3]`.
    S3,
}

impl StorageDriver {
    /// The driver a `storage.driver` value names, if any.
    pub(super) fn parse(name: &str) -> Option<Self> {
        match name {
            "filesystem" => Some(Self::Filesystem),
            "s3" => Some(Self::S3),
            _ => None,
        }
    }
}

/// `[storage.s3]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct S3Config {
    /// Endpoint URL (Ceph RGW, MinIO); none for AWS.
    pub endpoint: Option<String>,
    /// Region.
    pub region: String,
    /// Bucket (must exist).
    pub bucket: String,
    /// Key prefix inside the bucket.
    pub prefix: String,
    /// Path-style addressing (endpoint/bucket/key); default: on when `endpoint` is set.
    pub path_style: Option<bool>,
    /// Access key; default: `AWS_ACCESS_KEY_ID`.
    pub access_key: Option<String>,
    /// Secret key; default: `AWS_SECRET_ACCESS_KEY`.
    pub secret_key: Option<String>,
    /// Session token of temporary credentials (`AWS_SESSION_TOKEN` only).
    #[serde(skip)]
    pub session_token: Option<String>,
    /// Upload part size in MiB (at least 5).
    pub part_size_mb: u64,
    /// Seconds a dead node's upload stays locked before another node may continue it.
    pub writer_lease_secs: u64,
    /// Answer blob downloads with redirects to presigned URLs valid this many seconds (0: off;
    /// blobs stream through berth). Clients must reach the S3 endpoint.
    pub redirect_secs: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            path_style: None,
            access_key: None,
            secret_key: None,
            session_token: None,
            part_size_mb: 10,
            writer_lease_secs: 60,
            redirect_secs: 0,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            acquire_timeout_secs: 5,
            kind: DatabaseKind::Sqlite,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            driver_name: "filesystem".into(),
            driver: StorageDriver::Filesystem,
            path: None,
            fsync: true,
            direct_writes: false,
            s3: S3Config::default(),
        }
    }
}
