//! `/users`: local accounts. Administrators list, create, change, disable and delete users and
//! grant system administration; every user reads and changes its own profile and password.

use axum::extract::{OriginalUri, Path, State};
use axum::response::{IntoResponse, Response};
use berth_auth::Principal;
use berth_meta::{User, UserProfile};
use berth_registry::NewUser;
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
    app.registry
        .meta()
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id} not found")))
}

/// The user `id`, for an administrator to act on (the service refuses flags and deletion of
/// one's own account).
async fn admin_on_user(app: &AppState, actor: &Actor, id: &str) -> Result<User, ApiError> {
    actor.require_admin()?;
    visible_user(app, actor, id).await
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
    let users = app
        .registry
        .meta()
        .list_users(exact, fragment, paging.page())
        .await?;
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
    let users = app
        .registry
        .meta()
        .list_users(None, Some(name), paging.page())
        .await?;
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
                .registry
                .meta()
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
struct NewUserJson {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    realname: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /users` (administrators): creates a local account.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let new: NewUserJson = json_body(&body)?;
    let user = NewUser {
        username: new.username,
        password: new.password,
        profile: UserProfile {
            email: new.email,
            realname: new.realname,
            comment: new.comment,
        },
    };
    let id = app
        .registry
        .create_user(&actor.initiator(address), user)
        .await?;
    Ok(created(&format!("users/{id}")))
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
    app.registry
        .set_user_profile(&actor.initiator(address), &user, profile)
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
    let is_self = matches!(&actor, Actor::As(Principal::User { id: me, .. }) if *me == user.id);
    // Users changing their own password confirm it with the current one.
    let confirm = match (is_self, &app.auth) {
        (true, Some(auth)) if user.password_hash.is_some() => {
            let Some(old) = change.old_password.as_deref() else {
                return Err(ApiError::bad_request(
                    "old_password is required to change your own password",
                ));
            };
            Some((&*auth.service, old))
        }
        _ => None,
    };
    app.registry
        .set_password(&initiator, &user, change.new_password, confirm)
        .await?;
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
    let user = admin_on_user(&app, &actor, &id).await?;
    let value = flag(&body, "sysadmin_flag")?;
    app.registry
        .set_sysadmin(&actor.initiator(address), &user, value)
        .await?;
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
    let user = admin_on_user(&app, &actor, &id).await?;
    let value = flag(&body, "disabled")?;
    app.registry
        .set_user_disabled(&actor.initiator(address), &user, value)
        .await?;
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `DELETE /users/{id}` (administrators, not on themselves): the account and its memberships.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = admin_on_user(&app, &actor, &id).await?;
    app.registry
        .remove_user(&actor.initiator(address), &user)
        .await?;
    Ok(axum::http::StatusCode::OK.into_response())
}
