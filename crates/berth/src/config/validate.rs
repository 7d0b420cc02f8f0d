//! The checks `Config::load` runs once the file and the environment are applied: every bad
//! value is reported, each naming its key.

use std::net::SocketAddr;

use super::{Config, DatabaseKind, LogFormat, StorageDriver};

impl Config {
    /// Reports every bad value into `errors`, and sets the typed values parsed from strings
    /// (`database.kind`, `storage.driver`, `log.format`).
    pub(super) fn validate(&mut self, errors: &mut Vec<String>) {
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
        match DatabaseKind::from_url(&url) {
            Some(kind) => self.database.kind = kind,
            None => errors.push(format!(
                "database.url = {:?}: expected sqlite://PATH or mysql://USER:PASSWORD@HOST:PORT/DATABASE",
                berth_shared::redact(&url)
            )),
        }
        if self.database.max_connections == 0 {
            errors.push("database.max_connections must be at least 1".into());
        }
        if self.database.acquire_timeout_secs == 0 {
            errors.push("database.acquire_timeout_secs must be at least 1".into());
        }
        match StorageDriver::parse(&self.storage.driver_name) {
            Some(driver) => self.storage.driver = driver,
            None => errors.push(format!(
                "storage.driver = {:?}: expected \"filesystem\" or \"s3\"",
                self.storage.driver_name
            )),
        }
        match self.storage.driver {
            StorageDriver::Filesystem => {}
            StorageDriver::S3 => {
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
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            errors.push(format!("log.level = {:?}: expected a level (error, warn, info, debug, trace) or filter directives", self.log.level));
        }
        match LogFormat::parse(&self.log.format_name) {
            Some(format) => self.log.format = format,
            None => errors.push(format!(
                "log.format = {:?}: expected \"text\" or \"json\"",
                self.log.format_name
            )),
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
        let max_minutes = berth_registry::settings::MAX_TOKEN_MINUTES as u64;
        if self.auth.token_lifetime_minutes > max_minutes {
            errors.push(format!(
                "auth.token_lifetime_minutes = {}: at most {max_minutes} (a day)",
                self.auth.token_lifetime_minutes
            ));
        }
        if self.ldap.timeout_secs > 300 {
            errors.push("ldap.timeout_secs must be at most 300".into());
        }
        for key in &self.settings.pinned {
            let known = key == "ldap" || berth_registry::settings::setting(key).is_some();
            if !known {
                errors.push(format!(
                    "settings.pinned: unknown setting {key:?} (one of {}, or ldap for every ldap_* key)",
                    berth_registry::settings::SETTINGS
                        .iter()
                        .map(|d| d.key)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if self.settings.refresh_secs == 0 || self.settings.refresh_secs > 3600 {
            errors.push("settings.refresh_secs must be 1 to 3600".into());
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
}
