//! `berth`: a container image registry in one binary.

mod config;
mod jobs_cli;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::Config;

/// Berth, a highly available container image registry.
///
/// With no configuration at all, `berth serve` runs on embedded defaults: SQLite metadata and
/// blobs under ./berth-data, listening on 127.0.0.1:5000.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    /// TOML configuration file; environment variables (BERTH_*) override it.
    #[arg(long, short, global = true, env = "BERTH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve,
    /// Apply database migrations and exit (serve also does this at start-up).
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Administrators: the first one, and emergencies.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Token signing keys, kept in the metadata database and shared by every node.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Background jobs: list, show (with the log), stop, run.
    Jobs {
        #[command(subcommand)]
        command: jobs_cli::JobsCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a system administrator. The password is read from standard input.
    Create {
        /// Login name.
        #[arg(long, default_value = "admin")]
        username: String,
    },
    /// Set a user's password (for instance a locked-out administrator's). Read from standard input.
    ResetPassword {
        /// Login name.
        #[arg(long)]
        username: String,
    },
    /// List the system administrators.
    List,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the keys: which signs, which verify, when each activates and retires.
    List,
    /// Add a new signing key. It verifies on every node at once (nodes reload keys every 30 s)
    /// and starts signing after the grace period; the old keys retire once their tokens expired.
    Rotate {
        /// Seconds before the new key signs; longer than the nodes' 30 s key refresh.
        #[arg(long, default_value_t = 90)]
        grace_secs: u64,
        /// Use this key (PKCS#8 PEM, ECDSA P-256) instead of generating one.
        #[arg(long, requires = "cert_file")]
        key_file: Option<PathBuf>,
        /// The certificate of --key-file.
        #[arg(long, requires = "key_file")]
        cert_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration (file and environment) and print the effective settings.
    Check,
}

/// Keeps freed heap memory for reuse instead of handing it back to the kernel at once.
///
/// glibc serves allocations above a sliding threshold (128 KiB at first) with fresh `mmap`s
/// and trims the heap top past another, so the network buffers of a streamed blob (hundreds
/// of KiB each, freed as soon as they are written) were faulted in anew about 45,000 times per
/// pushed GiB. Each fault zeroes a page, and on a VM that reports free memory to its host it
/// also faults the page in on the host. Fixed thresholds keep those buffers in the heap:
/// a few thousand faults per GiB, and the heap still gives back more than 64 MiB left free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("berth: invalid configuration:");
            for e in &errors.0 {
                eprintln!("  - {e}");
            }
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Config {
        command: ConfigCommand::Check,
    } = cli.command
    {
        print_effective(&config);
        let problems = runtime.block_on(unreachable_services(&config));
        if problems.is_empty() {
            return ExitCode::SUCCESS;
        }
        eprintln!("berth: the configuration is valid, but:");
        for p in &problems {
            eprintln!("  - {p}");
        }
        return ExitCode::FAILURE;
    }
    init_logging(&config);
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(&config).await.map(drop),
            Command::Keys { command } => keys(&config, command).await,
            Command::Admin { command } => admin(&config, command).await,
            Command::Jobs { command } => match migrate(&config).await {
                Ok(meta) => jobs_cli::run(meta, command).await,
                Err(e) => Err(e),
            },
            Command::Config { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_effective(c: &Config) {
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
async fn unreachable_services(c: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let url = c.database_url();
    if !url.starts_with("sqlite:") {
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
    if c.storage.driver == "s3" {
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

fn init_logging(c: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&c.log.level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if c.log.format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

async fn migrate(c: &Config) -> anyhow::Result<berth_meta::MetadataStore> {
    std::fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("cannot create data_dir {}", c.data_dir.display()))?;
    let url = c.database_url();
    let meta = berth_meta::MetadataStore::connect(&url, &c.pool_settings())
        .await
        .with_context(|| {
            format!(
                "cannot open the metadata database (database.url = {:?})",
                c.database_url_redacted()
            )
        })?;
    meta.migrate()
        .await
        .context("cannot migrate the metadata database")?;
    tracing::info!("metadata database migrated");
    Ok(meta)
}

async fn serve(c: Config) -> anyhow::Result<()> {
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
        project_creation: c.project_creation(),
    };
    let registry = Arc::new(berth_registry::Registry::new(
        meta.clone(),
        Arc::new(berth_core::SystemClock),
        berth_registry::AuditSettings {
            pulls: c.audit.pulls,
            forget_deleted_users: c.audit.forget_deleted_users,
        },
    ));
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
        meta,
        blobs,
        limits: c.limits(),
        auth,
        trusted_proxies: c.trusted_proxies(),
        not_ready,
    });
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
    let service =
        berth_api::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
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

fn auth_settings(c: &Config) -> berth_auth::AuthSettings {
    berth_auth::AuthSettings {
        issuer: c.auth.issuer.clone(),
        service: c.auth.service.clone(),
        token_lifetime: Duration::from_secs(c.auth.token_lifetime_minutes * 60),
        refresh_lifetime: Duration::from_secs(c.auth.refresh_token_days * 86_400),
        ldap: c.ldap.settings(),
        session_idle: Duration::from_secs(c.auth.session_timeout_minutes * 60),
    }
}

fn read_key(key: &PathBuf, cert: &PathBuf) -> anyhow::Result<berth_auth::SigningKey> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    berth_auth::SigningKey::from_pem(&read(key)?, &read(cert)?)
        .with_context(|| format!("{} and {}", key.display(), cert.display()))
}

/// Reads a password from standard input (the first line, without its line ending).
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

async fn admin(c: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let meta = migrate(c).await?;
    match command {
        AdminCommand::Create { username } => {
            anyhow::ensure!(
                !username.is_empty() && username.len() <= berth_auth::service::MAX_USERNAME_LEN,
                "a user name has 1 to {} characters",
                berth_auth::service::MAX_USERNAME_LEN
            );
            let hash = berth_auth::password::hash(&read_password()?)?;
            match meta.create_user(&username, Some(&hash), true).await? {
                Some(_) => println!("created administrator {username}"),
                None => anyhow::bail!(
                    "user {username} exists already; use `berth admin reset-password`"
                ),
            }
        }
        AdminCommand::ResetPassword { username } => {
            let Some(user) = meta.user(&username).await? else {
                anyhow::bail!("no user {username}");
            };
            let hash = berth_auth::password::hash(&read_password()?)?;
            anyhow::ensure!(
                meta.set_password(user.id, &hash).await?,
                "no user {username}"
            );
            println!("password of {username} changed");
        }
        AdminCommand::List => {
            for name in meta.admins().await? {
                println!("{name}");
            }
        }
    }
    Ok(())
}

async fn keys(c: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let meta = migrate(c).await?;
    match command {
        KeysCommand::List => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let keys = meta.signing_keys(now).await?;
            let signing = berth_auth::signing_key_index(&keys, now).map(|i| keys[i].kid.clone());
            println!(
                "{:<60} {:<8} {:>12} {:>12}",
                "kid", "role", "activates", "retires"
            );
            for k in &keys {
                let role = if Some(&k.kid) == signing.as_ref() {
                    "signs"
                } else if k.activates_at > now {
                    "pending"
                } else {
                    "verifies"
                };
                let retires = k.retires_at.map_or("-".to_owned(), |t| t.to_string());
                println!(
                    "{:<60} {:<8} {:>12} {:>12}",
                    k.kid, role, k.activates_at, retires
                );
            }
        }
        KeysCommand::Rotate {
            grace_secs,
            key_file,
            cert_file,
        } => {
            let key = match (key_file, cert_file) {
                (Some(k), Some(c)) => Some(read_key(&k, &c)?),
                _ => None,
            };
            let kid = berth_auth::rotate_signing_key(
                &meta,
                &auth_settings(c),
                key,
                Duration::from_secs(grace_secs),
            )
            .await?;
            println!(
                "new signing key {kid}: verifies now, signs in {grace_secs} s; older keys retire after their tokens expire"
            );
        }
    }
    Ok(())
}

/// Creates the first administrator when there are no users: with `BERTH_ADMIN_PASSWORD`, or
/// with a generated password written to `<data_dir>/initial-admin-password` (owner-only), so
/// that a fresh `berth serve` needs no set-up. The password itself is never logged. When
/// several nodes start at once, only the one whose account creation wins writes the file.
async fn bootstrap_admin(c: &Config, service: &berth_auth::AuthService) -> anyhow::Result<()> {
    let given = c.auth.admin_password.clone().filter(|p| !p.is_empty());
    let password = given
        .clone()
        .unwrap_or_else(berth_auth::password::generate_secret);
    let created = service
        .bootstrap_admin(&c.auth.admin_username, &password)
        .await
        .context("cannot create the administrator")?;
    if !created {
        return Ok(());
    }
    let user = &c.auth.admin_username;
    if given.is_some() {
        tracing::info!(%user, "created the first administrator (password from BERTH_ADMIN_PASSWORD)");
        return Ok(());
    }
    let path = c.data_dir.join("initial-admin-password");
    match write_private(&path, &format!("{password}\n")) {
        Ok(()) => tracing::warn!(
            %user,
            file = %path.display(),
            "created the first administrator with a generated password, written to this file; \
             log in, change it (PUT /api/v2.0/users/{{id}}/password) and delete the file"
        ),
        Err(e) => tracing::error!(
            %user,
            error = %e,
            "created the first administrator but could not write its generated password to {}; \
             set one with `berth admin reset-password {user}`",
            path.display()
        ),
    }
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// The blob store the configuration names. An S3 bucket that cannot be reached is logged and
/// leaves the node unready (`/readyz`) until it can; it does not stop the node.
async fn open_blob_store(
    c: &Config,
    meta: &berth_meta::MetadataStore,
    node: &str,
) -> anyhow::Result<Arc<dyn berth_storage::BlobStore>> {
    if c.storage.driver == "s3" {
        let locks = Arc::new(LeaseLocks {
            meta: meta.clone(),
            node: node.to_owned(),
        });
        let store = berth_storage::S3Store::new(&c.s3_settings(), locks)
            .context("cannot use the S3 blob store (storage.s3)")?;
        if let Err(e) = berth_storage::BlobStore::check(&store).await {
            tracing::error!(error = %e, "the S3 blob store cannot be used yet (storage.s3); not ready until it can");
        }
        return Ok(Arc::new(store));
    }
    let path = c.storage_path();
    let store = berth_storage::FilesystemStore::open(&path, c.storage.fsync)
        .with_context(|| {
            format!(
                "cannot open blob storage at {} (storage.path)",
                path.display()
            )
        })?
        .with_direct_writes(c.storage.direct_writes);
    Ok(Arc::new(store))
}

/// Upload leases for the S3 store, kept in the metadata database so that every node sees them.
struct LeaseLocks {
    meta: berth_meta::MetadataStore,
    node: String,
}

#[async_trait::async_trait]
impl berth_storage::UploadLocks for LeaseLocks {
    async fn lock(
        &self,
        id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, berth_storage::StorageError> {
        self.meta
            .acquire_lease(
                &format!("upload:{id}"),
                &format!("{}/{holder}", self.node),
                ttl,
            )
            .await
            .map_err(|e| berth_storage::StorageError::Backend {
                context: "taking an upload lease",
                location: "metadata database".into(),
                message: e.to_string(),
            })
    }

    async fn unlock(&self, id: &str, holder: &str) {
        let _ = self
            .meta
            .release_lease(&format!("upload:{id}"), &format!("{}/{holder}", self.node))
            .await;
    }
}

/// Connects to Redis in the background, retrying until it succeeds, and hands the connection
/// to what shares state through it: the lookup cache, and the login limits and sessions. A
/// node starts (and serves pushes and pulls) while Redis is down; meanwhile nothing is cached
/// and failed logins and sessions are kept per node.
fn connect_redis(
    url: &str,
    meta: &berth_meta::MetadataStore,
    auth: Option<&Arc<berth_auth::AuthService>>,
) -> anyhow::Result<()> {
    let spec = berth_shared::RedisSpec::parse(url)?;
    if let Some(service) = auth {
        service.expect_shared_limits();
    }
    let (meta, auth) = (meta.clone(), auth.cloned());
    tokio::spawn(async move {
        let mut logged = false;
        loop {
            match berth_shared::Shared::connect(&spec).await {
                Ok(shared) => {
                    tracing::info!(redis = %shared.describe(), "lookup cache, sessions and failed-login limits shared through redis");
                    meta.share_cache(shared.clone());
                    if let Some(service) = &auth {
                        service.share_state(shared);
                    }
                    return;
                }
                Err(error) => {
                    if !logged {
                        tracing::warn!(%error, "redis unreachable: retrying every 5 s; meanwhile no lookup cache, and sessions and failed logins per node");
                        logged = true;
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
    Ok(())
}

/// Gives the metadata store its lookup cache (see `Config::cache_place`).
fn with_lookup_cache(c: &Config, meta: berth_meta::MetadataStore) -> berth_meta::MetadataStore {
    let ttl = Duration::from_secs(c.cache.ttl_secs);
    let place = c.cache_place();
    tracing::info!(%place, ttl_secs = c.cache.ttl_secs, "lookup cache");
    match place {
        config::CachePlace::Redis => meta.cache_in_redis(ttl),
        config::CachePlace::Process => meta.cache_in_process(ttl),
        config::CachePlace::Off | config::CachePlace::Unshared => meta,
    }
}

/// Starts the token service: keys (shared through the database), the first administrator, and
/// a periodic key refresh. Also returns why this node must not become ready, if it must not.
async fn start_auth(
    c: &Config,
    meta: &berth_meta::MetadataStore,
    bound: std::net::SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(berth_api::HttpAuth, Option<String>)> {
    let configured = match (&c.auth.signing_key_file, &c.auth.signing_cert_file) {
        (Some(key), Some(cert)) => Some(read_key(key, cert).context("auth.signing_key_file")?),
        _ => None,
    };
    let (service, problem) =
        berth_auth::AuthService::start(meta.clone(), auth_settings(c), configured)
            .await
            .context("cannot load the token signing keys")?;
    if let Some(problem) = &problem {
        tracing::error!("not ready: {problem}");
    }
    bootstrap_admin(c, &service).await?;
    let service = Arc::new(service);
    let refreshed = service.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = refreshed.reload_keys().await {
                tracing::warn!(error = %e, "could not refresh the signing keys");
            }
        }
    });
    tracing::info!(kid = %service.signing_kid(), "token service ready");
    let realm = format!("{}/service/token", c.external_url(bound));
    Ok((berth_api::HttpAuth { service, realm }, problem))
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
