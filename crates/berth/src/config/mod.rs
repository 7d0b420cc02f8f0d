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
//!
//! This module holds the whole `Config`, `load` and the accessors the rest of the binary uses;
//! the sections' structures are in `sections` and `storage`, the environment overrides in `env`,
//! the checks in `validate`.

mod env;
mod sections;
mod storage;
#[cfg(test)]
mod tests;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use sections::{
    AuditConfig, AuthConfig, CacheConfig, CachePlace, JobsConfig, LdapConfig, LogConfig, LogFormat,
    MetricsConfig, RedisConfig, RegistryConfig, SettingsConfig, TlsConfig, UploadsConfig,
};

/// Where a configuration came from: the file, and the settings the environment gave.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Settings keys (Harbor's names) set from the environment → the variable.
    pub env: std::collections::BTreeMap<&'static str, &'static str>,
}
pub use storage::{DatabaseConfig, DatabaseKind, StorageConfig, StorageDriver};

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
    /// Settings changed at run time, and those pinned here.
    pub settings: SettingsConfig,
    /// Where the configuration came from (set by `load`).
    #[serde(skip)]
    pub origin: Origin,
    /// This node's name in logs and the job service (default: the `HOSTNAME` environment
    /// variable, else `node`).
    pub node_name: String,
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
            settings: SettingsConfig::default(),
            origin: Origin::default(),
            node_name: "node".into(),
            auth: AuthConfig::default(),
            ldap: LdapConfig::default(),
            tls: TlsConfig::default(),
            redis: RedisConfig::default(),
            cache: CacheConfig::default(),
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
        } else if self.database.kind == DatabaseKind::Sqlite {
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
        config.origin.file = file.map(Path::to_owned);
        config.apply_env(env);
        config.validate(&mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
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
        match self.storage.driver {
            StorageDriver::S3 => format!(
                "s3 bucket {} at {}{}",
                self.storage.s3.bucket,
                self.storage.s3.endpoint.as_deref().unwrap_or("AWS"),
                if self.storage.s3.prefix.is_empty() {
                    String::new()
                } else {
                    format!(" under {}", self.storage.s3.prefix)
                }
            ),
            StorageDriver::Filesystem => format!(
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

    /// The settings' initial values (this configuration's) and the keys pinned here, each
    /// with where its value comes from.
    pub fn settings_base(&self) -> berth_registry::SettingsBase {
        use serde_json::Value;
        let mut initial = berth_registry::Settings::default();
        let l = &self.ldap;
        let values: [(&str, Value); 16] = [
            (
                "auth_mode",
                Value::from(if l.enabled {
                    berth_registry::settings::LDAP_AUTH
                } else {
                    berth_registry::settings::DB_AUTH
                }),
            ),
            ("ldap_url", Value::from(l.url.as_str())),
            ("ldap_starttls", Value::Bool(l.starttls)),
            ("ldap_verify_cert", Value::Bool(l.verify_certificate)),
            ("ldap_search_dn", Value::from(l.search_dn.as_str())),
            (
                "ldap_search_password",
                Value::from(l.search_password.as_str()),
            ),
            ("ldap_base_dn", Value::from(l.base_dn.as_str())),
            ("ldap_filter", Value::from(l.user_filter.as_str())),
            ("ldap_uid", Value::from(l.uid_attribute.as_str())),
            ("ldap_group_base_dn", Value::from(l.group_base_dn.as_str())),
            (
                "ldap_group_search_filter",
                Value::from(l.group_filter.as_str()),
            ),
            (
                "ldap_group_membership_attribute",
                Value::from(l.group_membership_attribute.as_str()),
            ),
            (
                "ldap_group_admin_dn",
                Value::from(l.admin_group_dn.as_str()),
            ),
            ("ldap_timeout", Value::from(l.timeout_secs)),
            (
                "project_creation_restriction",
                Value::from(self.project_creation().as_str()),
            ),
            (
                "token_expiration",
                Value::from(self.auth.token_lifetime_minutes),
            ),
        ];
        for (key, value) in values {
            // Checked by `load`; a value out of a setting's range keeps the default.
            if let Err(e) = initial.set(key, value) {
                tracing::warn!(setting = key, error = %e, "initial value ignored");
            }
        }
        let mut pinned = std::collections::BTreeMap::new();
        for key in self.pinned_settings() {
            let place = match (self.origin.env.get(key), &self.origin.file) {
                (Some(var), _) => format!("the environment ({var})"),
                (None, Some(file)) => format!("the configuration file {}", file.display()),
                (None, None) => "the default configuration".to_owned(),
            };
            pinned.insert(key.to_owned(), place);
        }
        berth_registry::SettingsBase { initial, pinned }
    }

    /// The pinned settings' keys (`ldap` stands for every `ldap_*` key; checked by `load`).
    pub fn pinned_settings(&self) -> Vec<&'static str> {
        berth_registry::settings::SETTINGS
            .iter()
            .map(|d| d.key)
            .filter(|key| {
                self.settings
                    .pinned
                    .iter()
                    .any(|p| p == key || (p == "ldap" && key.starts_with("ldap_")))
            })
            .collect()
    }

    /// Limits for the registry API.
    pub fn limits(&self) -> berth_api::Limits {
        berth_api::Limits {
            max_manifest_bytes: self.registry.max_manifest_bytes,
            catalog_page: self.registry.catalog_page_size,
        }
    }
}
