//! A project's settings: who may pull (the public flag), and deleting the project, refused
//! with the reason while it has repositories.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_api::management::{ApiError, project_for};
use berth_auth::ProjectOp;
use berth_meta::Page;
use minijinja::context;
use serde::Deserialize;

use crate::Web;
use crate::pages::{
    PageError, SavedQuery, error_page, form_or_refuse, project_for_change, render, see_other,
    urlencode,
};
use crate::session::Viewer;

/// `GET /projects/{name}/settings` (project admins).
pub async fn show(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<SavedQuery>,
    headers: HeaderMap,
) -> Response {
    page(&web, &viewer, &name, &headers, q.saved.is_some(), None)
        .await
        .unwrap_or_else(|e| error_page(&web, &viewer, e))
}

async fn page(
    web: &Web,
    viewer: &Viewer,
    name: &str,
    headers: &HeaderMap,
    saved: bool,
    delete_error: Option<String>,
) -> Result<Response, PageError> {
    let (project, standing) =
        project_for(&web.app, &viewer.actor, headers, name, ProjectOp::Update).await?;
    let status = if delete_error.is_some() {
        StatusCode::PRECONDITION_FAILED
    } else {
        StatusCode::OK
    };
    Ok(render(
        web,
        viewer,
        status,
        "settings.html",
        context! {
            project => context! { name => project.name, public => project.public },
            tab => "settings", may_update => true,
            may_read_members => standing.may(ProjectOp::ReadMembers),
            may_read_robots => standing.may(ProjectOp::ReadRobots),
            may_read_logs => standing.may(ProjectOp::ReadLogs),
            may_delete => standing.may(ProjectOp::Delete),
            saved => saved, delete_error => delete_error,
        },
    ))
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    op: Option<String>,
    public: Option<String>,
}

/// `POST /projects/{name}/settings`: `op=visibility` (with `public`) or `op=delete`.
pub async fn change(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = async {
        let f: SettingsForm = form_or_refuse(&body)?;
        let csrf = f.csrf.as_deref();
        let initiator = viewer.initiator();
        match f.op.as_deref() {
            Some("visibility") => {
                let project =
                    project_for_change(&web, &viewer, &name, csrf, &headers, ProjectOp::Update)
                        .await?;
                let public = f.public.as_deref() == Some("true");
                web.app
                    .registry
                    .set_project_public(&initiator, &project, public)
                    .await
                    .map_err(ApiError::from)?;
                Ok(see_other(
                    &format!("/projects/{}/settings?saved=1", urlencode(&project.name)),
                    viewer.headers(),
                ))
            }
            Some("delete") => {
                let project =
                    project_for_change(&web, &viewer, &name, csrf, &headers, ProjectOp::Delete)
                        .await?;
                match web.app.registry.delete_project(&initiator, &project).await {
                    Ok(()) => Ok(see_other("/projects", viewer.headers())),
                    Err(berth_registry::Error::Precondition(_)) => {
                        let count = web
                            .app
                            .registry
                            .meta()
                            .list_repository_summaries(
                                Some(std::slice::from_ref(&project.name)),
                                None,
                                Page {
                                    offset: 0,
                                    limit: 1,
                                },
                            )
                            .await?
                            .total;
                        let count = fluent_bundle::FluentValue::from(count as i64);
                        let reason = web.catalogues.text(
                            viewer.locale,
                            "settings-not-empty",
                            &[("count", count)],
                        );
                        page(&web, &viewer, &project.name, &headers, false, Some(reason)).await
                    }
                    Err(e) => Err(ApiError::from(e).into()),
                }
            }
            _ => Err(PageError::new(StatusCode::BAD_REQUEST, "error-csrf")),
        }
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}
