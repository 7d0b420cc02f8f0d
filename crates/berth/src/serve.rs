//! `berth serve`: wires the stores, the token service, the registry, the job system and the
//! metrics into the HTTP(S) server, and shuts them down in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::auth::start_auth;
use crate::config::Config;
use crate::stores::{connect_redis, migrate, open_blob_store, with_lookup_cache};

pub(crate) async fn serve(c: Config) -> anyhow::Result<()> {
    let meta = with_lookup_cache(&c, migrate(&c).await?);
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    // This process among the cluster's nodes (the holder name of job and upload leases):
    // unique even where host names repeat.
    let node_id = format!(
        "{}-{}",
        c.node_name,
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let blobs = open_blob_store(&c, &meta, &node_id).await?;
    let listener = tokio::net::TcpListener::bind(c.listen_addr())
        .await
        .with_context(|| format!("cannot listen on {} (listen)", c.listen))?;
    let bound = listener.local_addr()?;
    let tls = match (&c.tls.cert_file, &c.tls.key_file) {
        (Some(cert), Some(key)) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "cannot use the TLS certificate {} and key {} (tls.cert_file, tls.key_file)",
                        cert.display(),
                        key.display()
                    )
                })?,
        ),
        _ => None,
    };
    let (auth, not_ready) = if c.auth.enabled {
        let (auth, problem) = start_auth(&c, &meta, bound, jobs_stopped.clone()).await?;
        (Some(auth), problem)
    } else {
        (None, None)
    };
    if let Some(url) = &c.redis.url {
        connect_redis(url, &meta, auth.as_ref().map(|a| &a.service))?;
    }
    let external_url = c.external_url(bound);
    let system = berth_api::SystemSettings {
        registry_host: external_url
            .split_once("://")
            .map_or(external_url.as_str(), |(_, host)| host)
            .to_owned(),
        external_url,
    };
    let registry = berth_registry::Registry::new(
        meta.clone(),
        blobs.clone(),
        Arc::new(berth_core::SystemClock),
        berth_registry::AuditSettings {
            pulls: c.audit.pulls,
            forget_deleted_users: c.audit.forget_deleted_users,
        },
    )
    .with_settings(c.settings_base());
    let registry = Arc::new(registry);
    registry
        .refresh_settings()
        .await
        .context("cannot read the stored settings")?;

    let jobs = start_jobs(&c, &meta, &blobs, &node_id, jobs_stopped.clone()).await?;
    let pull_log = {
        let registry = registry.clone();
        let mut stop = jobs_stopped.clone();
        tokio::spawn(async move {
            registry
                .run_pull_log(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await;
        })
    };
    let metrics_listener = match (&c.metrics.listen, c.metrics.enabled) {
        (Some(addr), true) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (metrics.listen)"))?,
        ),
        _ => None,
    };
    let app = Arc::new(berth_api::App {
        metrics: c.metrics.enabled.then(berth_api::metrics::Metrics::default),
        metrics_on_main_listener: c.metrics.enabled && metrics_listener.is_none(),
        registry: registry.clone(),
        system,
        limits: c.limits(),
        auth,
        trusted_proxies: c.trusted_proxies(),
        not_ready,
    });
    follow_settings(
        &app,
        Duration::from_secs(c.settings.refresh_secs),
        jobs_stopped.clone(),
    );
    tracing::info!(
        listen = %bound,
        external_url = %c.external_url(bound),
        database = %c.database_url_redacted(),
        storage = %c.storage_description(),
        tls = c.tls.enabled(),
        "berth is serving"
    );
    if let Some(listener) = metrics_listener {
        let router = berth_api::metrics_router(app.clone());
        tracing::info!(listen = %listener.local_addr()?, "metrics served");
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::warn!(%error, "the metrics listener failed");
            }
        });
    }
    let service = berth_api::router_with(app.clone(), berth_web::router(app))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    match tls {
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let stopping = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                stopping.graceful_shutdown(Some(Duration::from_secs(30)));
            });
            axum_server::from_tcp_rustls(listener.into_std()?, tls)?
                .handle(handle)
                .serve(service)
                .await
                .context("server failed")?;
        }
        // TCP_NODELAY: a response whose body follows its headers in a second write (a blob)
        // must not wait for the client's delayed ACK (tens of milliseconds per request).
        // axum-server's acceptor (the TLS path) sets it itself.
        None => axum::serve(
            axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
            }),
            service,
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?,
    }
    let _ = stop_jobs.send(true);
    // The last second's pulls are written before the process ends, and running jobs are
    // handed back to the queue.
    let _ = pull_log.await;
    let _ = jobs.await;
    tracing::info!("berth stopped");
    Ok(())
}

/// Keeps this node's settings current: reads the stored ones every `every` (until `stopped`),
/// and applies every change to the token service.
fn follow_settings(
    app: &berth_api::AppState,
    every: Duration,
    stopped: tokio::sync::watch::Receiver<bool>,
) {
    let registry = app.registry.clone();
    let mut stop = stopped.clone();
    tokio::spawn(async move {
        registry
            .run_settings_refresh(every, async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await;
    });
    let mut changes = app.registry.watch_settings();
    app.apply_settings();
    let app = app.clone();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            app.apply_settings();
        }
    });
}

/// Starts this node's job workers and scheduler, and sets the schedules the configuration
/// asks for. The returned task ends once `stopped` turns true and running jobs are handed back.
async fn start_jobs(
    c: &Config,
    meta: &berth_meta::MetadataStore,
    blobs: &Arc<dyn berth_storage::BlobStore>,
    node_id: &str,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use berth_registry::jobs::{AUDIT_PURGE, UPLOAD_PURGE};
    let clock: Arc<dyn berth_core::Clock> = Arc::new(berth_core::SystemClock);
    let scheduler = berth_jobs::Scheduler::new(meta.clone(), clock.clone(), Duration::from_secs(1));
    let schedules = [
        (
            "upload-purge",
            UPLOAD_PURGE,
            c.uploads.purge_after_hours > 0,
            serde_json::json!({"max_age_hours": c.uploads.purge_after_hours}),
            format!("@every {}m", c.uploads.purge_interval_minutes),
        ),
        (
            "audit-purge",
            AUDIT_PURGE,
            c.audit.retention_hours > 0,
            serde_json::json!({"retention_hours": c.audit.retention_hours}),
            c.audit.purge_schedule.clone(),
        ),
    ];
    for (name, kind, enabled, params, timing) in schedules {
        if enabled {
            scheduler
                .ensure(name, kind, &params, &timing)
                .await
                .with_context(|| format!("cannot set the {name} schedule ({timing})"))?;
        } else {
            meta.delete_schedule(name)
                .await
                .with_context(|| format!("cannot remove the {name} schedule"))?;
        }
    }
    let forwarder = c.audit.syslog.clone().map(|endpoint| {
        berth_jobs::SyslogForwarder::new(
            meta.clone(),
            clock.clone(),
            endpoint,
            c.node_name.clone(),
            node_id.to_owned(),
        )
    });
    let forwarder_task = forwarder.map(|f| tokio::spawn(f.run(stopped.clone())));
    let runner = Arc::new(berth_jobs::Runner::new(
        meta.clone(),
        clock,
        berth_jobs::standard_jobs(blobs.clone()),
        berth_jobs::RunnerSettings {
            node: node_id.to_owned(),
            host: c.node_name.clone(),
            workers: c.jobs.workers,
            lease: Duration::from_secs(c.jobs.lease_secs),
            ..berth_jobs::RunnerSettings::default()
        },
    ));
    let scheduler_task = tokio::spawn(scheduler.run(stopped.clone()));
    Ok(tokio::spawn(async move {
        runner.run(stopped).await;
        let _ = scheduler_task.await;
        if let Some(t) = forwarder_task {
            let _ = t.await;
        }
    }))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down: finishing requests in flight");
}
