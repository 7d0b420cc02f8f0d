//! The signed-in user's own account: the profile, and the password (the current one
//! confirmed, with the login limits; directory users change theirs in the directory).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_api::management::{Actor, ApiError};
use berth_auth::Principal;
use berth_meta::{User, UserProfile};
use minijinja::context;
use serde::Deserialize;

use crate::Web;
use crate::pages::{PageError, SavedQuery, checked_form, error_page, render, see_other};
use crate::session::Viewer;

/// The viewer's own account; anyone not signed in as a user is sent to sign in.
async fn own(web: &Web, viewer: &Viewer) -> Result<User, PageError> {
    let Actor::As(Principal::User { id, .. }) = &viewer.actor else {
        return Err(ApiError::unauthorized("sign in").into());
    };
    web.app
        .registry
        .meta()
        .user_by_id(*id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("sign in").into())
}

/// `GET /account`.
pub async fn show(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Query(q): Query<SavedQuery>,
) -> Response {
    let outcome = async {
        let user = own(&web, &viewer).await?;
        Ok(page(&web, &viewer, &user, q.saved.is_some(), None))
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

fn page(
    web: &Web,
    viewer: &Viewer,
    user: &User,
    saved: bool,
    refused: Option<(StatusCode, String)>,
) -> Response {
    let (status, password_error) = refused.map_or((StatusCode::OK, None), |(s, m)| (s, Some(m)));
    render(
        web,
        viewer,
        status,
        "account.html",
        context! {
            profile => context! {
                email => user.email.clone().unwrap_or_default(),
                realname => user.realname.clone().unwrap_or_default(),
                comment => user.comment.clone().unwrap_or_default(),
            },
            directory_user => user.password_hash.is_none(),
            saved => saved, password_error => password_error,
        },
    )
}

#[derive(Deserialize)]
struct AccountForm {
    op: Option<String>,
    email: Option<String>,
    realname: Option<String>,
    comment: Option<String>,
    old_password: Option<String>,
    new_password: Option<String>,
}

/// `POST /account`: `op=profile` or `op=password`.
pub async fn change(State(web): State<Arc<Web>>, viewer: Viewer, body: Bytes) -> Response {
    let outcome = async {
        let f: AccountForm = checked_form(&viewer, &body)?;
        let user = own(&web, &viewer).await?;
        let registry = &web.app.registry;
        let initiator = viewer.initiator();
        match f.op.as_deref() {
            Some("profile") => {
                let keep = |v: Option<String>| v.map(|s| s.trim().to_owned());
                let profile = UserProfile {
                    email: keep(f.email),
                    realname: keep(f.realname),
                    comment: keep(f.comment),
                };
                registry
                    .set_user_profile(&initiator, &user, profile)
                    .await
                    .map_err(ApiError::from)?;
                Ok(see_other("/account?saved=1", viewer.headers()))
            }
            Some("password") => {
                let Some(auth) = &web.app.auth else {
                    return Err(PageError::new(StatusCode::BAD_REQUEST, "error-forbidden"));
                };
                let old = f.old_password.unwrap_or_default();
                let new = f.new_password.unwrap_or_default();
                let changed = registry
                    .set_password(&initiator, &user, new, Some((&auth.service, &old)))
                    .await;
                let text = |key: &str| web.catalogues.text(viewer.locale, key, &[]);
                let refused = match changed {
                    Ok(()) => return Ok(see_other("/account?saved=1", viewer.headers())),
                    Err(berth_registry::Error::Invalid(m)) if m.contains("differ") => {
                        (StatusCode::BAD_REQUEST, text("account-password-same"))
                    }
                    Err(berth_registry::Error::Invalid(_)) => {
                        (StatusCode::BAD_REQUEST, text("account-password-weak"))
                    }
                    Err(berth_registry::Error::Forbidden(_)) => {
                        (StatusCode::FORBIDDEN, text("account-password-wrong"))
                    }
                    Err(e) => return Err(ApiError::from(e).into()),
                };
                Ok(page(&web, &viewer, &user, false, Some(refused)))
            }
            _ => Err(PageError::new(StatusCode::BAD_REQUEST, "error-csrf")),
        }
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}
