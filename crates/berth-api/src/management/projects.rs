//! `/projects`: list, create, read, change (public flag) and delete projects.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_auth::{Principal, ProjectOp, Standing};
use berth_core::ProjectName;
use berth_meta::{Project, ProjectFilter};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Actor, ApiError, ClientAddress, Paging, Query, created, json_body, project_for, time};
use crate::AppState;

/// A project as the API shows it to a caller with `standing`.
async fn project_json(
    app: &AppState,
    project: &Project,
    standing: &Standing,
) -> Result<Value, ApiError> {
    let owner_name = match project.owner_id {
        Some(id) => app
            .registry
            .meta()
            .user_by_id(id)
            .await?
            .map(|u| u.username),
        None => None,
    };
    let repo_count = app
        .registry
        .meta()
        .list_repository_summaries(
            Some(std::slice::from_ref(&project.name)),
            None,
            berth_meta::Page {
                offset: 0,
                limit: 0,
            },
        )
        .await?
        .total;
    let mut body = json!({
        "project_id": project.id,
        "name": project.name,
        "owner_id": project.owner_id,
        "owner_name": owner_name,
        "public": project.public,
        "metadata": {"public": project.public.to_string()},
        "repo_count": repo_count,
        "creation_time": time(project.created_at),
        "update_time": time(project.updated_at),
        "deleted": false,
    });
    if let Some(role) = standing.role() {
        body["current_user_role_id"] = json!(role.id());
        body["current_user_role_ids"] = json!([role.id()]);
    }
    Ok(body)
}

/// `GET /projects`: the projects the caller may see, by name; `name` (fragment), `public`,
/// `q=name=~…`, paged.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let filters = query.filters(&["name", "public"])?;
    let mut name = query
        .get("name")
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let mut public = query.flag("public")?;
    for f in filters {
        match f.key.as_str() {
            "name" => name = Some(f.value),
            _ => {
                public = Some(match f.value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "public must be true or false, not {other:?}"
                        )));
                    }
                })
            }
        }
    }
    let mut robot_projects = Vec::new();
    let scope = actor.project_scope(&mut robot_projects);
    let filter = ProjectFilter {
        scope,
        name: name.as_deref(),
        public,
    };
    let projects = app
        .registry
        .meta()
        .list_projects(&filter, paging.page())
        .await?;
    let mut items = Vec::with_capacity(projects.items.len());
    for project in &projects.items {
        let standing = actor.standing(&app, project).await?;
        items.push(project_json(&app, project, &standing).await?);
    }
    Ok(paging.respond(&uri, projects.total, items))
}

/// `HEAD /projects?project_name=…`: 200 if the project exists, 404 if not (logged-in callers).
pub async fn exists(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    actor.require_login()?;
    let query = Query::of(&uri);
    let Some(name) = query.get("project_name").filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request("project_name is required"));
    };
    match app.registry.meta().project(name).await? {
        Some(_) => Ok(StatusCode::OK.into_response()),
        None => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

#[derive(Deserialize)]
struct NewProject {
    project_name: String,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// Harbor's project metadata: strings, `"true"` or `"false"`.
#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    public: Option<String>,
}

/// The public flag a request asks for: `public`, or Harbor's `metadata.public`.
fn public_flag(public: Option<bool>, metadata: Option<Metadata>) -> Result<Option<bool>, ApiError> {
    if let Some(public) = public {
        return Ok(Some(public));
    }
    match metadata.and_then(|m| m.public).as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "metadata.public must be \"true\" or \"false\", not {other:?}"
        ))),
    }
}

/// `POST /projects`: creates a project (who may is the `project_creation` setting); the
/// creator becomes its project admin.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_login()?;
    let principal = actor.principal();
    let creation = app.registry.settings().project_creation();
    if !actor.is_admin() && !creation.allows(&principal) {
        return Err(ApiError::forbidden(match principal {
            Principal::Robot { .. } => "robot accounts may not create projects".to_owned(),
            _ => "only system administrators may create projects on this registry \
                  (project creation: adminonly)"
                .to_owned(),
        }));
    }
    let new: NewProject = json_body(&body)?;
    let name: ProjectName = new
        .project_name
        .parse()
        .map_err(|e: berth_core::name::SimpleNameError| ApiError::bad_request(e.to_string()))?;
    let public = public_flag(new.public, new.metadata)?.unwrap_or(false);
    let owner = match principal {
        Principal::User { id, .. } if id > 0 => Some(id),
        _ => None,
    };
    let id = app
        .registry
        .create_project(&actor.initiator(address), &name, public, owner)
        .await?;
    Ok(created(&format!("projects/{id}")))
}

/// `GET /projects/{project}`.
pub async fn get_one(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    let (project, standing) =
        project_for(&app, &actor, &headers, &project, ProjectOp::Read).await?;
    Ok(axum::Json(project_json(&app, &project, &standing).await?).into_response())
}

#[derive(Deserialize)]
struct ProjectChange {
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// `PUT /projects/{project}` (project admins): the public flag.
pub async fn update(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (project, _) = project_for(&app, &actor, &headers, &project, ProjectOp::Update).await?;
    let change: ProjectChange = json_body(&body)?;
    if let Some(public) = public_flag(change.public, change.metadata)? {
        app.registry
            .set_project_public(&actor.initiator(address), &project, public)
            .await?;
    }
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /projects/{project}` (project admins): only once it has no repositories.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    let (project, _) = project_for(&app, &actor, &headers, &project, ProjectOp::Delete).await?;
    app.registry
        .delete_project(&actor.initiator(address), &project)
        .await?;
    Ok(StatusCode::OK.into_response())
}
