//! `/robots`: robot accounts in Harbor's shapes. System robots are created by administrators,
//! project robots by the project's admins; the rules (names, permissions, lifetimes, secrets)
//! are the registry service's (`berth_registry::robots`).

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_auth::ProjectOp;
use berth_meta::{Robot, RobotGrant, RobotsOf};
use berth_registry::robots::{self, Permission};
use berth_registry::{RobotChange, RobotRequest, RobotScope};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Actor, ApiError, ClientAddress, Paging, ProjectRef, Query, created, id_param, json_body,
    project_by_ref, time,
};
use crate::AppState;

/// A robot's grants as Harbor shows them: by project name (`*` for every project). A grant
/// whose project is gone (it cannot be: grants die with their project) is left out.
async fn permissions_json(app: &AppState, grants: &[RobotGrant]) -> Result<Value, ApiError> {
    let mut out = Vec::with_capacity(grants.len());
    for grant in grants {
        let namespace = match grant.project_id {
            None => "*".to_owned(),
            Some(id) => match app.registry.meta().project_by_id(id).await? {
                Some(project) => project.name,
                None => continue,
            },
        };
        out.push(json!({
            "kind": "project",
            "namespace": namespace,
            "access": grant.actions.iter().map(|a| json!({
                "resource": "repository", "action": a, "effect": "allow"
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(Value::Array(out))
}

async fn robot_json(app: &AppState, robot: &Robot) -> Result<Value, ApiError> {
    Ok(json!({
        "id": robot.id,
        "name": robot.name,
        "description": robot.description,
        "level": if robot.project_id.is_some() { "project" } else { "system" },
        "duration": robot.duration_days,
        "disable": robot.disabled,
        "expires_at": robot.expires_at.unwrap_or(-1),
        "editable": true,
        "permissions": permissions_json(app, &robot.grants).await?,
        "creation_time": time(robot.created_at),
        "update_time": time(robot.updated_at),
    }))
}

/// Checks that the caller may `op` (read or manage) `robot`: administrators any robot, project
/// admins (and, to read, project members) their project's robots.
async fn authorize(
    app: &AppState,
    actor: &Actor,
    robot_project: Option<i64>,
    op: ProjectOp,
) -> Result<(), ApiError> {
    actor.require_login()?;
    if actor.is_admin() {
        return Ok(());
    }
    let Some(project_id) = robot_project else {
        return Err(ApiError::forbidden(
            "only system administrators may see and manage system robot accounts",
        ));
    };
    project_by_ref(app, actor, ProjectRef::Id(project_id), op).await?;
    Ok(())
}

async fn robot(app: &AppState, actor: &Actor, id: &str, op: ProjectOp) -> Result<Robot, ApiError> {
    actor.require_login()?;
    let id = id_param(id, "robot_id")?;
    let robot = app.registry.meta().robot_by_id(id).await?;
    let Some(robot) = robot else {
        return Err(ApiError::not_found(format!("robot account {id} not found")));
    };
    match authorize(app, actor, robot.project_id, ProjectOp::ReadRobots).await {
        // Robots of projects the caller cannot see do not exist for it.
        Err(e) if e.is_not_found() => {
            return Err(ApiError::not_found(format!("robot account {id} not found")));
        }
        other => other?,
    }
    authorize(app, actor, robot.project_id, op).await?;
    Ok(robot)
}

/// `GET /robots`: administrators see all (or one project's with `q=Level=project,ProjectID=N`);
/// project members list their project's robots with that filter.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    actor.require_login()?;
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let mut project_id = None;
    let mut system_only = false;
    for f in query.filters(&["Level", "ProjectID"])? {
        match f.key.as_str() {
            "Level" if f.value == "project" => {}
            "Level" if f.value == "system" => system_only = true,
            "Level" => {
                return Err(ApiError::bad_request("Level is project or system"));
            }
            _ => project_id = Some(id_param(&f.value, "ProjectID")?),
        }
    }
    match project_id {
        Some(id) => authorize(&app, &actor, Some(id), ProjectOp::ReadRobots).await?,
        None if actor.is_admin() => {}
        None => {
            return Err(ApiError::forbidden(
                "only system administrators may list every robot account; \
                 give q=Level=project,ProjectID=<id> for a project's",
            ));
        }
    }
    let robots = app
        .registry
        .meta()
        .list_robots(
            match project_id {
                Some(id) => RobotsOf::Project(id),
                None if system_only => RobotsOf::System,
                None => RobotsOf::All,
            },
            paging.page(),
        )
        .await?;
    let mut items: Vec<Value> = Vec::with_capacity(robots.items.len());
    for robot in &robots.items {
        items.push(robot_json(&app, robot).await?);
    }
    Ok(paging.respond(&uri, robots.total, items))
}

#[derive(Deserialize)]
struct NewRobotJson {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    duration: Option<i64>,
    level: String,
    #[serde(default)]
    disable: bool,
    #[serde(default)]
    permissions: Vec<Permission>,
}

/// `POST /robots`: creates a robot and returns its secret, once.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_login()?;
    let new: NewRobotJson = json_body(&body)?;
    let request = RobotRequest {
        name: new.name,
        description: new.description,
        duration: new.duration,
        disabled: new.disable,
        permissions: robots::requested_actions(new.permissions)?,
    };
    let initiator = actor.initiator(address);
    let robot = match new.level.as_str() {
        "system" => {
            actor.require_admin()?;
            app.registry
                .create_robot(&initiator, RobotScope::System, request)
                .await?
        }
        "project" => {
            // The caller must manage robots in the one project the permissions name.
            let namespace = robots::single_project(&request.permissions)?
                .namespace
                .clone();
            let (project, _) = project_by_ref(
                &app,
                &actor,
                ProjectRef::Name(&namespace),
                ProjectOp::ManageRobots,
            )
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    ApiError::bad_request(format!("project {namespace} does not exist"))
                } else {
                    e
                }
            })?;
            app.registry
                .create_robot(&initiator, RobotScope::Project(&project), request)
                .await?
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "level {other:?} is not system or project"
            )));
        }
    };
    let mut response = created(&format!("robots/{}", robot.id));
    *response.body_mut() = axum::body::Body::from(
        json!({
            "id": robot.id,
            "name": robot.name,
            "secret": robot.secret,
            "creation_time": time(robot.created_at),
            "expires_at": robot.expires_at.unwrap_or(-1),
        })
        .to_string(),
    );
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// `GET /robots/{id}`.
pub async fn get_one(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let robot = robot(&app, &actor, &id, ProjectOp::ReadRobots).await?;
    Ok(axum::Json(robot_json(&app, &robot).await?).into_response())
}

#[derive(Deserialize)]
struct RobotChangeJson {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    disable: Option<bool>,
    #[serde(default)]
    permissions: Option<Vec<Permission>>,
}

/// `PUT /robots/{id}`: description, duration (counted from now), disable, permissions. A
/// project robot's permissions stay in its project.
pub async fn update(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let robot = robot(&app, &actor, &id, ProjectOp::ManageRobots).await?;
    let change: RobotChangeJson = json_body(&body)?;
    let change = RobotChange {
        description: change.description,
        duration: change.duration,
        disabled: change.disable,
        permissions: change
            .permissions
            .map(robots::requested_actions)
            .transpose()?,
    };
    app.registry
        .update_robot(&actor.initiator(address), &robot, change)
        .await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize, Default)]
struct SecretChange {
    #[serde(default)]
    secret: Option<String>,
}

/// `PATCH /robots/{id}`: a new secret, generated (or the one given, if it is strong enough),
/// returned once. The old secret stops working at once, on every node.
pub async fn refresh(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let robot = robot(&app, &actor, &id, ProjectOp::ManageRobots).await?;
    let change: SecretChange = if body.is_empty() {
        SecretChange::default()
    } else {
        json_body(&body)?
    };
    let secret = app
        .registry
        .refresh_robot_secret(&actor.initiator(address), &robot, change.secret)
        .await?;
    Ok(axum::Json(json!({"secret": secret})).into_response())
}

/// `DELETE /robots/{id}`.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let robot = robot(&app, &actor, &id, ProjectOp::ManageRobots).await?;
    app.registry
        .delete_robot(&actor.initiator(address), &robot)
        .await?;
    Ok(StatusCode::OK.into_response())
}
