//! A real `berth_api::App` for in-process tests (feature `app`): a migrated SQLite database
//! and a filesystem blob store in a directory the caller owns, the token service, and an
//! administrator, wired as `berth serve` wires them (without the listener, jobs and Redis).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The administrator's name (`auth.admin_username`'s default).
pub const ADMIN: &str = "admin";
/// The administrator's password.
pub const ADMIN_PASSWORD: &str = "Admin-pass-123";
/// The token service's `service` (`auth.service`'s default).
pub const SERVICE: &str = "berth-registry";
/// The URL the registry is reached at.
pub const EXTERNAL_URL: &str = "http://registry.test";

/// Builds the app in `dir` (`berth.db`, `storage/`).
pub async fn build(dir: &Path) -> berth_api::AppState {
    build_with(dir, berth_registry::SettingsBase::default()).await
}

/// Builds the app in `dir` with the registry's settings starting from `base` (initial values
/// and pinned keys, as the configuration file gives them).
pub async fn build_with(dir: &Path, base: berth_registry::SettingsBase) -> berth_api::AppState {
    let url = format!("sqlite://{}", dir.join("berth.db").display());
    let meta = berth_meta::MetadataStore::connect(&url, &berth_meta::PoolSettings::default())
        .await
        .expect("open the metadata database");
    meta.migrate().await.expect("migrate the metadata database");
    let blobs: Arc<dyn berth_storage::BlobStore> = Arc::new(
        berth_storage::FilesystemStore::open(dir.join("storage"), false)
            .expect("open the blob store"),
    );
    let settings = berth_auth::AuthSettings {
        issuer: "berth-token-issuer".into(),
        service: SERVICE.into(),
        token_lifetime: Duration::from_secs(1800),
        refresh_lifetime: Duration::from_secs(30 * 86_400),
        ldap: None,
        session_idle: Duration::from_secs(3600),
    };
    let (service, problem) = berth_auth::AuthService::start(meta.clone(), settings, None)
        .await
        .expect("start the token service");
    assert!(problem.is_none(), "{problem:?}");
    assert!(
        service
            .bootstrap_admin(ADMIN, ADMIN_PASSWORD)
            .await
            .expect("create the administrator"),
        "the administrator is the first user"
    );
    let registry = Arc::new(
        berth_registry::Registry::new(
            meta,
            blobs,
            Arc::new(berth_core::SystemClock),
            berth_registry::AuditSettings::default(),
        )
        .with_settings(base),
    );
    Arc::new(berth_api::App {
        registry,
        limits: berth_api::Limits::default(),
        auth: Some(berth_api::HttpAuth {
            service: Arc::new(service),
            realm: format!("{EXTERNAL_URL}/service/token"),
        }),
        trusted_proxies: Vec::new(),
        system: berth_api::SystemSettings {
            external_url: EXTERNAL_URL.into(),
            registry_host: EXTERNAL_URL.trim_start_matches("http://").into(),
        },
        not_ready: None,
        metrics: None,
        metrics_on_main_listener: false,
    })
}
