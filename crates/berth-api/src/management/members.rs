//! `/projects/{project}/members`: users and directory (LDAP) groups with a role.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_auth::{ProjectOp, Role};
use berth_meta::{Member, MemberEntity};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Actor, ApiError, ClientAddress, Paging, Query, created, id_param, json_body, project_for,
};
use crate::AppState;

fn member_json(m: &Member) -> Value {
    let role = m.role.parse::<Role>().ok();
    let (entity_type, entity_id) = match &m.entity {
        MemberEntity::User(id) => ("u", json!(id)),
        MemberEntity::Group(_) => ("g", Value::Null),
    };
    json!({
        "id": m.id,
        "project_id": m.project_id,
        "entity_name": m.entity_name,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "role_id": role.map(Role::id),
        "role_name": m.role,
    })
}

fn role(role_id: i64) -> Result<Role, ApiError> {
    Role::from_id(role_id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role_id {role_id} is not a role: 1 projectAdmin, 2 developer, 3 guest, 4 maintainer, 5 limitedGuest"
        ))
    })
}

/// `GET /projects/{project}/members`: `entityname` (fragment), paged.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(project): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let (project, _) =
        project_for(&app, &actor, &headers, &project, ProjectOp::ReadMembers).await?;
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let name = query.get("entityname").filter(|n| !n.is_empty());
    let members = app
        .registry
        .meta()
        .list_members(project.id, name, paging.page())
        .await?;
    let items: Vec<Value> = members.items.iter().map(member_json).collect();
    Ok(paging.respond(&uri, members.total, items))
}

async fn member(app: &AppState, project_id: i64, member_id: &str) -> Result<Member, ApiError> {
    let member_id = id_param(member_id, "member id")?;
    app.registry
        .meta()
        .member(project_id, member_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("member {member_id} not found in this project")))
}

/// `GET /projects/{project}/members/{id}`.
pub async fn get_one(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path((project, member_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (project, _) =
        project_for(&app, &actor, &headers, &project, ProjectOp::ReadMembers).await?;
    let member = member(&app, project.id, &member_id).await?;
    Ok(axum::Json(member_json(&member)).into_response())
}

#[derive(Deserialize)]
struct NewMember {
    role_id: i64,
    #[serde(default)]
    member_user: Option<MemberUser>,
    #[serde(default)]
    member_group: Option<MemberGroup>,
}

#[derive(Deserialize)]
struct MemberUser {
    #[serde(default)]
    user_id: Option<i64>,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Deserialize)]
struct MemberGroup {
    #[serde(default)]
    ldap_group_dn: Option<String>,
    #[serde(default)]
    group_type: Option<i64>,
}

/// `POST /projects/{project}/members` (project admins): `member_user` (`user_id` or
/// `username`) or `member_group` (`ldap_group_dn`, `group_type` 1), with `role_id`.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    headers: HeaderMap,
    Path(project_ref): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (project, _) = project_for(
        &app,
        &actor,
        &headers,
        &project_ref,
        ProjectOp::ManageMembers,
    )
    .await?;
    let new: NewMember = json_body(&body)?;
    let role = role(new.role_id)?;
    let (entity, name) = match (new.member_user, new.member_group) {
        (Some(user), None) => {
            let found = match (user.user_id, user.username.as_deref()) {
                (Some(id), _) => app.registry.meta().user_by_id(id).await?,
                (None, Some(name)) => app.registry.meta().user(name).await?,
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "member_user needs user_id or username",
                    ));
                }
            };
            let user = found.ok_or_else(|| ApiError::not_found("no such user"))?;
            (MemberEntity::User(user.id), user.username)
        }
        (None, Some(group)) => {
            if group.group_type.is_some_and(|t| t != 1) {
                return Err(ApiError::bad_request(
                    "only LDAP groups (group_type 1) can be members on this registry",
                ));
            }
            let Some(dn) = group.ldap_group_dn else {
                return Err(ApiError::bad_request("member_group needs ldap_group_dn"));
            };
            (MemberEntity::Group(dn.clone()), dn)
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of member_user and member_group",
            ));
        }
    };
    let id = app
        .registry
        .add_member(&actor.initiator(address), &project, &entity, &name, role)
        .await?;
    Ok(created(&format!("projects/{}/members/{id}", project.id)))
}

#[derive(Deserialize)]
struct RoleChange {
    role_id: i64,
}

/// `PUT /projects/{project}/members/{id}` (project admins): `role_id`.
pub async fn update(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    headers: HeaderMap,
    Path((project, member_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (project, _) =
        project_for(&app, &actor, &headers, &project, ProjectOp::ManageMembers).await?;
    let member = member(&app, project.id, &member_id).await?;
    let change: RoleChange = json_body(&body)?;
    let role = role(change.role_id)?;
    app.registry
        .set_member_role(&actor.initiator(address), &project, &member, role)
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /projects/{project}/members/{id}` (project admins).
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    headers: HeaderMap,
    Path((project, member_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (project, _) =
        project_for(&app, &actor, &headers, &project, ProjectOp::ManageMembers).await?;
    let member = member(&app, project.id, &member_id).await?;
    app.registry
        .remove_member(&actor.initiator(address), &project, &member)
        .await?;
    Ok(StatusCode::OK.into_response())
}
