//! `/robots`: robot accounts. System robots (`robot$<name>`, created by administrators) may
//! hold permissions in several projects or all; project robots (`robot$<project>+<name>`,
//! created by the project's admins) in their project only. The secret is shown once, at
//! creation and at each refresh; only its argon2id hash is kept.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_auth::{ProjectOp, ROBOT_PREFIX};
use berth_meta::{NewRobot, Project, Robot, RobotGrant, RobotUpdate, RobotWrite};
use berth_registry::EventKind;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Actor, ApiError, ClientAddress, Paging, ProjectRef, Query, check_name, created, id_param,
    json_body, project_by_ref, time,
};
use crate::AppState;

/// Lifetime of a robot created without `duration` (Harbor's `robot_token_duration`).
const DEFAULT_DURATION_DAYS: i64 = 30;
/// Longest lifetime that is not "never".
const MAX_DURATION_DAYS: i64 = 36_500;

#[derive(Deserialize)]
struct PermissionJson {
    kind: String,
    namespace: String,
    #[serde(default)]
    access: Vec<AccessJson>,
}

#[derive(Deserialize)]
struct AccessJson {
    resource: String,
    action: String,
    #[serde(default)]
    effect: Option<String>,
}

/// Registry actions asked for in one namespace (a project name, or `*`), before the name is
/// resolved to the project's id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requested {
    namespace: String,
    actions: Vec<String>,
}

/// Harbor's permission list → registry actions per namespace. Read and list access are implied
/// by pull and accepted; anything Berth cannot enforce is refused rather than ignored.
fn permissions_from_json(list: Vec<PermissionJson>) -> Result<Vec<Requested>, ApiError> {
    let mut out: Vec<Requested> = Vec::new();
    for p in list {
        if p.kind != "project" {
            return Err(ApiError::bad_request(format!(
                "permission kind {:?} is not supported: use kind \"project\"",
                p.kind
            )));
        }
        let mut actions: Vec<String> = Vec::new();
        for a in p.access {
            if a.effect.as_deref().is_some_and(|e| e != "allow") {
                return Err(ApiError::bad_request(
                    "only \"allow\" permissions are supported",
                ));
            }
            let action = match (a.resource.as_str(), a.action.as_str()) {
                ("repository" | "artifact" | "tag", "read" | "list") => continue,
                ("repository", "pull") => "pull",
                ("repository", "push") | ("tag", "create") => "push",
                ("repository" | "artifact" | "tag", "delete") => "delete",
                (resource, action) => {
                    return Err(ApiError::bad_request(format!(
                        "robot permission {resource}:{action} is not supported; robots can have \
                         repository pull and push, and repository, artifact or tag delete"
                    )));
                }
            };
            if !actions.iter().any(|x| x == action) {
                actions.push(action.to_owned());
            }
        }
        if actions.iter().any(|a| a == "push") && !actions.iter().any(|a| a == "pull") {
            return Err(ApiError::bad_request(format!(
                "push needs pull as well in {} (clients check what the registry has before pushing)",
                p.namespace
            )));
        }
        match out.iter_mut().find(|x| x.namespace == p.namespace) {
            Some(existing) => {
                for a in actions {
                    if !existing.actions.contains(&a) {
                        existing.actions.push(a);
                    }
                }
            }
            None => out.push(Requested {
                namespace: p.namespace,
                actions,
            }),
        }
    }
    Ok(out)
}

/// A robot's grants as Harbor shows them: by project name (`*` for every project). A grant
/// whose project is gone (it cannot be: grants die with their project) is left out.
async fn permissions_json(app: &AppState, grants: &[RobotGrant]) -> Result<Value, ApiError> {
    let mut out = Vec::with_capacity(grants.len());
    for grant in grants {
        let namespace = match grant.project_id {
            None => "*".to_owned(),
            Some(id) => match app.meta.project_by_id(id).await? {
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

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `duration` (days; -1 never; absent or 0: the default) → (days, expiry).
fn expiry(duration: Option<i64>) -> Result<(i64, Option<i64>), ApiError> {
    match duration.unwrap_or(0) {
        -1 => Ok((-1, None)),
        0 => Ok((
            DEFAULT_DURATION_DAYS,
            Some(now() + DEFAULT_DURATION_DAYS * 86_400),
        )),
        d if (1..=MAX_DURATION_DAYS).contains(&d) => Ok((d, Some(now() + d * 86_400))),
        d => Err(ApiError::bad_request(format!(
            "duration {d} is not a number of days from 1 to {MAX_DURATION_DAYS}, or -1 for never"
        ))),
    }
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
    let robot = app.meta.robot_by_id(id).await?;
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
    for f in query.filters(&["Level", "ProjectID"])? {
        match f.key.as_str() {
            "Level" if f.value == "project" || f.value == "system" => {}
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
    let robots = app.meta.list_robots(project_id, paging.page()).await?;
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
    permissions: Vec<PermissionJson>,
}

/// A system robot's grants: each namespace resolved, once, to its project's id (`*`: every
/// project). Namespaces are project names, as in Harbor; a number is a name too.
async fn system_grants(
    app: &AppState,
    requested: Vec<Requested>,
) -> Result<Vec<RobotGrant>, ApiError> {
    let mut grants = Vec::with_capacity(requested.len());
    for r in requested {
        let project_id = if r.namespace == "*" {
            None
        } else {
            match app.meta.project(&r.namespace).await? {
                Some(project) => Some(project.id),
                None => {
                    return Err(ApiError::bad_request(format!(
                        "project {} does not exist",
                        r.namespace
                    )));
                }
            }
        };
        grants.push(RobotGrant {
            project_id,
            actions: r.actions,
        });
    }
    Ok(grants)
}

/// A project robot's grant: exactly one namespace, the name of a project the caller may manage
/// robots in (resolved by name only: `"4"` is the project named 4, never the one with id 4).
async fn project_grant(
    app: &AppState,
    actor: &Actor,
    requested: Vec<Requested>,
) -> Result<(Project, RobotGrant), ApiError> {
    let only = single_project(requested)?;
    let (project, _) = project_by_ref(
        app,
        actor,
        ProjectRef::Name(&only.namespace),
        ProjectOp::ManageRobots,
    )
    .await
    .map_err(|e| {
        if e.is_not_found() {
            ApiError::bad_request(format!("project {} does not exist", only.namespace))
        } else {
            e
        }
    })?;
    let grant = RobotGrant {
        project_id: Some(project.id),
        actions: only.actions,
    };
    Ok((project, grant))
}

/// The one namespace a project robot's permissions name.
fn single_project(requested: Vec<Requested>) -> Result<Requested, ApiError> {
    let [only] = <[Requested; 1]>::try_from(requested).map_err(|_| {
        ApiError::bad_request("a project robot has permissions in exactly one project")
    })?;
    if only.namespace == "*" {
        return Err(ApiError::bad_request(
            "only system robots may have permissions in every project (*)",
        ));
    }
    Ok(only)
}

/// The answer to a robot write whose grant names a project deleted meanwhile.
fn gone(project_id: i64) -> ApiError {
    ApiError::bad_request(format!(
        "project {project_id} was deleted while the robot account was being written"
    ))
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
    check_name("robot name", &new.name, 128)?;
    let requested = permissions_from_json(new.permissions)?;
    let (full_name, project_id, grants) = match new.level.as_str() {
        "system" => {
            actor.require_admin()?;
            let grants = system_grants(&app, requested).await?;
            (format!("{ROBOT_PREFIX}{}", new.name), None, grants)
        }
        "project" => {
            let (project, grant) = project_grant(&app, &actor, requested).await?;
            (
                format!("{ROBOT_PREFIX}{}+{}", project.name, new.name),
                Some(project.id),
                vec![grant],
            )
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "level {other:?} is not system or project"
            )));
        }
    };
    let (duration_days, expires_at) = expiry(new.duration)?;
    let secret = berth_auth::password::generate_secret();
    let hash = hash_secret(secret.clone()).await?;
    let robot = NewRobot {
        name: &full_name,
        secret_hash: &hash,
        grants: &grants,
        description: &new.description,
        project_id,
        duration_days,
        expires_at,
        disabled: new.disable,
    };
    let kind = EventKind::RobotCreated {
        name: full_name.clone(),
    };
    let robot = &robot;
    let id = match app
        .registry
        .change(
            &actor.initiator(address),
            project_id,
            kind,
            |m| async move { m.create_robot(robot).await },
        )
        .await?
    {
        RobotWrite::Done(id) => id,
        RobotWrite::Conflict => {
            return Err(ApiError::conflict(format!(
                "robot account {full_name} exists already"
            )));
        }
        RobotWrite::UnknownProject(project) => return Err(gone(project)),
    };
    tracing::info!(robot = %full_name, "created a robot account");
    let mut response = created(&format!("robots/{id}"));
    *response.body_mut() = axum::body::Body::from(
        json!({
            "id": id,
            "name": full_name,
            "secret": secret,
            "creation_time": time(now()),
            "expires_at": expires_at.unwrap_or(-1),
        })
        .to_string(),
    );
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn hash_secret(secret: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || berth_auth::password::hash(&secret))
        .await
        .map_err(|e| ApiError::internal("secret hashing failed", &e))?
        .map_err(|e| ApiError::internal("secret hashing failed", &e))
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
struct RobotChange {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    disable: Option<bool>,
    #[serde(default)]
    permissions: Option<Vec<PermissionJson>>,
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
    let change: RobotChange = json_body(&body)?;
    let grants = match change.permissions {
        Some(list) => {
            let requested = permissions_from_json(list)?;
            match robot.project_id {
                // The caller may manage the robot's project (checked above); the namespace
                // must name that project, by name.
                Some(own) => {
                    let only = single_project(requested)?;
                    let named = app.meta.project(&only.namespace).await?;
                    if named.is_none_or(|p| p.id != own) {
                        return Err(ApiError::bad_request(format!(
                            "a project robot keeps its permissions in its own project, not {}",
                            only.namespace
                        )));
                    }
                    vec![RobotGrant {
                        project_id: Some(own),
                        actions: only.actions,
                    }]
                }
                None => system_grants(&app, requested).await?,
            }
        }
        None => robot.grants.clone(),
    };
    let (duration_days, expires_at) = match change.duration {
        Some(d) => expiry(Some(d))?,
        None => (robot.duration_days, robot.expires_at),
    };
    let update = RobotUpdate {
        description: change.description.as_deref().unwrap_or(&robot.description),
        grants: &grants,
        duration_days,
        expires_at,
        disabled: change.disable.unwrap_or(robot.disabled),
    };
    let kind = EventKind::RobotUpdated {
        name: robot.name.clone(),
        what: "settings".into(),
    };
    let (id, update) = (robot.id, &update);
    let outcome = app
        .registry
        .change(
            &actor.initiator(address),
            robot.project_id,
            kind,
            |m| async move { m.update_robot(id, update).await },
        )
        .await?;
    match outcome {
        RobotWrite::Done(_) => {}
        RobotWrite::Conflict => {
            return Err(ApiError::not_found(format!(
                "robot account {} not found",
                robot.id
            )));
        }
        RobotWrite::UnknownProject(project) => return Err(gone(project)),
    }
    tracing::info!(robot = %robot.name, "changed a robot account");
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
    let secret = match change.secret.filter(|s| !s.is_empty()) {
        Some(given) => {
            berth_auth::password::check_strength(&given).map_err(ApiError::bad_request)?;
            given
        }
        None => berth_auth::password::generate_secret(),
    };
    let hash = hash_secret(secret.clone()).await?;
    let kind = EventKind::RobotUpdated {
        name: robot.name.clone(),
        what: "secret".into(),
    };
    let id = robot.id;
    app.registry
        .change(
            &actor.initiator(address),
            robot.project_id,
            kind,
            |m| async move { m.set_robot_secret(id, &hash).await },
        )
        .await?;
    tracing::info!(robot = %robot.name, "refreshed a robot secret");
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
    let kind = EventKind::RobotDeleted {
        name: robot.name.clone(),
    };
    let id = robot.id;
    app.registry
        .change(
            &actor.initiator(address),
            robot.project_id,
            kind,
            |m| async move { m.delete_robot(id).await },
        )
        .await?;
    tracing::info!(robot = %robot.name, "deleted a robot account");
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(resource: &str, action: &str) -> AccessJson {
        AccessJson {
            resource: resource.into(),
            action: action.into(),
            effect: None,
        }
    }

    fn perm(ns: &str, access: Vec<AccessJson>) -> PermissionJson {
        PermissionJson {
            kind: "project".into(),
            namespace: ns.into(),
            access,
        }
    }

    #[test]
    fn harbor_permissions_map_to_registry_actions() {
        let p = permissions_from_json(vec![
            perm(
                "a",
                vec![
                    access("repository", "pull"),
                    access("repository", "push"),
                    access("artifact", "list"),
                    access("artifact", "delete"),
                    access("tag", "delete"),
                ],
            ),
            perm("a", vec![access("repository", "pull")]),
            perm("b", vec![access("repository", "pull")]),
        ])
        .unwrap();
        assert_eq!(
            p,
            [
                Requested {
                    namespace: "a".into(),
                    actions: vec!["pull".into(), "push".into(), "delete".into()]
                },
                Requested {
                    namespace: "b".into(),
                    actions: vec!["pull".into()]
                }
            ]
        );
        for bad in [
            vec![perm("a", vec![access("repository", "push")])],
            vec![perm("a", vec![access("scan", "create")])],
            vec![PermissionJson {
                kind: "system".into(),
                namespace: "/".into(),
                access: vec![],
            }],
            vec![perm(
                "a",
                vec![AccessJson {
                    effect: Some("deny".into()),
                    ..access("repository", "pull")
                }],
            )],
        ] {
            assert!(permissions_from_json(bad).is_err());
        }
    }

    #[test]
    fn durations() {
        assert_eq!(expiry(Some(-1)).unwrap(), (-1, None));
        assert_eq!(expiry(None).unwrap().0, DEFAULT_DURATION_DAYS);
        let (days, at) = expiry(Some(2)).unwrap();
        assert_eq!(days, 2);
        assert!((at.unwrap() - now() - 2 * 86_400).abs() <= 2);
        assert!(expiry(Some(-2)).is_err());
        assert!(expiry(Some(MAX_DURATION_DAYS + 1)).is_err());
    }
}
