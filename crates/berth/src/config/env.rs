//! The environment overrides: each `BERTH_*` variable (and the AWS credentials) replaces
//! the matching key of the file.

use super::{Config, Env};

impl Config {
    pub(super) fn apply_env(&mut self, env: Env<'_>) {
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
            self.storage.driver_name = v;
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
            self.log.format_name = v;
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
            self.origin
                .env
                .insert("ldap_search_password", "BERTH_LDAP_SEARCH_PASSWORD");
        }
        if let Some(v) = env("BERTH_SETTINGS_PINNED") {
            self.settings.pinned = v
                .split(',')
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect();
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
}
