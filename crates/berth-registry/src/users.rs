//! Local user accounts: names, passwords and flags, with their rules.

use berth_auth::{AuthService, PasswordChange, ROBOT_PREFIX};
use berth_meta::{User, UserProfile};

use crate::error::hash_secret;
use crate::{Error, EventKind, Initiator, Registry, Who};

/// A new local account.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Its password, checked against the password policy.
    pub password: String,
    /// E-mail, full name and comment.
    pub profile: UserProfile,
}

/// Checks a user name: what Basic authentication and robot names leave free.
pub fn check_username(name: &str) -> Result<(), Error> {
    let max = berth_auth::service::MAX_USERNAME_LEN;
    if name.is_empty() || name.len() > max {
        return Err(Error::Invalid(format!("a username has 1 to {max} bytes")));
    }
    if name.starts_with(ROBOT_PREFIX) {
        return Err(Error::Invalid(format!(
            "usernames starting with {ROBOT_PREFIX} are reserved for robot accounts"
        )));
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_control() || c.is_whitespace() || matches!(c, ':' | ',' | '"' | '~' | '#' | '%' | '$')
    }) {
        return Err(Error::Invalid(format!("a username cannot contain {c:?}")));
    }
    Ok(())
}

/// The hash of a new password that meets the password policy.
async fn new_password_hash(password: String) -> Result<String, Error> {
    berth_auth::password::check_strength(&password).map_err(Error::Invalid)?;
    hash_secret(password).await
}

/// Refuses an administrator's change to their own account (flags, deletion): it would let
/// the last administrator lock everyone out.
fn not_self(initiator: &Initiator, user: &User, what: &str) -> Result<(), Error> {
    match &initiator.who {
        Who::User { id: Some(me), .. } if *me == user.id => Err(Error::Forbidden(format!(
            "you may not {what} your own account; ask another administrator"
        ))),
        _ => Ok(()),
    }
}

impl Registry {
    /// Creates a local account; returns its id.
    pub async fn create_user(&self, initiator: &Initiator, new: NewUser) -> Result<i64, Error> {
        check_username(&new.username)?;
        let hash = new_password_hash(new.password).await?;
        let kind = EventKind::UserCreated {
            name: new.username.clone(),
        };
        let (name, hash, profile) = (new.username.as_str(), hash.as_str(), &new.profile);
        let id = self
            .change(initiator, None, kind, |m| async move {
                m.create_user_with_profile(name, Some(hash), false, profile)
                    .await
            })
            .await?;
        id.ok_or_else(|| Error::Conflict(format!("user {} exists already", new.username)))
    }

    /// Changes a user's e-mail, full name and comment.
    pub async fn set_user_profile(
        &self,
        initiator: &Initiator,
        user: &User,
        profile: UserProfile,
    ) -> Result<(), Error> {
        let id = user.id;
        self.change_user(initiator, user, "profile", |m| async move {
            m.set_user_profile(id, &profile).await
        })
        .await
    }

    /// Sets a local user's password. With `confirm` (the user changing their own), the current
    /// password must be given and right (failures count towards the login limits and are
    /// recorded); the new one must differ from it. Credential caches and refresh tokens issued
    /// before stop working at once.
    pub async fn set_password(
        &self,
        initiator: &Initiator,
        user: &User,
        new: String,
        confirm: Option<(&AuthService, &str)>,
    ) -> Result<(), Error> {
        if user.password_hash.is_none() {
            return Err(Error::Invalid(format!(
                "{} is a directory (LDAP) user: change the password in the directory",
                user.username
            )));
        }
        if let Some((auth, old)) = confirm {
            match auth
                .confirm_password_change(user, old, &new, &initiator.address)
                .await?
            {
                PasswordChange::Confirmed => {}
                PasswordChange::WrongPassword => {
                    let kind = EventKind::UserUpdated {
                        name: user.username.clone(),
                        what: "password".into(),
                    };
                    self.refused(initiator, None, kind, "old_password is wrong")
                        .await?;
                    return Err(Error::Forbidden("old_password is wrong".into()));
                }
                PasswordChange::Unchanged => {
                    return Err(Error::Invalid(
                        "the new password must differ from the old one".into(),
                    ));
                }
                PasswordChange::Throttled(wait) => return Err(Error::Throttled(wait)),
            }
        }
        let hash = new_password_hash(new).await?;
        let id = user.id;
        self.change_user(initiator, user, "password", |m| async move {
            m.set_password(id, &hash).await
        })
        .await?;
        tracing::info!(user = %user.username, "password changed");
        Ok(())
    }

    /// Grants or revokes system administration (not to oneself).
    pub async fn set_sysadmin(
        &self,
        initiator: &Initiator,
        user: &User,
        sysadmin: bool,
    ) -> Result<(), Error> {
        not_self(initiator, user, "change the administrator flag of")?;
        let (id, what) = (user.id, format!("sysadmin {sysadmin}"));
        self.change_user(initiator, user, &what, |m| async move {
            m.set_sysadmin(id, sysadmin).await
        })
        .await?;
        tracing::info!(user = %user.username, sysadmin, "administrator flag changed");
        Ok(())
    }

    /// Disables or enables an account (not one's own). A disabled user cannot log in; tokens
    /// it holds expire within their lifetime.
    pub async fn set_user_disabled(
        &self,
        initiator: &Initiator,
        user: &User,
        disabled: bool,
    ) -> Result<(), Error> {
        not_self(initiator, user, "disable")?;
        let (id, what) = (user.id, format!("disabled {disabled}"));
        self.change_user(initiator, user, &what, |m| async move {
            m.set_user_disabled(id, disabled).await
        })
        .await?;
        tracing::info!(user = %user.username, disabled, "user disabled flag changed");
        Ok(())
    }

    /// Deletes an account (not one's own) and its memberships; see
    /// [`forget_deleted_users`](crate::AuditSettings::forget_deleted_users).
    pub async fn remove_user(&self, initiator: &Initiator, user: &User) -> Result<(), Error> {
        not_self(initiator, user, "delete")?;
        if !self.delete_user(initiator, user.id, &user.username).await? {
            return Err(Error::NotFound(format!("user {} not found", user.id)));
        }
        tracing::info!(user = %user.username, "deleted a user");
        Ok(())
    }

    /// Changes a user through `write`, recorded as an update of `what`.
    async fn change_user<F, Fut>(
        &self,
        initiator: &Initiator,
        user: &User,
        what: &str,
        write: F,
    ) -> Result<(), Error>
    where
        F: FnOnce(berth_meta::MetadataStore) -> Fut,
        Fut: std::future::Future<Output = Result<bool, berth_meta::MetaError>>,
    {
        let kind = EventKind::UserUpdated {
            name: user.username.clone(),
            what: what.to_owned(),
        };
        if self.change(initiator, None, kind, write).await? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("user {} not found", user.id)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for good in ["alice", "a.b-c_d", "Ünïcode", "x@example.com"] {
            assert!(check_username(good).is_ok(), "{good}");
        }
        for bad in [
            "", "robot$x", "a b", "a:b", "a,b", "a\"b", "a~b", "a#b", "a%b", "a$b", "a\tb",
        ] {
            assert!(
                matches!(check_username(bad), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
        assert!(check_username(&"a".repeat(berth_auth::service::MAX_USERNAME_LEN + 1)).is_err());
    }
}
