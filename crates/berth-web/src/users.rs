//! Administration of user accounts (system administrators): list and search, create, make or
//! unmake an administrator, disable or enable, set a new password, delete. An administrator's
//! own row offers none of the changes the service refuses on oneself.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_api::management::{Actor, ApiError};
use berth_auth::Principal;
use berth_meta::{User, UserProfile};
use berth_registry::NewUser;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Web;
use crate::i18n::iso;
use crate::pages::{
    ListQuery, PageError, checked_form, error_page, page_of, pages, render, search_query,
    see_other, urlencode,
};
use crate::session::Viewer;

#[derive(Serialize)]
struct UserRow {
    id: i64,
    username: String,
    realname: String,
    email: String,
    admin: bool,
    disabled: bool,
    directory: bool,
    me: bool,
    created: String,
    created_iso: String,
}

/// What the page shows besides the list: a refusal (of the new-user form or of a change), or
/// a change made.
#[derive(Default)]
struct Outcome {
    status: Option<StatusCode>,
    new_username: String,
    new_error: Option<String>,
    error: Option<String>,
    saved: bool,
}

/// The viewer, who must be a system administrator.
fn require_admin(viewer: &Viewer) -> Result<(), PageError> {
    viewer.actor.require_admin().map_err(PageError::from)
}

/// The viewer's own user id, if a user.
fn own_id(viewer: &Viewer) -> Option<i64> {
    match &viewer.actor {
        Actor::As(Principal::User { id, .. }) => Some(*id),
        _ => None,
    }
}

#[derive(Deserialize, Default)]
pub struct UsersQuery {
    q: Option<String>,
    page: Option<u64>,
    saved: Option<String>,
}

/// `GET /admin/users`.
pub async fn list(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Query(q): Query<UsersQuery>,
) -> Response {
    let outcome = Outcome {
        saved: q.saved.is_some(),
        ..Outcome::default()
    };
    let query = ListQuery {
        q: q.q,
        page: q.page,
    };
    page(&web, &viewer, query, outcome)
        .await
        .unwrap_or_else(|e| error_page(&web, &viewer, e))
}

async fn page(
    web: &Web,
    viewer: &Viewer,
    q: ListQuery,
    outcome: Outcome,
) -> Result<Response, PageError> {
    require_admin(viewer)?;
    let query = q.q.unwrap_or_default().trim().to_owned();
    let (page, window) = page_of(q.page);
    let found = web
        .app
        .registry
        .meta()
        .list_users(None, (!query.is_empty()).then_some(query.as_str()), window)
        .await?;
    let me = own_id(viewer);
    let rows: Vec<UserRow> = found
        .items
        .iter()
        .map(|u| UserRow {
            id: u.id,
            username: u.username.clone(),
            realname: u.realname.clone().unwrap_or_default(),
            email: u.email.clone().unwrap_or_default(),
            admin: u.sysadmin,
            disabled: u.disabled,
            directory: u.password_hash.is_none(),
            me: me == Some(u.id),
            created: viewer.locale.datetime(u.created_at),
            created_iso: iso(u.created_at),
        })
        .collect();
    let page_query = search_query(&query);
    Ok(render(
        web,
        viewer,
        outcome.status.unwrap_or(StatusCode::OK),
        "users.html",
        context! {
            admin_tab => "users", users => rows, total => found.total, query => query,
            page => page, pages => pages(found.total), page_query => page_query,
            new_username => outcome.new_username, new_error => outcome.new_error,
            error => outcome.error, saved => outcome.saved,
        },
    ))
}

#[derive(Deserialize)]
struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    email: Option<String>,
    realname: Option<String>,
    admin: Option<String>,
}

fn trimmed(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `POST /admin/users`: creates a local account (optionally an administrator); a refused name
/// or password is shown next to the form, in the viewer's language.
pub async fn create(State(web): State<Arc<Web>>, viewer: Viewer, body: Bytes) -> Response {
    let outcome = async {
        let f: NewUserForm = checked_form(&viewer, &body)?;
        require_admin(&viewer)?;
        let username = f.username.trim().to_owned();
        let text = |key: &str| web.catalogues.text(viewer.locale, key, &[]);
        let refuse = |status: StatusCode, key: &str| Outcome {
            status: Some(status),
            new_username: username.clone(),
            new_error: Some(text(key)),
            ..Outcome::default()
        };
        let refused = if berth_registry::check_username(&username).is_err() {
            Some(refuse(StatusCode::BAD_REQUEST, "users-name-invalid"))
        } else if berth_auth::password::check_strength(&f.password).is_err() {
            Some(refuse(StatusCode::BAD_REQUEST, "account-password-weak"))
        } else {
            None
        };
        if let Some(refused) = refused {
            return page(&web, &viewer, ListQuery::default(), refused).await;
        }
        let registry = &web.app.registry;
        let initiator = viewer.initiator();
        let new = NewUser {
            username: username.clone(),
            password: f.password,
            profile: UserProfile {
                email: trimmed(f.email),
                realname: trimmed(f.realname),
                comment: None,
            },
        };
        match registry.create_user(&initiator, new).await {
            Ok(id) => {
                if f.admin.is_some() {
                    let user = user(&web, id).await?;
                    registry
                        .set_sysadmin(&initiator, &user, true)
                        .await
                        .map_err(ApiError::from)?;
                }
                Ok(see_other(
                    &format!("/admin/users?saved=1&q={}", urlencode(&username)),
                    viewer.headers(),
                ))
            }
            Err(berth_registry::Error::Conflict(_)) => {
                page(
                    &web,
                    &viewer,
                    ListQuery::default(),
                    refuse(StatusCode::CONFLICT, "users-exists"),
                )
                .await
            }
            Err(e) => Err(ApiError::from(e).into()),
        }
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

async fn user(web: &Web, id: i64) -> Result<User, PageError> {
    web.app
        .registry
        .meta()
        .user_by_id(id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "error-not-found"))
}

#[derive(Deserialize)]
struct ActForm {
    password: Option<String>,
}

/// `POST /admin/users/{id}/{action}`: `admin`, `unadmin`, `disable`, `enable`, `password`
/// (with `password`) or `delete`. A refusal (one's own account, a weak password, a directory
/// user's password) is shown above the list.
pub async fn act(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let outcome = async {
        let f: ActForm = checked_form(&viewer, &body)?;
        require_admin(&viewer)?;
        let id: i64 = id
            .parse()
            .map_err(|_| PageError::new(StatusCode::NOT_FOUND, "error-not-found"))?;
        let user = user(&web, id).await?;
        let registry = &web.app.registry;
        let initiator = viewer.initiator();
        let done = match action.as_str() {
            "admin" | "unadmin" => {
                registry
                    .set_sysadmin(&initiator, &user, action == "admin")
                    .await
            }
            "disable" | "enable" => {
                registry
                    .set_user_disabled(&initiator, &user, action == "disable")
                    .await
            }
            "password" => {
                let password = f.password.unwrap_or_default();
                if user.password_hash.is_none() {
                    return refused(&web, &viewer, &user, "users-directory-user").await;
                }
                if berth_auth::password::check_strength(&password).is_err() {
                    return refused(&web, &viewer, &user, "account-password-weak").await;
                }
                registry
                    .set_password(&initiator, &user, password, None)
                    .await
            }
            "delete" => registry.remove_user(&initiator, &user).await,
            _ => return Err(PageError::new(StatusCode::NOT_FOUND, "error-not-found")),
        };
        match done {
            Ok(()) => Ok(see_other(
                &format!("/admin/users?saved=1&q={}", urlencode(&user.username)),
                viewer.headers(),
            )),
            Err(berth_registry::Error::Forbidden(_)) if own_id(&viewer) == Some(user.id) => {
                refused(&web, &viewer, &user, "users-not-self").await
            }
            Err(e) => Err(ApiError::from(e).into()),
        }
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// The list (searched for `user`) with the reason `key` a change to `user` was refused.
async fn refused(
    web: &Web,
    viewer: &Viewer,
    user: &User,
    key: &str,
) -> Result<Response, PageError> {
    let name = fluent_bundle::FluentValue::from(user.username.clone());
    let outcome = Outcome {
        status: Some(StatusCode::BAD_REQUEST),
        error: Some(web.catalogues.text(viewer.locale, key, &[("user", name)])),
        ..Outcome::default()
    };
    let query = ListQuery {
        q: Some(user.username.clone()),
        page: None,
    };
    page(web, viewer, query, outcome).await
}
