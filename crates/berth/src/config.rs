//! Configuration: a TOML file (`--config`), then environment overrides, then defaults.
//! Only this binary reads configuration; the library crates receive typed settings.
//!
//! Environment variables (each overrides the matching key):
//!
//! | variable              | key                  | default                                   |
//! |-----------------------|----------------------|-------------------------------------------|
//! | `BERTH_LISTEN`        | `listen`             | `127.0.0.1:5000`                          |
//! | `BERTH_EXTERNAL_URL`  | `external_url`       | `http://<listen>` (`localhost` for 0.0.0.0) |
//! | `BERTH_TRUSTED_PROXIES` | `trusted_proxies`  | (none; comma-separated CIDRs)             |
//! | `BERTH_DATA_DIR`      | `data_dir`           | `./berth-data`                            |
//! | `BERTH_DATABASE_URL`  | `database.url`       | `sqlite://<data_dir>/berth.db`            |
//! | `BERTH_STORAGE_PATH`  | `storage.path`       | `<data_dir>/storage`                      |
//! | `BERTH_LOG`           | `log.level`          | `info`                                    |
//! | `BERTH_LOG_FORMAT`    | `log.format`         | `text`                                    |
//! | `BERTH_LDAP_SEARCH_PASSWORD` | `ldap.search_password` | (empty)                         |
//! | `BERTH_AUTH_ENABLED`  | `auth.enabled`       | `true`                                    |
//! | `BERTH_STORAGE_DRIVER`| `storage.driver`     | `filesystem`                              |
//! | `BERTH_S3_ENDPOINT`, `BERTH_S3_BUCKET`, `BERTH_S3_REGION` | `storage.s3.*` | (none) |
//! | `BERTH_REDIS_URL`     | `redis.url`          | (none: sessions and counters per node)    |
//! | `BERTH_TLS_CERT_FILE` | `tls.cert_file`      | (none: plain HTTP)                        |
//! | `BERTH_TLS_KEY_FILE`  | `tls.key_file`       | (none)                                    |
//! | `BERTH_ADMIN_PASSWORD`| (none: a secret)     | first start only: creates `auth.admin_username` |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration. Every field has a default, so an empty file (or none) is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// The URL clients use to reach this registry (behind a load balancer: the balancer's).
    pub external_url: Option<String>,
    /// Directory for everything kept locally: the SQLite database and filesystem blobs.
    pub data_dir: PathBuf,
    /// Load balancers and proxies (CIDRs) whose `X-Forwarded-For` header names the client.
    pub trusted_proxies: Vec<String>,
    /// The metadata database.
    pub database: DatabaseConfig,
    /// The blob store.
    pub storage: StorageConfig,
    /// Logging.
    pub log: LogConfig,
    /// Registry API limits.
    pub registry: RegistryConfig,
    /// Upload session housekeeping.
    pub uploads: UploadsConfig,
    /// Authentication and the token service.
    pub auth: AuthConfig,
    /// LDAP / Active Directory users and groups.
    pub ldap: LdapConfig,
    /// HTTPS served by berth itself.
    pub tls: TlsConfig,
    /// Redis, for state the nodes share beyond the database.
    pub redis: RedisConfig,
    /// The lookup cache of the registry's hot path.
    pub cache: CacheConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// The job system.
    pub jobs: JobsConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// This node's name in logs and the job service (default: the `HOSTNAME` environment
    /// variable, else `node`).
    pub node_name: String,
}

/// `[metrics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Keep request metrics and serve `GET /metrics`.
    pub enabled: bool,
    /// Serve `/metrics` on this address (`IP:PORT`) instead of the main listener.
    pub listen: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
        }
    }
}

/// `[jobs]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JobsConfig {
    /// Jobs this node runs at once.
    pub workers: u32,
    /// Seconds a node holds a job without a heartbeat: after that, another node takes a job
    /// over from a node that died.
    pub lease_secs: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            lease_secs: 30,
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    /// Record pulls (in batches written every second; a node that dies loses at most the last
    /// second's). Every other change is recorded always, in its own transaction.
    pub pulls: bool,
    /// When a user is deleted, replace their name in earlier entries with
    /// `deleted-user-<id>` (GDPR's right to be forgotten).
    pub forget_deleted_users: bool,
    /// Hours entries are kept; older ones are purged on `purge_schedule` (0: kept forever).
    pub retention_hours: u64,
    /// When the purge runs: a cron expression (six fields, seconds first) or `@every <n>m`.
    pub purge_schedule: String,
    /// Forward every entry to this syslog receiver (`host:port`, RFC 5424 over TCP).
    pub syslog: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            pulls: true,
            forget_deleted_users: false,
            retention_hours: 0,
            purge_schedule: "0 0 * * * *".into(),
            syslog: None,
        }
    }
}

/// `[cache]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// Seconds a repository's cached lookups live at most (0: no cache). Where the cache is:
    /// in Redis when `redis.url` is set; in process with SQLite (one node); none otherwise.
    pub ttl_secs: u64,
}

/// Where the lookup cache lives, as the configuration implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePlace {
    /// `cache.ttl_secs = 0`.
    Off,
    /// In Redis, shared by every node.
    Redis,
    /// In process: SQLite, which one node alone uses.
    Process,
    /// Several nodes may share the (MySQL) database, and without Redis they cannot share a
    /// cache: none.
    Unshared,
}

impl std::fmt::Display for CachePlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Redis => "in redis",
            Self::Process => "in process",
            Self::Unshared => "off (a shared database without redis.url)",
        })
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { ttl_secs: 300 }
    }
}

/// `[redis]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RedisConfig {
    /// `redis://…`, `rediss://…`, `redis+sentinel://h1,h2/master` or `redis+cluster://h1,h2`.
    /// Default: none (each node keeps its own counters).
    pub url: Option<String>,
}

/// `[tls]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// Certificate chain (PEM), server certificate first.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether berth serves HTTPS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// `[ldap]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LdapConfig {
    /// Check users without a local password against the directory.
    pub enabled: bool,
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade `ldap://` with StartTLS.
    pub starttls: bool,
    /// Verify the server certificate.
    pub verify_certificate: bool,
    /// DN of the searching account (empty: anonymous search).
    pub search_dn: String,
    /// Its password (better: `BERTH_LDAP_SEARCH_PASSWORD`).
    pub search_password: String,
    /// Base DN of users.
    pub base_dn: String,
    /// Filter users must match.
    pub user_filter: String,
    /// Attribute with the login name (`uid`; `sAMAccountName` on Active Directory).
    pub uid_attribute: String,
    /// Base DN of groups (empty: groups are not used).
    pub group_base_dn: String,
    /// Filter groups must match.
    pub group_filter: String,
    /// Group attribute that lists member DNs.
    pub group_membership_attribute: String,
    /// DN of the group whose members are system administrators (empty: none).
    pub admin_group_dn: String,
    /// Seconds to wait for the directory.
    pub timeout_secs: u64,
}

impl Default for LdapConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: String::new(),
            starttls: false,
            verify_certificate: true,
            search_dn: String::new(),
            search_password: String::new(),
            base_dn: String::new(),
            user_filter: "(objectClass=person)".into(),
            uid_attribute: "uid".into(),
            group_base_dn: String::new(),
            group_filter: "(objectClass=groupOfNames)".into(),
            group_membership_attribute: "member".into(),
            admin_group_dn: String::new(),
            timeout_secs: 5,
        }
    }
}

impl LdapConfig {
    /// The directory settings, when enabled.
    pub fn settings(&self) -> Option<berth_auth::ldap::LdapSettings> {
        let some = |s: &String| (!s.is_empty()).then(|| s.clone());
        self.enabled.then(|| berth_auth::ldap::LdapSettings {
            url: self.url.clone(),
            starttls: self.starttls,
            verify_certificate: self.verify_certificate,
            search_dn: some(&self.search_dn),
            search_password: some(&self.search_password),
            base_dn: self.base_dn.clone(),
            user_filter: self.user_filter.clone(),
            uid_attribute: self.uid_attribute.clone(),
            group_base_dn: some(&self.group_base_dn),
            group_filter: self.group_filter.clone(),
            group_membership_attribute: self.group_membership_attribute.clone(),
            admin_group_dn: some(&self.admin_group_dn),
            timeout: Duration::from_secs(self.timeout_secs),
        })
    }
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Require authentication (Docker registry token flow, Basic on /v2).
    pub enabled: bool,
    /// Service name: the `aud` of tokens and the `service` of challenges.
    pub service: String,
    /// Issuer name: the `iss` of tokens.
    pub issuer: String,
    /// Token lifetime in minutes.
    pub token_lifetime_minutes: u64,
    /// Lifetime of refresh tokens (what `docker login` keeps instead of the password) in days.
    pub refresh_token_days: u64,
    /// Signing key (PKCS#8 PEM, ECDSA P-256) to use instead of the one kept in the database.
    pub signing_key_file: Option<PathBuf>,
    /// Certificate (PEM) of `signing_key_file`.
    pub signing_cert_file: Option<PathBuf>,
    /// Name of the administrator created on first start (password from `BERTH_ADMIN_PASSWORD`,
    /// or generated into the data directory).
    pub admin_username: String,
    /// Who may create projects: `everyone` (logged-in users) or `adminonly`.
    pub project_creation: String,
    /// Minutes a browser session (`/c/login`) lasts without being used.
    pub session_timeout_minutes: u64,
    /// The first administrator's password (`BERTH_ADMIN_PASSWORD` only: never in a file).
    #[serde(skip)]
    pub admin_password: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            service: "berth-registry".into(),
            issuer: "berth-token-issuer".into(),
            token_lifetime_minutes: 30,
            refresh_token_days: 30,
            signing_key_file: None,
            signing_cert_file: None,
            admin_username: "admin".into(),
            project_creation: "everyone".into(),
            session_timeout_minutes: 30,
            admin_password: None,
        }
    }
}

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
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// Blob store driver: `filesystem` (local disk or a shared mount such as CephFS) or `s3`.
    pub driver: String,
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

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Level or filter directives, e.g. `info` or `warn,berth_api=debug`.
    pub level: String,
    /// `text` (human-readable) or `json` (one object per line).
    pub format: String,
}

/// `[registry]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RegistryConfig {
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// Default and largest page of `/v2/_catalog`.
    pub catalog_page_size: u32,
}

/// `[uploads]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UploadsConfig {
    /// Hours after which an upload nobody writes to is deleted (0: never).
    pub purge_after_hours: u64,
    /// Minutes between purges.
    pub purge_interval_minutes: u64,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            purge_after_hours: 168,
            purge_interval_minutes: 60,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5000".into(),
            external_url: None,
            data_dir: PathBuf::from("./berth-data"),
            trusted_proxies: Vec::new(),
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            log: LogConfig::default(),
            registry: RegistryConfig::default(),
            uploads: UploadsConfig::default(),
            audit: AuditConfig::default(),
            jobs: JobsConfig::default(),
            metrics: MetricsConfig::default(),
            node_name: "node".into(),
            auth: AuthConfig::default(),
            ldap: LdapConfig::default(),
            tls: TlsConfig::default(),
            redis: RedisConfig::default(),
            cache: CacheConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            acquire_timeout_secs: 5,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            driver: "filesystem".into(),
            path: None,
            fsync: true,
            direct_writes: false,
            s3: S3Config::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        let limits = berth_api::Limits::default();
        Self {
            max_manifest_bytes: limits.max_manifest_bytes,
            catalog_page_size: limits.catalog_page,
        }
    }
}

/// Why a configuration cannot be used: every problem found, each on its own line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads an environment variable (a parameter, so that tests need not touch the process env).
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Where the lookup cache lives.
    pub fn cache_place(&self) -> CachePlace {
        if self.cache.ttl_secs == 0 {
            CachePlace::Off
        } else if self.redis.url.is_some() {
            CachePlace::Redis
        } else if self.database_url().starts_with("sqlite:") {
            CachePlace::Process
        } else {
            CachePlace::Unshared
        }
    }

    /// Loads the file (if any), applies environment overrides from `env`, and validates.
    pub fn load(file: Option<&Path>, env: Env<'_>) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut config = match file {
            None => Self::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigErrors(vec![format!("cannot read {}: {e}", path.display())])
                })?;
                let mut unknown = Vec::new();
                let parsed: Result<Self, _> =
                    serde_ignored::deserialize(toml::Deserializer::new(&text), |key| {
                        unknown.push(key.to_string());
                    });
                match parsed {
                    Ok(c) => {
                        errors.extend(
                            unknown
                                .into_iter()
                                .map(|k| format!("{}: unknown key `{k}`", path.display())),
                        );
                        c
                    }
                    Err(e) => {
                        return Err(ConfigErrors(vec![format!(
                            "{}: {}",
                            path.display(),
                            e.to_string().trim_end()
                        )]));
                    }
                }
            }
        };
        config.apply_env(env);
        config.validate(&mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    fn apply_env(&mut self, env: Env<'_>) {
        if let Some(v) = env("BERTH_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("BERTH_EXTERNAL_URL") {
            self.external_url = Some(v);
        }
        if let Some(v) = env("BERTH_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("BERTH_STORAGE_DRIVER") {
            self.storage.driver = v;
        }
        if let Some(v) = env("BERTH_S3_ENDPOINT") {
            self.storage.s3.endpoint = Some(v);
        }
        if let Some(v) = env("BERTH_S3_BUCKET") {
            self.storage.s3.bucket = v;
        }
        if let Some(v) = env("BERTH_S3_REGION") {
            self.storage.s3.region = v;
        }
        if let Some(v) = env("BERTH_REDIS_URL") {
            self.redis.url = Some(v);
        }
        if let Some(v) = env("BERTH_TLS_CERT_FILE") {
            self.tls.cert_file = Some(v.into());
        }
        if let Some(v) = env("BERTH_TLS_KEY_FILE") {
            self.tls.key_file = Some(v.into());
        }
        if let Some(v) = env("BERTH_DATABASE_URL") {
            self.database.url = Some(v);
        }
        if let Some(v) = env("BERTH_STORAGE_PATH") {
            self.storage.path = Some(v.into());
        }
        if let Some(v) = env("BERTH_LOG") {
            self.log.level = v;
        }
        if let Some(v) = env("BERTH_LOG_FORMAT") {
            self.log.format = v;
        }
        if let Some(v) = env("BERTH_TRUSTED_PROXIES") {
            self.trusted_proxies = v
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect();
        }
        if let Some(v) = env("BERTH_LDAP_SEARCH_PASSWORD") {
            self.ldap.search_password = v;
        }
        if let Some(v) = env("BERTH_ADMIN_PASSWORD") {
            self.auth.admin_password = Some(v);
        }
        // The AWS variables are the default credentials of the S3 driver, used when the file
        // names none (both keys, or neither).
        if self.storage.s3.access_key.is_none()
            && self.storage.s3.secret_key.is_none()
            && let (Some(key), Some(secret)) =
                (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        {
            self.storage.s3.access_key = Some(key);
            self.storage.s3.secret_key = Some(secret);
            self.storage.s3.session_token = env("AWS_SESSION_TOKEN");
        }
        if let Some(v) = env("BERTH_AUTH_ENABLED") {
            self.auth.enabled = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = env("HOSTNAME") {
            self.node_name = v;
        }
        if let Some(v) = env("BERTH_NODE_NAME") {
            self.node_name = v;
        }
        if let Some(v) = env("BERTH_JOBS_WORKERS") {
            match v.parse() {
                Ok(n) => self.jobs.workers = n,
                Err(_) => self.jobs.workers = 0,
            }
        }
        if let Some(v) = env("BERTH_JOBS_LEASE_SECS") {
            self.jobs.lease_secs = v.parse().unwrap_or(0);
        }
        if let Some(v) = env("BERTH_AUDIT_RETENTION_HOURS") {
            self.audit.retention_hours = v.parse().unwrap_or(u64::MAX);
        }
        if let Some(v) = env("BERTH_AUDIT_PURGE_SCHEDULE") {
            self.audit.purge_schedule = v;
        }
        if let Some(v) = env("BERTH_METRICS_LISTEN") {
            self.metrics.listen = Some(v);
        }
        if let Some(v) = env("BERTH_METRICS_ENABLED") {
            self.metrics.enabled = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = env("BERTH_AUDIT_SYSLOG") {
            self.audit.syslog = Some(v);
        }
        if let Some(v) = env("BERTH_AUDIT_PULLS") {
            self.audit.pulls = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = env("BERTH_AUDIT_FORGET_DELETED_USERS") {
            self.audit.forget_deleted_users = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
    }

    fn validate(&self, errors: &mut Vec<String>) {
        if self.listen.parse::<SocketAddr>().is_err() {
            errors.push(format!(
                "listen = {:?}: expected IP:PORT, e.g. 127.0.0.1:5000 or 0.0.0.0:5000",
                self.listen
            ));
        }
        for proxy in &self.trusted_proxies {
            if proxy.parse::<ipnet::IpNet>().is_err() && proxy.parse::<std::net::IpAddr>().is_err()
            {
                errors.push(format!(
                    "trusted_proxies: {proxy:?} is not an address or CIDR (e.g. 10.0.0.0/8)"
                ));
            }
        }
        if let Some(url) = &self.external_url {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
                errors.push(format!(
                    "external_url = {url:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"
                ));
            }
        }
        let url = self.database_url();
        if !["sqlite:", "mysql:", "mariadb:"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            errors.push(format!(
                "database.url = {:?}: expected sqlite://PATH or mysql://USER:PASSWORD@HOST:PORT/DATABASE",
                berth_shared::redact(&url)
            ));
        }
        if self.database.max_connections == 0 {
            errors.push("database.max_connections must be at least 1".into());
        }
        if self.database.acquire_timeout_secs == 0 {
            errors.push("database.acquire_timeout_secs must be at least 1".into());
        }
        match self.storage.driver.as_str() {
            "filesystem" => {}
            "s3" => {
                let s3 = &self.storage.s3;
                if s3.bucket.is_empty() {
                    errors
                        .push("storage.s3.bucket is required with storage.driver = \"s3\"".into());
                }
                if s3.part_size_mb < 5 {
                    errors.push(
                        "storage.s3.part_size_mb must be at least 5 (S3's minimum part)".into(),
                    );
                }
                if s3.writer_lease_secs < 3 {
                    errors.push("storage.s3.writer_lease_secs must be at least 3".into());
                }
                if s3.access_key.is_some() != s3.secret_key.is_some() {
                    errors.push("storage.s3.access_key and secret_key go together: set both, or neither to use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into());
                }
                if !s3.prefix.is_empty() && !s3.prefix.ends_with('/') {
                    errors.push(format!(
                        "storage.s3.prefix = {:?}: must end with '/'",
                        s3.prefix
                    ));
                }
            }
            other => errors.push(format!(
                "storage.driver = {other:?}: expected \"filesystem\" or \"s3\""
            )),
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            errors.push(format!("log.level = {:?}: expected a level (error, warn, info, debug, trace) or filter directives", self.log.level));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            errors.push(format!(
                "log.format = {:?}: expected \"text\" or \"json\"",
                self.log.format
            ));
        }
        if self.registry.max_manifest_bytes < 1024 {
            errors.push("registry.max_manifest_bytes must be at least 1024".into());
        }
        if let Some(url) = &self.redis.url
            && let Err(e) = berth_shared::RedisSpec::parse(url)
        {
            errors.push(format!("redis.url: {e}"));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            errors.push("tls.cert_file and tls.key_file go together: set both or neither".into());
        }
        if self.auth.signing_key_file.is_some() != self.auth.signing_cert_file.is_some() {
            errors.push(
                "auth.signing_key_file and auth.signing_cert_file go together: set both or neither"
                    .into(),
            );
        }
        if self.auth.token_lifetime_minutes == 0
            || self.auth.refresh_token_days == 0
            || self.auth.session_timeout_minutes == 0
        {
            errors.push(
                "auth.token_lifetime_minutes, auth.refresh_token_days and auth.session_timeout_minutes must be at least 1".into(),
            );
        }
        if self.auth.service.is_empty()
            || self.auth.issuer.is_empty()
            || self.auth.admin_username.is_empty()
        {
            errors.push("auth.service, auth.issuer and auth.admin_username cannot be empty".into());
        }
        if let Err(e) = self
            .auth
            .project_creation
            .parse::<berth_auth::ProjectCreation>()
        {
            errors.push(format!("auth.project_creation = {e}"));
        }
        if self.ldap.enabled {
            if !(self.ldap.url.starts_with("ldap://") || self.ldap.url.starts_with("ldaps://")) {
                errors.push(format!(
                    "ldap.url = {:?}: expected ldap://HOST[:PORT] or ldaps://HOST[:PORT]",
                    self.ldap.url
                ));
            }
            if self.ldap.base_dn.is_empty() || self.ldap.uid_attribute.is_empty() {
                errors.push(
                    "ldap.base_dn and ldap.uid_attribute are required when ldap.enabled".into(),
                );
            }
            if self.ldap.timeout_secs == 0 {
                errors.push("ldap.timeout_secs must be at least 1".into());
            }
            if !self.auth.enabled {
                errors.push("ldap.enabled needs auth.enabled".into());
            }
        }
        if let Some(l) = &self.metrics.listen
            && l.parse::<SocketAddr>().is_err()
        {
            errors.push(format!(
                "metrics.listen = {l:?}: expected IP:PORT, e.g. 127.0.0.1:9090"
            ));
        }
        if let Some(s) = &self.audit.syslog
            && s.rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            errors.push(format!(
                "audit.syslog = {s:?}: expected HOST:PORT of a syslog receiver taking TCP"
            ));
        }
        if self.jobs.workers == 0 || self.jobs.workers > 256 {
            errors.push("jobs.workers must be 1 to 256".into());
        }
        if self.jobs.lease_secs < 3 {
            errors.push("jobs.lease_secs must be at least 3".into());
        }
        if self.audit.retention_hours > 24 * 365 * 100 {
            errors.push("audit.retention_hours must be at most 876000 (100 years)".into());
        }
        if let Err(e) = self.audit.purge_schedule.parse::<berth_jobs::Timing>() {
            errors.push(format!("audit.purge_schedule: {e}"));
        }
        if self.node_name.is_empty() || self.node_name.len() > 128 {
            errors.push("node_name must be 1 to 128 characters".into());
        }
        if self.uploads.purge_interval_minutes == 0 {
            errors.push("uploads.purge_interval_minutes must be at least 1".into());
        }
        if self.registry.catalog_page_size == 0 {
            errors.push("registry.catalog_page_size must be at least 1".into());
        }
    }

    /// The trusted proxies as networks (validated by `load`; a bare address is a /32 or /128).
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| {
                p.parse()
                    .ok()
                    .or_else(|| p.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
            })
            .collect()
    }

    /// Who may create projects (validated by `load`).
    pub fn project_creation(&self) -> berth_auth::ProjectCreation {
        self.auth.project_creation.parse().unwrap_or_default()
    }

    /// The listen address (validated by `load`).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5000)))
    }

    /// The URL clients use: configured, or derived from the listen address.
    pub fn external_url(&self, bound: SocketAddr) -> String {
        match &self.external_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls.enabled() { "https" } else { "http" };
                if bound.ip().is_unspecified() {
                    format!("{scheme}://localhost:{}", bound.port())
                } else {
                    format!("{scheme}://{bound}")
                }
            }
        }
    }

    /// The database URL with its password hidden, for messages and logs.
    pub fn database_url_redacted(&self) -> String {
        berth_shared::redact(&self.database_url())
    }

    /// The database URL: configured, or a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("berth.db").display()))
    }

    /// The S3 driver's settings (validated by `load`).
    pub fn s3_settings(&self) -> berth_storage::S3Settings {
        let s3 = &self.storage.s3;
        berth_storage::S3Settings {
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            bucket: s3.bucket.clone(),
            prefix: s3.prefix.clone(),
            path_style: s3.path_style.unwrap_or(s3.endpoint.is_some()),
            credentials: s3
                .access_key
                .clone()
                .zip(s3.secret_key.clone())
                .map(|(k, s)| (k, s, s3.session_token.clone())),
            part_size: s3.part_size_mb << 20,
            writer_lease: Duration::from_secs(s3.writer_lease_secs),
            redirect: (s3.redirect_secs > 0).then(|| Duration::from_secs(s3.redirect_secs)),
        }
    }

    /// The blob store in words, for logs and `config check` (no secrets).
    pub fn storage_description(&self) -> String {
        match self.storage.driver.as_str() {
            "s3" => format!(
                "s3 bucket {} at {}{}",
                self.storage.s3.bucket,
                self.storage.s3.endpoint.as_deref().unwrap_or("AWS"),
                if self.storage.s3.prefix.is_empty() {
                    String::new()
                } else {
                    format!(" under {}", self.storage.s3.prefix)
                }
            ),
            _ => format!(
                "filesystem at {} (fsync {})",
                self.storage_path().display(),
                self.storage.fsync
            ),
        }
    }

    /// The filesystem driver's root.
    pub fn storage_path(&self) -> PathBuf {
        self.storage
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("storage"))
    }

    /// Pool settings for the metadata store.
    pub fn pool_settings(&self) -> berth_meta::PoolSettings {
        berth_meta::PoolSettings {
            max_connections: self.database.max_connections,
            acquire_timeout: Duration::from_secs(self.database.acquire_timeout_secs),
        }
    }

    /// Limits for the registry API.
    pub fn limits(&self) -> berth_api::Limits {
        berth_api::Limits {
            max_manifest_bytes: self.registry.max_manifest_bytes,
            catalog_page: self.registry.catalog_page_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, &no_env).unwrap();
        assert_eq!(c.listen_addr(), "127.0.0.1:5000".parse().unwrap());
        assert_eq!(c.external_url(c.listen_addr()), "http://127.0.0.1:5000");
        assert_eq!(c.database_url(), "sqlite://./berth-data/berth.db");
        assert_eq!(c.storage_path(), PathBuf::from("./berth-data/storage"));
        assert_eq!(
            c.external_url("0.0.0.0:80".parse().unwrap()),
            "http://localhost:80"
        );
    }

    #[test]
    fn the_example_config_is_valid_and_complete() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/berth.example.toml");
        let c = Config::load(Some(&path), &no_env).unwrap();
        assert_eq!(c.listen, "127.0.0.1:5000");
    }

    #[test]
    fn environment_overrides_the_file() {
        let f = write("listen = \"127.0.0.1:6000\"\ndata_dir = \"/srv/a\"\n");
        let env = |k: &str| match k {
            "BERTH_LISTEN" => Some("127.0.0.1:7000".to_owned()),
            "BERTH_EXTERNAL_URL" => Some("https://registry.example.com/".to_owned()),
            _ => None,
        };
        let c = Config::load(Some(f.path()), &env).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7000");
        assert_eq!(
            c.external_url(c.listen_addr()),
            "https://registry.example.com"
        );
        assert_eq!(c.database_url(), "sqlite:///srv/a/berth.db");
    }

    #[test]
    fn secrets_and_node_settings_come_through_the_given_environment_only() {
        let env = |k: &str| match k {
            "BERTH_ADMIN_PASSWORD" => Some("Admin-pass-1".to_owned()),
            "AWS_ACCESS_KEY_ID" => Some("env-key".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
            "AWS_SESSION_TOKEN" => Some("env-token".to_owned()),
            "HOSTNAME" => Some("host-7".to_owned()),
            "BERTH_AUDIT_SYSLOG" => Some("logs:6514".to_owned()),
            "BERTH_JOBS_WORKERS" => Some("4".to_owned()),
            _ => None,
        };
        let c = Config::load(None, &env).unwrap();
        assert_eq!(c.auth.admin_password.as_deref(), Some("Admin-pass-1"));
        assert_eq!(
            c.s3_settings().credentials,
            Some((
                "env-key".to_owned(),
                "env-secret".to_owned(),
                Some("env-token".to_owned())
            ))
        );
        assert_eq!(
            (
                c.node_name.as_str(),
                c.audit.syslog.as_deref(),
                c.jobs.workers
            ),
            ("host-7", Some("logs:6514"), 4)
        );
        // Keys in the file win over the environment's.
        let f = write("[storage.s3]\naccess_key = \"file-key\"\nsecret_key = \"file-secret\"\n");
        let c = Config::load(Some(f.path()), &env).unwrap();
        assert_eq!(
            c.s3_settings().credentials,
            Some(("file-key".to_owned(), "file-secret".to_owned(), None))
        );
        // Nothing given: no credentials, no password.
        let c = Config::load(None, &no_env).unwrap();
        assert_eq!(
            (c.s3_settings().credentials, c.auth.admin_password),
            (None, None)
        );
        // Bad values of the new settings are reported.
        let bad = |k: &str| match k {
            "BERTH_AUDIT_SYSLOG" => Some("no-port".to_owned()),
            "BERTH_JOBS_WORKERS" => Some("0".to_owned()),
            "BERTH_AUDIT_PURGE_SCHEDULE" => Some("every day".to_owned()),
            "BERTH_METRICS_LISTEN" => Some("nowhere".to_owned()),
            _ => None,
        };
        let errors = Config::load(None, &bad).unwrap_err().0.join("\n");
        for key in [
            "audit.syslog",
            "jobs.workers",
            "audit.purge_schedule",
            "metrics.listen",
        ] {
            assert!(errors.contains(key), "{key}: {errors}");
        }
    }

    #[test]
    fn storage_tls_redis_and_project_settings_are_checked() {
        let f = write(
            "[storage]\ndriver = \"s3\"\n[storage.s3]\npart_size_mb = 1\nwriter_lease_secs = 1\n\
             access_key = \"a\"\nprefix = \"no-slash\"\n[tls]\ncert_file = \"/c.pem\"\n\
             [redis]\nurl = \"memcached://u:hunter2@h\"\n[auth]\nproject_creation = \"some\"\n",
        );
        let e = Config::load(Some(f.path()), &no_env)
            .unwrap_err()
            .to_string();
        for expected in [
            "storage.s3.bucket is required",
            "part_size_mb must be at least 5",
            "writer_lease_secs must be at least 3",
            "access_key and secret_key go together",
            "storage.s3.prefix = \"no-slash\"",
            "tls.cert_file and tls.key_file go together",
            "redis.url",
            "auth.project_creation",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in {e}");
        }
        assert!(!e.contains("hunter2"), "passwords are never shown: {e}");
        let env = |k: &str| match k {
            "BERTH_STORAGE_DRIVER" => Some("s3".to_owned()),
            "BERTH_S3_BUCKET" => Some("registry".to_owned()),
            "BERTH_S3_ENDPOINT" => Some("http://rgw:7480".to_owned()),
            _ => None,
        };
        let c = Config::load(None, &env).unwrap();
        let s3 = c.s3_settings();
        assert!(s3.path_style, "path style by default with an endpoint");
        assert_eq!((s3.part_size, s3.redirect), (10 << 20, None));
        assert_eq!(
            c.storage_description(),
            "s3 bucket registry at http://rgw:7480"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_all_reported() {
        let f = write(
            "lisen = \"x\"\n[storage]\nfsynk = true\ndriver = \"floppy\"\n[log]\nformat = \"xml\"\n",
        );
        let e = Config::load(Some(f.path()), &no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `lisen`"), "{e}");
        assert!(e.contains("unknown key `storage.fsynk`"), "{e}");
        assert!(e.contains("storage.driver = \"floppy\""), "{e}");
        assert!(e.contains("log.format = \"xml\""), "{e}");
        let f = write("[database]\nmax_connections = \"many\"\n");
        let e = Config::load(Some(f.path()), &no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_connections"), "{e}");
        let env = |k: &str| (k == "BERTH_LISTEN").then(|| "nonsense".to_owned());
        let e = Config::load(None, &env).unwrap_err().to_string();
        assert!(e.contains("listen = \"nonsense\""), "{e}");
        let env =
            |k: &str| (k == "BERTH_DATABASE_URL").then(|| "postgres://u:secret@x/y".to_owned());
        let e = Config::load(None, &env).unwrap_err().to_string();
        assert!(e.contains("database.url"), "{e}");
        assert!(!e.contains("secret"), "passwords are never shown: {e}");
        let env =
            |k: &str| (k == "BERTH_DATABASE_URL").then(|| "mysql://u:p@db:3306/berth".to_owned());
        let c = Config::load(None, &env).unwrap();
        assert_eq!(c.database_url_redacted(), "mysql://u:***@db:3306/berth");
        assert_eq!(berth_shared::redact("sqlite:///a/b.db"), "sqlite:///a/b.db");
        assert_eq!(berth_shared::redact("mysql://u@h/d"), "mysql://u@h/d");
    }
}
