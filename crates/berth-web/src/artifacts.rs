//! Changing a repository's artifacts from its page: add a tag, remove a tag, delete one
//! artifact or the selected ones. One form carries the page's controls; the button pressed
//! says what to do (`op`): `tag:<digest>` (with `new-tag-<digest>`), `untag:<tag>`,
//! `delete:<digest>`, `delete` (every `digest` ticked), or `stay` (the form's default
//! button, so that Enter in a field never deletes). Tags need push, removals and
//! deletions need delete, checked again here whatever the page showed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_api::management::{ApiError, project_for};
use berth_auth::ProjectOp;
use berth_core::{Digest, RepositoryName, Tag};
use berth_registry::ArtifactError;

use crate::Web;
use crate::pages::{ListQuery, PageError, error_page, form_or_refuse, repository_with, see_other};
use crate::session::Viewer;

/// What a submitted form asks for.
enum Op {
    /// Nothing (the form's default button: Enter in a field without the script).
    Stay,
    Tag {
        digest: Digest,
        tag: String,
    },
    Untag(String),
    Delete(Vec<Digest>),
}

fn parse(fields: &[(String, String)]) -> Result<Op, &'static str> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let digest = |s: &str| s.parse::<Digest>().map_err(|_| "error-not-found");
    let op = get("op").ok_or("error-csrf")?;
    if op == "stay" {
        return Ok(Op::Stay);
    }
    if let Some(d) = op.strip_prefix("tag:") {
        let tag = get(&format!("new-tag-{d}")).unwrap_or("").trim().to_owned();
        return Ok(Op::Tag {
            digest: digest(d)?,
            tag,
        });
    }
    if let Some(tag) = op.strip_prefix("untag:") {
        return Ok(Op::Untag(tag.to_owned()));
    }
    if let Some(d) = op.strip_prefix("delete:") {
        return Ok(Op::Delete(vec![digest(d)?]));
    }
    if op == "delete" {
        let picked: Result<Vec<Digest>, _> = fields
            .iter()
            .filter(|(k, _)| k == "digest")
            .map(|(_, v)| digest(v))
            .collect();
        return Ok(Op::Delete(picked?));
    }
    Err("error-not-found")
}

/// `POST /projects/{name}/repositories/{repository…}`.
pub async fn change(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path((name, short)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = async {
        let fields: Vec<(String, String)> = form_or_refuse(&body)?;
        let csrf = fields
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.as_str());
        if !viewer.csrf_ok(csrf) {
            return Err(PageError::new(StatusCode::FORBIDDEN, "error-csrf"));
        }
        let op = parse(&fields).map_err(|key| PageError::new(StatusCode::BAD_REQUEST, key))?;
        let needs = match op {
            Op::Stay => ProjectOp::Read,
            Op::Tag { .. } => ProjectOp::Push,
            Op::Untag(_) | Op::Delete(_) => ProjectOp::DeleteArtifacts,
        };
        let (project, _) = project_for(&web.app, &viewer.actor, &headers, &name, needs).await?;
        let repository: RepositoryName = format!("{}/{short}", project.name)
            .parse()
            .map_err(|_| PageError::new(StatusCode::NOT_FOUND, "error-not-found"))?;
        let registry = &web.app.registry;
        let initiator = viewer.initiator();
        let text = |key: &str| web.catalogues.text(viewer.locale, key, &[]);
        let refused: Option<(StatusCode, String)> = match op {
            Op::Stay => None,
            Op::Tag { digest, tag } => match tag.parse::<Tag>() {
                Err(e) => Some((
                    StatusCode::BAD_REQUEST,
                    format!("{}: {e}", text("artifact-tag-invalid")),
                )),
                Ok(tag) => match registry
                    .create_tag(&initiator, &repository, tag.as_str(), digest.as_str())
                    .await
                {
                    Ok(()) => None,
                    Err(ArtifactError::TagExists { .. }) => {
                        Some((StatusCode::CONFLICT, text("artifact-tag-exists")))
                    }
                    Err(e) => return Err(artifact_error(e)),
                },
            },
            Op::Untag(tag) => match registry.delete_tag(&initiator, &repository, &tag).await {
                Ok(()) | Err(ArtifactError::Unknown(_)) => None,
                Err(e) => return Err(artifact_error(e)),
            },
            Op::Delete(digests) if digests.is_empty() => {
                Some((StatusCode::BAD_REQUEST, text("artifact-none-selected")))
            }
            Op::Delete(digests) => {
                let mut refusal = None;
                for digest in digests {
                    match registry
                        .delete_manifest(&initiator, &repository, &digest)
                        .await
                    {
                        Ok(()) | Err(ArtifactError::Unknown(_)) => {}
                        Err(ArtifactError::ReferencedBy { .. }) => {
                            refusal =
                                Some((StatusCode::PRECONDITION_FAILED, text("artifact-in-index")));
                        }
                        Err(e) => return Err(artifact_error(e)),
                    }
                }
                refusal
            }
        };
        match refused {
            None => Ok(see_other(
                &format!(
                    "/projects/{}/repositories/{short}",
                    crate::pages::urlencode(&project.name)
                ),
                viewer.headers(),
            )),
            Some((status, message)) => {
                repository_with(
                    &web,
                    &viewer,
                    &name,
                    &short,
                    ListQuery::default(),
                    &headers,
                    Some((status, message)),
                )
                .await
            }
        }
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

fn artifact_error(e: ArtifactError) -> PageError {
    match e {
        ArtifactError::Meta(m) => ApiError::from(m).into(),
        _ => PageError::new(StatusCode::BAD_REQUEST, "error-forbidden"),
    }
}
