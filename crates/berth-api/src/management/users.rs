//! `/users`: local accounts. Administrators list, create, change, disable and delete users and
//! grant system administration; every user reads and changes its own profile and password.

use axum::extract::{OriginalUri, Path, State};
use axum::response::{IntoResponse, Response};
use berth_auth::{PasswordChange, Principal, ROBOT_PREFIX};
use berth_meta::{User, UserProfile};
use berth_registry::EventKind;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Actor, ApiError, ClientAddress, Paging, Query, created, id_param, json_body, time};
use crate::AppState;

fn user_json(u: &User) -> Value {
    json!({
        "user_id": u.id,
        "username": u.username,
        "email": u.email.clone().unwrap_or_default(),
        "realname": u.realname.clone().unwrap_or_default(),
        "comment": u.comment.clone().unwrap_or_default(),
        "sysadmin_flag": u.sysadmin,
        "disabled": u.disabled,
        "directory_user": u.password_hash.is_none(),
        "creation_time": time(u.created_at),
        "update_time": time(u.updated_at),
    })
}

/// The user `id`, if the caller may see it: administrators see everyone, users themselves.
async fn visible_user(app: &AppState, actor: &Actor, id: &str) -> Result<User, ApiError> {
    actor.require_login()?;
    let id = id_param(id, "user_id")?;
    let is_self = matches!(actor, Actor::As(Principal::User { id: me, .. }) if *me == id);
    if !actor.is_admin() && !is_self {
        return Err(ApiError::forbidden(
            "only system administrators may see other users",
        ));
    }
    app.meta
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))
}

/// An administrator acting on another user (not on itself: flags and deletion of one's own
/// account would lock administrators out).
async fn other_user(app: &AppState, actor: &Actor, id: &str, what: &str) -> Result<User, ApiError> {
    actor.require_admin()?;
    let user = visible_user(app, actor, id).await?;
    if matches!(actor, Actor::As(Principal::User { id: me, .. }) if *me == user.id) {
        return Err(ApiError::forbidden(format!(
            "you may not {what} your own account; ask another administrator"
        )));
    }
    Ok(user)
}

/// `GET /users` (administrators): `q=username=…` or `username=~…`, paged.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let filters = query.filters(&["username"])?;
    let exact = filters.iter().find(|f| f.exact).map(|f| f.value.as_str());
    let fragment = filters.iter().find(|f| !f.exact).map(|f| f.value.as_str());
    let users = app.meta.list_users(exact, fragment, paging.page()).await?;
    let items: Vec<Value> = users.items.iter().map(user_json).collect();
    Ok(paging.respond(&uri, users.total, items))
}

/// `GET /users/search?username=…` (any logged-in user, to add members): ids and names only.
pub async fn search(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    actor.require_login()?;
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let Some(name) = query.get("username").filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request("username is required"));
    };
    let users = app.meta.list_users(None, Some(name), paging.page()).await?;
    let items: Vec<Value> = users
        .items
        .iter()
        .map(|u| json!({"user_id": u.id, "username": u.username}))
        .collect();
    Ok(paging.respond(&uri, users.total, items))
}

/// `GET /users/current`: the caller's own account.
pub async fn current(State(app): State<AppState>, actor: Actor) -> Result<Response, ApiError> {
    actor.require_login()?;
    match &actor {
        Actor::As(Principal::User {
            id,
            groups,
            sysadmin,
            ..
        }) => {
            let user = app
                .meta
                .user_by_id(*id)
                .await?
                .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))?;
            let mut body = user_json(&user);
            // A directory admin group grants administration without the stored flag.
            body["admin_role_in_auth"] = json!(*sysadmin && !user.sysadmin);
            body["sysadmin_flag"] = json!(*sysadmin);
            body["groups"] = json!(groups);
            Ok(axum::Json(body).into_response())
        }
        Actor::As(Principal::Robot { .. }) => {
            Err(ApiError::forbidden("robot accounts have no user profile"))
        }
        _ => Err(ApiError::bad_request(
            "authentication is disabled on this registry: there is no current user",
        )),
    }
}

/// `GET /users/{id}`: administrators, or the user itself.
pub async fn get_one(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = visible_user(&app, &actor, &id).await?;
    Ok(axum::Json(user_json(&user)).into_response())
}

#[derive(Deserialize)]
struct NewUser {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    realname: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

/// Checks a user name: what Basic authentication and robot names leave free.
fn check_username(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > berth_auth::service::MAX_USERNAME_LEN {
        return Err(ApiError::bad_request(format!(
            "a username has 1 to {} bytes",
            berth_auth::service::MAX_USERNAME_LEN
        )));
    }
    if name.starts_with(ROBOT_PREFIX) {
        return Err(ApiError::bad_request(format!(
            "usernames starting with {ROBOT_PREFIX} are reserved for robot accounts"
        )));
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_control() || c.is_whitespace() || matches!(c, ':' | ',' | '"' | '~' | '#' | '%' | '$')
    }) {
        return Err(ApiError::bad_request(format!(
            "a username cannot contain {c:?}"
        )));
    }
    Ok(())
}

async fn hash(password: String) -> Result<String, ApiError> {
    berth_auth::password::check_strength(&password).map_err(ApiError::bad_request)?;
    tokio::task::spawn_blocking(move || berth_auth::password::hash(&password))
        .await
        .map_err(|e| ApiError::internal("password hashing failed", &e))?
        .map_err(|e| ApiError::internal("password hashing failed", &e))
}

/// `POST /users` (administrators): creates a local account.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let new: NewUser = json_body(&body)?;
    check_username(&new.username)?;
    let hash = hash(new.password).await?;
    let profile = UserProfile {
        email: new.email,
        realname: new.realname,
        comment: new.comment,
    };
    let kind = EventKind::UserCreated {
        name: new.username.clone(),
    };
    let (name, hash, profile) = (new.username.as_str(), hash.as_str(), &profile);
    match app
        .registry
        .change(&actor.initiator(address), None, kind, |m| async move {
            m.create_user_with_profile(name, Some(hash), false, profile)
                .await
        })
        .await?
    {
        Some(id) => {
            tracing::info!(user = %new.username, "created a user");
            Ok(created(&format!("users/{id}")))
        }
        None => Err(ApiError::conflict(format!(
            "user {} exists already",
            new.username
        ))),
    }
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    realname: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

/// `PUT /users/{id}`: changes the profile (e-mail, full name, comment); administrators, or the
/// user itself. Fields left out keep their values.
pub async fn update(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = visible_user(&app, &actor, &id).await?;
    let change: Profile = json_body(&body)?;
    let profile = UserProfile {
        email: change.email.or_else(|| user.email.clone()),
        realname: change.realname.or_else(|| user.realname.clone()),
        comment: change.comment.or_else(|| user.comment.clone()),
    };
    let id = user.id;
    change_user(
        &app,
        actor.initiator(address),
        &user,
        "profile",
        |m| async move { m.set_user_profile(id, &profile).await },
    )
    .await?;
    Ok(axum::http::StatusCode::OK.into_response())
}

#[derive(Deserialize)]
struct PasswordChangeJson {
    #[serde(default)]
    old_password: Option<String>,
    new_password: String,
}

/// `PUT /users/{id}/password`: users change their own (giving the old one); administrators set
/// anyone else's. Credential caches, and refresh tokens issued before, stop working at once.
pub async fn password(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = visible_user(&app, &actor, &id).await?;
    let change: PasswordChangeJson = json_body(&body)?;
    let initiator = actor.initiator(address);
    let client = initiator.address.clone();
    if user.password_hash.is_none() {
        return Err(ApiError::bad_request(format!(
            "{} is a directory (LDAP) user: change the password in the directory",
            user.username
        )));
    }
    let is_self = matches!(&actor, Actor::As(Principal::User { id: me, .. }) if *me == user.id);
    if let (true, Some(auth)) = (is_self, &app.auth) {
        let Some(old) = change.old_password.as_deref() else {
            return Err(ApiError::bad_request(
                "old_password is required to change your own password",
            ));
        };
        match auth
            .service
            .confirm_password_change(&user, old, &change.new_password, &client)
            .await?
        {
            PasswordChange::Confirmed => {}
            PasswordChange::WrongPassword => {
                let kind = EventKind::UserUpdated {
                    name: user.username.clone(),
                    what: "password".into(),
                };
                app.registry
                    .refused(&initiator, None, kind, "old_password is wrong")
                    .await?;
                return Err(ApiError::forbidden("old_password is wrong"));
            }
            PasswordChange::Unchanged => {
                return Err(ApiError::bad_request(
                    "the new password must differ from the old one",
                ));
            }
            PasswordChange::Throttled(wait) => return Err(ApiError::throttled(wait)),
        }
    }
    let hash = hash(change.new_password).await?;
    let id = user.id;
    change_user(&app, initiator, &user, "password", |m| async move {
        m.set_password(id, &hash).await
    })
    .await?;
    tracing::info!(user = %user.username, "password changed");
    Ok(axum::http::StatusCode::OK.into_response())
}

/// Reads the boolean `key` of a JSON body.
fn flag(body: &[u8], key: &str) -> Result<bool, ApiError> {
    let value: Value = json_body(body)?;
    value[key]
        .as_bool()
        .ok_or_else(|| ApiError::bad_request(format!("the body needs {{\"{key}\": true|false}}")))
}

/// `PUT /users/{id}/sysadmin` (administrators, not on themselves): `{"sysadmin_flag": bool}`.
pub async fn sysadmin(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = other_user(&app, &actor, &id, "change the administrator flag of").await?;
    let value = flag(&body, "sysadmin_flag")?;
    let id = user.id;
    let what = format!("sysadmin {value}");
    change_user(
        &app,
        actor.initiator(address),
        &user,
        &what,
        |m| async move { m.set_sysadmin(id, value).await },
    )
    .await?;
    tracing::info!(user = %user.username, sysadmin = value, "administrator flag changed");
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `PUT /users/{id}/disabled` (administrators, not on themselves; a Berth extension):
/// `{"disabled": bool}`. A disabled user cannot log in; tokens it holds expire within their
/// lifetime.
pub async fn disabled(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = other_user(&app, &actor, &id, "disable").await?;
    let value = flag(&body, "disabled")?;
    let id = user.id;
    let what = format!("disabled {value}");
    change_user(
        &app,
        actor.initiator(address),
        &user,
        &what,
        |m| async move { m.set_user_disabled(id, value).await },
    )
    .await?;
    tracing::info!(user = %user.username, disabled = value, "user disabled flag changed");
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `DELETE /users/{id}` (administrators, not on themselves): the account and its memberships.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = other_user(&app, &actor, &id, "delete").await?;
    app.registry
        .delete_user(&actor.initiator(address), user.id, &user.username)
        .await?;
    tracing::info!(user = %user.username, "deleted a user");
    Ok(axum::http::StatusCode::OK.into_response())
}

/// Changes a user through `write`, recorded as an update of `what`.
async fn change_user<F, Fut>(
    app: &crate::App,
    initiator: berth_registry::Initiator,
    user: &User,
    what: &str,
    write: F,
) -> Result<bool, ApiError>
where
    F: FnOnce(berth_meta::MetadataStore) -> Fut,
    Fut: std::future::Future<Output = Result<bool, berth_meta::MetaError>>,
{
    let kind = EventKind::UserUpdated {
        name: user.username.clone(),
        what: what.to_owned(),
    };
    Ok(app.registry.change(&initiator, None, kind, write).await?)
}
