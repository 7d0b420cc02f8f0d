//! A project's robot accounts: listed for those who may read them; created (the secret shown
//! once), given a new secret (shown once), disabled or enabled, and deleted by project admins.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_api::management::{ApiError, project_for};
use berth_auth::ProjectOp;
use berth_core::Action;
use berth_meta::{Project, Robot};
use berth_registry::robots::Requested;
use berth_registry::{RobotChange, RobotRequest, RobotScope};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Web;
use crate::i18n::iso;
use crate::pages::{
    ListQuery, PageError, error_page, form_or_refuse, page_of, pages, project_for_change, render,
    see_other, urlencode,
};
use crate::session::Viewer;

#[derive(Serialize)]
struct RobotRow {
    id: i64,
    name: String,
    description: String,
    actions: Vec<&'static str>,
    disabled: bool,
    expires: Option<String>,
    expires_iso: Option<String>,
}

/// What the page shows besides the list: a secret just made, or a refused form.
#[derive(Default)]
struct Outcome {
    secret: Option<(String, String)>,
    form_name: String,
    error: Option<String>,
    status: Option<StatusCode>,
}

/// `GET /projects/{name}/robots`.
pub async fn list(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    match page(&web, &viewer, &name, q.page, &headers, Outcome::default()).await {
        Ok(r) => r,
        Err(e) => error_page(&web, &viewer, e),
    }
}

async fn page(
    web: &Web,
    viewer: &Viewer,
    name: &str,
    page_number: Option<u64>,
    headers: &HeaderMap,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let (project, standing) = project_for(
        &web.app,
        &viewer.actor,
        headers,
        name,
        ProjectOp::ReadRobots,
    )
    .await?;
    let (page, window) = page_of(page_number);
    let found = web
        .app
        .registry
        .meta()
        .list_robots(Some(project.id), window)
        .await?;
    let rows: Vec<RobotRow> = found
        .items
        .iter()
        .map(|r| RobotRow {
            id: r.id,
            name: r.name.clone(),
            description: r.description.clone(),
            actions: r
                .grants
                .iter()
                .flat_map(|g| g.actions.iter().map(|a| a.as_str()))
                .collect(),
            disabled: r.disabled,
            expires: r.expires_at.map(|t| viewer.locale.datetime(t)),
            expires_iso: r.expires_at.map(iso),
        })
        .collect();
    let (secret_name, secret) = outcome.secret.unzip();
    Ok(render(
        web,
        viewer,
        outcome.status.unwrap_or(StatusCode::OK),
        "robots.html",
        context! {
            project => context! { name => project.name, public => project.public },
            tab => "robots", may_read_members => standing.may(ProjectOp::ReadMembers),
            may_read_robots => true, may_manage => standing.may(ProjectOp::ManageRobots),
            may_read_logs => standing.may(ProjectOp::ReadLogs),
            may_update => standing.may(ProjectOp::Update),
            robots => rows, secret_name => secret_name, secret => secret,
            form_name => outcome.form_name, form_error => outcome.error,
            page => page, pages => pages(found.total), page_query => "",
        },
    ))
}

#[derive(Deserialize)]
struct RobotForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    duration: Option<String>,
    pull: Option<String>,
    push: Option<String>,
    delete: Option<String>,
}

/// `POST /projects/{name}/robots`: creates a robot and shows its secret, once (never in a
/// URL, never cached).
pub async fn create(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = async {
        let f: RobotForm = form_or_refuse(&body)?;
        let project = project_for_change(
            &web,
            &viewer,
            &name,
            f.csrf.as_deref(),
            &headers,
            ProjectOp::ManageRobots,
        )
        .await?;
        let mut actions = Vec::new();
        for (on, action) in [
            (&f.pull, Action::Pull),
            (&f.push, Action::Push),
            (&f.delete, Action::Delete),
        ] {
            if on.is_some() {
                actions.push(action);
            }
        }
        let refused = |error: String| Outcome {
            form_name: f.name.clone(),
            error: Some(error),
            status: Some(StatusCode::BAD_REQUEST),
            ..Outcome::default()
        };
        let duration = match f
            .duration
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            None => None,
            Some(d) => match d.parse::<i64>() {
                Ok(days) => Some(days),
                Err(_) => {
                    let text = web
                        .catalogues
                        .text(viewer.locale, "robots-duration-invalid", &[]);
                    return page(&web, &viewer, &project.name, None, &headers, refused(text)).await;
                }
            },
        };
        if actions.contains(&Action::Push) && !actions.contains(&Action::Pull) {
            actions.insert(0, Action::Pull);
        }
        let request = RobotRequest {
            name: f.name.trim().to_owned(),
            description: f.description.clone(),
            duration,
            disabled: false,
            permissions: vec![Requested {
                namespace: project.name.clone(),
                actions,
            }],
        };
        let created = web
            .app
            .registry
            .create_robot(&viewer.initiator(), RobotScope::Project(&project), request)
            .await;
        let shown = match created {
            Ok(robot) => Outcome {
                secret: Some((robot.name, robot.secret)),
                ..Outcome::default()
            },
            Err(berth_registry::Error::Invalid(m) | berth_registry::Error::Conflict(m)) => {
                refused(m)
            }
            Err(e) => return Err(ApiError::from(e).into()),
        };
        page(&web, &viewer, &project.name, None, &headers, shown).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

#[derive(Deserialize)]
struct TokenOnly {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// The robot `id` of `project`, or a 404.
async fn robot(web: &Web, project: &Project, id: &str) -> Result<Robot, PageError> {
    let not_found = || PageError::new(StatusCode::NOT_FOUND, "error-not-found");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let robot = web
        .app
        .registry
        .meta()
        .robot_by_id(id)
        .await?
        .ok_or_else(not_found)?;
    if robot.project_id != Some(project.id) {
        return Err(not_found());
    }
    Ok(robot)
}

/// `POST /projects/{name}/robots/{id}/{action}`: `refresh` (a new secret, shown once),
/// `disable`, `enable` or `delete`.
pub async fn act(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path((name, id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = async {
        let f: TokenOnly = form_or_refuse(&body)?;
        let project = project_for_change(
            &web,
            &viewer,
            &name,
            f.csrf.as_deref(),
            &headers,
            ProjectOp::ManageRobots,
        )
        .await?;
        let robot = robot(&web, &project, &id).await?;
        let registry = &web.app.registry;
        let initiator = viewer.initiator();
        let back = see_other(
            &format!("/projects/{}/robots", urlencode(&project.name)),
            viewer.headers(),
        );
        match action.as_str() {
            "refresh" => {
                let secret = registry
                    .refresh_robot_secret(&initiator, &robot, None)
                    .await
                    .map_err(ApiError::from)?;
                let shown = Outcome {
                    secret: Some((robot.name.clone(), secret)),
                    ..Outcome::default()
                };
                page(&web, &viewer, &project.name, None, &headers, shown).await
            }
            "disable" | "enable" => {
                let change = RobotChange {
                    disabled: Some(action == "disable"),
                    ..RobotChange::default()
                };
                registry
                    .update_robot(&initiator, &robot, change)
                    .await
                    .map_err(ApiError::from)?;
                Ok(back)
            }
            "delete" => {
                registry
                    .delete_robot(&initiator, &robot)
                    .await
                    .map_err(ApiError::from)?;
                Ok(back)
            }
            _ => Err(PageError::new(StatusCode::NOT_FOUND, "error-not-found")),
        }
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}
