//! Repositories, artifacts and tags: `/repositories`, `/projects/{p}/repositories[/{r}]`,
//! `…/artifacts[/{reference}]` and `…/artifacts/{reference}/tags[/{tag}]`. Repository names
//! below the project are URL-encoded twice in paths (`a/b` → `a%252Fb`), as in Harbor.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_auth::ProjectOp;
use berth_core::{Reference, RepositoryName, Tag, media_type};
use berth_meta::{Artifact, Page, Project, ProjectFilter, RepositorySummary};
use berth_registry::ArtifactError;
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Actor, ApiError, ClientAddress, Paging, Query, created, json_body, project_for, time};
use crate::AppState;

fn repository_json(r: &RepositorySummary, project_id: Option<i64>) -> Value {
    json!({
        "id": r.id,
        "project_id": project_id,
        "name": r.name,
        "artifact_count": r.artifact_count,
        "creation_time": time(r.created_at),
        "update_time": time(r.updated_at),
    })
}

/// Harbor's artifact `type`.
fn artifact_kind(a: &Artifact) -> &'static str {
    match a.artifact_type.as_deref() {
        _ if media_type::is_index(&a.media_type) => "IMAGE",
        Some(
            "application/vnd.oci.image.config.v1+json"
            | "application/vnd.docker.container.image.v1+json",
        ) => "IMAGE",
        Some("application/vnd.cncf.helm.config.v1+json") => "CHART",
        _ => "UNKNOWN",
    }
}

fn artifact_json(a: &Artifact, project: &Project, repository_id: Option<i64>) -> Value {
    json!({
        "digest": a.digest,
        "type": artifact_kind(a),
        "media_type": a.artifact_type.clone().unwrap_or_else(|| a.media_type.clone()),
        "manifest_media_type": a.media_type,
        "artifact_type": a.artifact_type,
        "project_id": project.id,
        "repository_id": repository_id,
        "size": a.size,
        "push_time": time(a.pushed_at),
        "subject": a.subject,
        "tags": a.tags.iter().map(|(name, at)| json!({
            "name": name,
            "push_time": time(*at),
            "repository_id": repository_id,
            "immutable": false,
        })).collect::<Vec<_>>(),
        "references": a.children.iter().map(|d| json!({"child_digest": d})).collect::<Vec<_>>(),
    })
}

/// The full repository name from the path's project and (twice-encoded) repository parts.
fn repository_name(project: &Project, encoded: &str) -> Result<String, ApiError> {
    let decoded = percent_decode_str(encoded).decode_utf8_lossy();
    let name = format!("{}/{decoded}", project.name);
    name.parse::<RepositoryName>()
        .map_err(|e| ApiError::bad_request(format!("invalid repository name {name:?}: {e}")))?;
    Ok(name)
}

/// `GET /repositories`: every repository the caller may see, by name; `q=name=~…`, paged.
pub async fn all_repositories(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let name = name_filter(&query)?;
    let visible: Option<Vec<String>> = if actor.is_admin() {
        None
    } else {
        let mut robot_projects = Vec::new();
        let scope = actor.project_scope(&mut robot_projects);
        let filter = ProjectFilter {
            scope,
            name: None,
            public: None,
        };
        let all = Page {
            offset: 0,
            limit: u64::from(u32::MAX),
        };
        let projects = app.registry.meta().list_projects(&filter, all).await?;
        Some(projects.items.into_iter().map(|p| p.name).collect())
    };
    let repositories = app
        .registry
        .meta()
        .list_repository_summaries(visible.as_deref(), name.as_deref(), paging.page())
        .await?;
    let items: Vec<Value> = repositories
        .items
        .iter()
        .map(|r| repository_json(r, None))
        .collect();
    Ok(paging.respond(&uri, repositories.total, items))
}

fn name_filter(query: &Query) -> Result<Option<String>, ApiError> {
    Ok(query
        .filters(&["name"])?
        .into_iter()
        .next()
        .map(|f| f.value))
}

/// `GET /projects/{project}/repositories`: `q=name=~…`, paged.
pub async fn repositories(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(project): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let (project, _) = project_for(&app, &actor, &headers, &project, ProjectOp::Read).await?;
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let name = name_filter(&query)?;
    let repositories = app
        .registry
        .meta()
        .list_repository_summaries(
            Some(std::slice::from_ref(&project.name)),
            name.as_deref(),
            paging.page(),
        )
        .await?;
    let items: Vec<Value> = repositories
        .items
        .iter()
        .map(|r| repository_json(r, Some(project.id)))
        .collect();
    Ok(paging.respond(&uri, repositories.total, items))
}

/// The repository a path names, if it has content and the caller may `op` in its project.
async fn repository_for(
    app: &AppState,
    actor: &Actor,
    headers: &HeaderMap,
    project: &str,
    repository: &str,
    op: ProjectOp,
) -> Result<(Project, RepositorySummary), ApiError> {
    let (project, _) = project_for(app, actor, headers, project, op).await?;
    let name = repository_name(&project, repository)?;
    let summary = app
        .registry
        .meta()
        .repository_summary(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("repository {name} not found")))?;
    Ok((project, summary))
}

/// `GET /projects/{project}/repositories/{repository}`.
pub async fn repository(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (project, summary) = repository_for(
        &app,
        &actor,
        &headers,
        &project,
        &repository,
        ProjectOp::Read,
    )
    .await?;
    Ok(axum::Json(repository_json(&summary, Some(project.id))).into_response())
}

/// `DELETE /projects/{project}/repositories/{repository}` (maintainers and up): every tag and
/// manifest in it. The blobs stay for garbage collection.
pub async fn delete_repository(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (_, summary) = repository_for(
        &app,
        &actor,
        &headers,
        &project,
        &repository,
        ProjectOp::DeleteArtifacts,
    )
    .await?;
    let name = stored_name(&summary.name)?;
    if !app
        .registry
        .delete_repository(&actor.initiator(address), &name)
        .await
        .map_err(artifact_error)?
    {
        return Err(ApiError::not_found(format!(
            "repository {} not found",
            summary.name
        )));
    }
    tracing::info!(repository = %summary.name, "deleted a repository");
    Ok(StatusCode::OK.into_response())
}

/// `GET …/artifacts`: newest first; `q=tags=…` or `tags=~…`, paged.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path((project, repository)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let (project, summary) = repository_for(
        &app,
        &actor,
        &headers,
        &project,
        &repository,
        ProjectOp::Pull,
    )
    .await?;
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let tag = query.filters(&["tags"])?.into_iter().next();
    let artifacts = app
        .registry
        .meta()
        .list_artifacts(
            &summary.name,
            tag.as_ref().map(|f| (f.value.as_str(), f.exact)),
            false,
            paging.page(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("repository {} not found", summary.name)))?;
    let items: Vec<Value> = artifacts
        .items
        .iter()
        .map(|a| artifact_json(a, &project, Some(summary.id)))
        .collect();
    Ok(paging.respond(&uri, artifacts.total, items))
}

/// The artifact a path names (a digest or a tag), if the caller may `op`.
async fn artifact_for(
    app: &AppState,
    actor: &Actor,
    headers: &HeaderMap,
    (project, repository, reference): (&str, &str, &str),
    op: ProjectOp,
) -> Result<(Project, RepositorySummary, Artifact), ApiError> {
    let (project, summary) = repository_for(app, actor, headers, project, repository, op).await?;
    let reference: Reference = reference
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid reference {reference:?}: {e}")))?;
    let digest = match &reference {
        Reference::Digest(d) => Some(d.to_string()),
        Reference::Tag(_) => app
            .registry
            .meta()
            .manifest(&summary.name, &reference)
            .await?
            .map(|m| m.digest),
    };
    let artifact = match digest {
        Some(digest) => app.registry.meta().artifact(&summary.name, &digest).await?,
        None => None,
    };
    let artifact = artifact.ok_or_else(|| {
        ApiError::not_found(format!(
            "artifact {reference} not found in {}",
            summary.name
        ))
    })?;
    Ok((project, summary, artifact))
}

/// `GET …/artifacts/{reference}`.
pub async fn get_one(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path((project, repository, reference)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (project, summary, artifact) = artifact_for(
        &app,
        &actor,
        &headers,
        (&project, &repository, &reference),
        ProjectOp::Pull,
    )
    .await?;
    Ok(axum::Json(artifact_json(&artifact, &project, Some(summary.id))).into_response())
}

/// `DELETE …/artifacts/{reference}` (maintainers and up): the manifest and all its tags.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    headers: HeaderMap,
    Path((project, repository, reference)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (_, summary, artifact) = artifact_for(
        &app,
        &actor,
        &headers,
        (&project, &repository, &reference),
        ProjectOp::DeleteArtifacts,
    )
    .await?;
    let digest = artifact
        .digest
        .parse()
        .map_err(|e| ApiError::internal("stored digest", &e))?;
    let name = stored_name(&summary.name)?;
    app.registry
        .delete_manifest(&actor.initiator(address), &name, &digest)
        .await
        .map_err(|e| match e {
            ArtifactError::Unknown(_) => {
                ApiError::not_found(format!("artifact {} not found", artifact.digest))
            }
            ArtifactError::ReferencedBy { index, .. } => ApiError::precondition(format!(
                "artifact {} is listed by index {index}; delete the index first",
                artifact.digest
            )),
            e => artifact_error(e),
        })?;
    Ok(StatusCode::OK.into_response())
}

/// `GET …/artifacts/{reference}/tags`, paged.
pub async fn tags(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path((project, repository, reference)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let (_, summary, artifact) = artifact_for(
        &app,
        &actor,
        &headers,
        (&project, &repository, &reference),
        ProjectOp::Pull,
    )
    .await?;
    let paging = Paging::from_query(&Query::of(&uri))?;
    let page = paging.page();
    let items: Vec<Value> = artifact
        .tags
        .iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
        .map(|(name, at)| {
            json!({"name": name, "push_time": time(*at), "repository_id": summary.id, "immutable": false})
        })
        .collect();
    Ok(paging.respond(&uri, artifact.tags.len() as u64, items))
}

#[derive(Deserialize)]
struct NewTag {
    name: String,
}

/// `POST …/artifacts/{reference}/tags` (developers and up): adds a tag; an existing tag is
/// not moved (409).
pub async fn create_tag(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    headers: HeaderMap,
    Path((project, repository, reference)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (project_row, summary, artifact) = artifact_for(
        &app,
        &actor,
        &headers,
        (&project, &repository, &reference),
        ProjectOp::Push,
    )
    .await?;
    let new: NewTag = json_body(&body)?;
    let tag: Tag = new
        .name
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid tag {:?}: {e}", new.name)))?;
    let name = stored_name(&summary.name)?;
    app.registry
        .create_tag(
            &actor.initiator(address),
            &name,
            tag.as_str(),
            &artifact.digest,
        )
        .await
        .map_err(|e| match e {
            ArtifactError::TagExists { digest, .. } if digest == artifact.digest => {
                ApiError::conflict(format!("{tag} already tags this artifact"))
            }
            ArtifactError::TagExists { digest, .. } => ApiError::conflict(format!(
                "{tag} tags another artifact ({digest}); delete that tag first"
            )),
            ArtifactError::Unknown(_) => {
                ApiError::not_found(format!("artifact {} not found", artifact.digest))
            }
            e => artifact_error(e),
        })?;
    // Built from what was found, the repository encoded twice as Harbor's paths are.
    let below = summary
        .name
        .strip_prefix(&format!("{}/", project_row.name))
        .unwrap_or(&summary.name);
    Ok(created(&format!(
        "projects/{}/repositories/{}/artifacts/{}/tags/{tag}",
        project_row.name,
        super::encode(&super::encode(below)),
        artifact.digest
    )))
}

/// `DELETE …/artifacts/{reference}/tags/{tag}` (maintainers and up): the tag, not the artifact.
pub async fn delete_tag(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    headers: HeaderMap,
    Path((project, repository, reference, tag)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let (_, summary, artifact) = artifact_for(
        &app,
        &actor,
        &headers,
        (&project, &repository, &reference),
        ProjectOp::DeleteArtifacts,
    )
    .await?;
    if !artifact.tags.iter().any(|(name, _)| *name == tag) {
        return Err(ApiError::not_found(format!(
            "tag {tag} does not tag artifact {}",
            artifact.digest
        )));
    }
    let name = stored_name(&summary.name)?;
    app.registry
        .delete_tag(&actor.initiator(address), &name, &tag)
        .await
        .map_err(|e| match e {
            ArtifactError::Unknown(_) => ApiError::not_found(format!(
                "tag {tag} does not tag artifact {}",
                artifact.digest
            )),
            e => artifact_error(e),
        })?;
    tracing::info!(repository = %summary.name, %tag, "deleted a tag");
    Ok(StatusCode::OK.into_response())
}

/// A repository name read back from the database (valid when it was stored).
fn stored_name(name: &str) -> Result<RepositoryName, ApiError> {
    name.parse()
        .map_err(|e| ApiError::internal("stored repository name", &e))
}

/// The management API's answer to a refused artifact operation not handled by its caller.
fn artifact_error(e: ArtifactError) -> ApiError {
    match e {
        ArtifactError::Meta(e) => e.into(),
        ArtifactError::Unknown(what) => ApiError::not_found(format!("{what} not found")),
        ArtifactError::ReferencedBy { .. } | ArtifactError::TagExists { .. } => {
            ApiError::precondition(e.to_string())
        }
        other => ApiError::bad_request(other.to_string()),
    }
}
