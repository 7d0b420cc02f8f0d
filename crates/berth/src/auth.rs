//! The token service at start-up: its settings, the signing keys (configured or shared through
//! the database), the first administrator, and the periodic key refresh.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;

pub(crate) fn auth_settings(c: &Config) -> berth_auth::AuthSettings {
    berth_auth::AuthSettings {
        issuer: c.auth.issuer.clone(),
        service: c.auth.service.clone(),
        token_lifetime: Duration::from_secs(c.auth.token_lifetime_minutes * 60),
        refresh_lifetime: Duration::from_secs(c.auth.refresh_token_days * 86_400),
        ldap: c.ldap.settings(),
        session_idle: Duration::from_secs(c.auth.session_timeout_minutes * 60),
    }
}

pub(crate) fn read_key(key: &PathBuf, cert: &PathBuf) -> anyhow::Result<berth_auth::SigningKey> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    berth_auth::SigningKey::from_pem(&read(key)?, &read(cert)?)
        .with_context(|| format!("{} and {}", key.display(), cert.display()))
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

/// Starts the token service: keys (shared through the database), the first administrator, and
/// a periodic key refresh. Also returns why this node must not become ready, if it must not.
pub(crate) async fn start_auth(
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
