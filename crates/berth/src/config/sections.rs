//! The configuration's sections other than the stores (`[metrics]`, `[jobs]`, `[audit]`,
//! `[cache]`, `[redis]`, `[tls]`, `[ldap]`, `[auth]`, `[log]`, `[registry]`, `[uploads]`): their
//! structures as read from TOML, and their defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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

/// `[settings]`: the settings administrators change while the registry runs (the web UI's
/// configuration page, `/api/v2.0/configurations`). The file and the environment give their
/// initial values (`[auth]`, `[ldap]`); the keys listed in `pinned` keep those values.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SettingsConfig {
    /// Keys (Harbor's names: `auth_mode`, `ldap_url`, `token_expiration`, …) or `ldap` for
    /// every `ldap_*` key, that administrators may not change.
    pub pinned: Vec<String>,
    /// Seconds between two reads of the stored settings on each node.
    pub refresh_secs: u64,
}

impl Default for SettingsConfig {
    fn default() -> Self {
        Self {
            pinned: Vec::new(),
            refresh_secs: 5,
        }
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

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Level or filter directives, e.g. `info` or `warn,berth_api=debug`.
    pub level: String,
    /// `text` (human-readable) or `json` (one object per line), as written; `format` is what
    /// it names.
    #[serde(rename = "format")]
    pub(in crate::config) format_name: String,
    /// The log format (set from `log.format` by `Config::load`).
    #[serde(skip)]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `text`: human-readable.
    #[default]
    Text,
    /// `json`: one object per line.
    Json,
}

impl LogFormat {
    /// The format a `log.format` value names, if any.
    pub(super) fn parse(name: &str) -> Option<Self> {
        match name {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
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

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format_name: "text".into(),
            format: LogFormat::Text,
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
