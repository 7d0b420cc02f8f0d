//! Signing in and out: password checks with their audit entries, and browser sessions.

use berth_auth::{AuthService, Login, Principal};

use crate::{Error, EventKind, Initiator, Registry, Who};

impl From<&Principal> for Who {
    fn from(principal: &Principal) -> Self {
        match principal {
            Principal::Anonymous => Who::Anonymous,
            Principal::User { id, name, .. } => Who::User {
                id: Some(*id),
                name: name.clone(),
            },
            Principal::Robot { name, .. } => Who::Robot { name: name.clone() },
        }
    }
}

/// A browser session just opened.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    /// Who signed in.
    pub principal: Principal,
    /// The session's id (the `sid` cookie).
    pub id: String,
    /// The session's CSRF token, which unsafe requests must echo.
    pub csrf: String,
}

impl Registry {
    /// Records a login: accepted (`principal`), or refused with the name tried and the
    /// client's address. Throttled attempts are refused before any check and not recorded
    /// one by one (they would let a client write rows at will). A database that cannot take
    /// the entry is logged; the login's answer does not change.
    pub async fn record_login(&self, tried: &str, principal: Option<&Principal>, client: &str) {
        let kind = EventKind::Login;
        let recorded = match principal {
            Some(p) => {
                let initiator = Initiator {
                    who: p.into(),
                    address: client.to_owned(),
                };
                self.record(&initiator, None, kind).await
            }
            None => {
                let initiator = Initiator {
                    who: Who::User {
                        id: None,
                        name: tried.to_owned(),
                    },
                    address: client.to_owned(),
                };
                self.refused(&initiator, None, kind, "invalid username or password")
                    .await
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(%error, "could not record a login in the audit log");
        }
    }

    /// Checks a user's password and opens a browser session (shared by every node), recording
    /// the login either way. Robot accounts cannot open sessions.
    pub async fn sign_in(
        &self,
        auth: &AuthService,
        user: &str,
        password: &str,
        client: &str,
    ) -> Result<OpenedSession, Error> {
        let principal = match auth.authenticate(user, password, client).await? {
            Login::Accepted(p) => p,
            Login::Rejected => {
                self.record_login(user, None, client).await;
                return Err(Error::Unauthorized("invalid username or password".into()));
            }
            Login::Throttled(wait) => return Err(Error::Throttled(wait)),
        };
        let Some((id, csrf)) = auth.open_session(&principal).await? else {
            return Err(Error::Unauthorized(
                "robot accounts cannot open sessions: use their credentials with Basic authentication"
                    .into(),
            ));
        };
        self.record_login(user, Some(&principal), client).await;
        tracing::info!(user = %principal.name(), "session opened");
        Ok(OpenedSession {
            principal,
            id,
            csrf,
        })
    }

    /// Ends session `id` on every node, recording the logout of whoever held it.
    pub async fn sign_out(&self, auth: &AuthService, id: &str, client: &str) {
        if let Ok(Some((principal, _))) = auth.session(id).await {
            let initiator = Initiator {
                who: (&principal).into(),
                address: client.to_owned(),
            };
            if let Err(error) = self.record(&initiator, None, EventKind::Logout).await {
                tracing::warn!(%error, "could not record a logout in the audit log");
            }
        }
        auth.close_session(id).await;
    }
}
