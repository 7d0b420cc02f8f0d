//! `berth admin` (administrators: the first one, and emergencies) and `berth keys` (the token
//! signing keys).

use std::time::Duration;

use anyhow::Context;

use crate::auth::{auth_settings, read_key};
use crate::cli::{AdminCommand, KeysCommand};
use crate::config::Config;
use crate::stores::migrate;

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

pub(crate) async fn admin(c: &Config, command: AdminCommand) -> anyhow::Result<()> {
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

pub(crate) async fn keys(c: &Config, command: KeysCommand) -> anyhow::Result<()> {
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
            // Older keys retire once the longest-lived token they may have signed expires:
            // under the token lifetime as it applies now (a setting), or as configured.
            let stored = meta.stored_settings().await?;
            let now = c.settings_base().with_stored(&stored);
            let mut settings = auth_settings(c);
            settings.token_lifetime = settings.token_lifetime.max(now.token_lifetime());
            let kid = berth_auth::rotate_signing_key(
                &meta,
                &settings,
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
