//! `berth config check`: the effective settings, and the shared services the configuration
//! names but that cannot be reached.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, DatabaseKind, StorageDriver};

pub(crate) fn print_effective(c: &Config) {
    println!("configuration OK");
    println!("  listen             {}", c.listen);
    println!("  external_url       {}", c.external_url(c.listen_addr()));
    println!("  data_dir           {}", c.data_dir.display());
    println!("  database.url       {}", c.database_url_redacted());
    println!("  storage            {}", c.storage_description());
    println!(
        "  redis              {}",
        c.redis.url.as_deref().map_or_else(
            || "none (sessions and counters per node)".to_owned(),
            berth_shared::redact
        )
    );
    println!(
        "  lookup cache       {}, entries live {} s",
        c.cache_place(),
        c.cache.ttl_secs
    );
    println!("  log                {} ({})", c.log.level, c.log.format);
    match c.uploads.purge_after_hours {
        0 => println!("  upload purge       off"),
        h => println!(
            "  upload purge       after {h} h idle, every {} min",
            c.uploads.purge_interval_minutes
        ),
    }
}

/// What the configuration names but cannot be reached, one line each naming the setting: the
/// shared services (a MySQL database). Local paths are created at start-up and not checked here.
pub(crate) async fn unreachable_services(c: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let url = c.database_url();
    if c.database.kind == DatabaseKind::MySql {
        let settings = berth_meta::PoolSettings {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(c.database.acquire_timeout_secs.min(10)),
        };
        let reached = match berth_meta::MetadataStore::connect(&url, &settings).await {
            Ok(meta) => meta.ping().await,
            Err(e) => Err(e),
        };
        match reached {
            Ok(()) => println!("  database           reachable"),
            Err(e) => problems.push(format!(
                "database.url = {:?}: {}",
                c.database_url_redacted(),
                root_cause(&e)
            )),
        }
    }
    if c.storage.driver == StorageDriver::S3 {
        let locks = Arc::new(berth_storage::LocalLocks::default());
        let reached = match berth_storage::S3Store::new(&c.s3_settings(), locks) {
            Ok(store) => tokio::time::timeout(
                Duration::from_secs(10),
                berth_storage::BlobStore::check(&store),
            )
            .await
            .map_err(|_| "no answer within 10 s".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        match reached {
            Ok(()) => println!("  s3 bucket          reachable"),
            Err(e) => problems.push(format!("storage.s3: {e}")),
        }
    }
    if let Some(url) = &c.redis.url {
        let reached = match berth_shared::RedisSpec::parse(url) {
            Ok(spec) => tokio::time::timeout(
                Duration::from_secs(10),
                berth_shared::Shared::connect(&spec),
            )
            .await
            .map_err(|_| "no answer within 10 s".to_owned())
            .and_then(|r| r.map(drop).map_err(|e| root_cause(&e))),
            Err(e) => Err(e.to_string()),
        };
        match reached {
            Ok(()) => println!("  redis              reachable"),
            Err(e) => problems.push(format!("redis.url = {:?}: {e}", berth_shared::redact(url))),
        }
    }
    problems
}

/// The innermost error's message: what an operator can act on.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
