//! Robot accounts. A project's: listed for those who may read them; created (the secret shown
//! once), given a new secret (shown once), disabled or enabled, and deleted by project admins.
//! System robots (administration, for system administrators): the same, with permissions in
//! named projects or in every project (`*`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_api::management::{ApiError, project_for};
use berth_auth::{ProjectOp, Standing};
use berth_core::Action;
use berth_meta::{Project, Robot, RobotsOf};
use berth_registry::robots::Requested;
use berth_registry::{RobotChange, RobotRequest, RobotScope};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Web;
use crate::i18n::iso;
use crate::pages::{
    ListQuery, PageError, TokenOnly, checked_form, error_page, page_of, pages, render, see_other,
    urlencode,
};
use crate::session::Viewer;

#[derive(Serialize)]
struct RobotRow {
    id: i64,
    name: String,
    description: String,
    /// Per project (system robots: by name, `*` for every project): the actions.
    grants: Vec<(String, Vec<&'static str>)>,
    disabled: bool,
    expires: Option<String>,
    expires_iso: Option<String>,
}

/// What the page shows besides the list: a secret just made, or a refused form.
#[derive(Default)]
struct Outcome {
    secret: Option<(String, String)>,
    form_name: String,
    form_projects: String,
    error: Option<String>,
    status: Option<StatusCode>,
}

/// Where robots live: a project (as the viewer stands in it), or the system.
enum Place {
    Project(Project, Standing),
    System,
}

impl Place {
    /// The project `name` if the viewer may do `op` there.
    async fn project(
        web: &Web,
        viewer: &Viewer,
        name: &str,
        headers: &HeaderMap,
        op: ProjectOp,
    ) -> Result<Self, PageError> {
        let (project, standing) = project_for(&web.app, &viewer.actor, headers, name, op).await?;
        Ok(Self::Project(project, standing))
    }

    /// The system, if the viewer is a system administrator.
    fn system(viewer: &Viewer) -> Result<Self, PageError> {
        viewer.actor.require_admin()?;
        Ok(Self::System)
    }

    /// The page listing this place's robots.
    fn path(&self) -> String {
        match self {
            Self::Project(p, _) => format!("/projects/{}/robots", urlencode(&p.name)),
            Self::System => "/admin/robots".to_owned(),
        }
    }
}

/// `GET /projects/{name}/robots`.
pub async fn list(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let outcome = async {
        let place = Place::project(&web, &viewer, &name, &headers, ProjectOp::ReadRobots).await?;
        page(&web, &viewer, &place, q.page, Outcome::default()).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// `GET /admin/robots`: the system robots.
pub async fn system_list(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let outcome = async {
        let place = Place::system(&viewer)?;
        page(&web, &viewer, &place, q.page, Outcome::default()).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// The names of the projects `robots` hold grants in, looked up once each.
async fn project_names(
    web: &Web,
    robots: &[Robot],
) -> Result<std::collections::HashMap<i64, String>, PageError> {
    let mut names = std::collections::HashMap::new();
    let mut ids: Vec<i64> = Vec::new();
    for robot in robots {
        ids.extend(robot.grants.iter().filter_map(|g| g.project_id));
    }
    for id in ids {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
            let name = web.app.registry.meta().project_by_id(id).await?;
            slot.insert(name.map_or_else(|| id.to_string(), |p| p.name));
        }
    }
    Ok(names)
}

async fn page(
    web: &Web,
    viewer: &Viewer,
    place: &Place,
    page_number: Option<u64>,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let (page, window) = page_of(page_number);
    let of = match place {
        Place::Project(p, _) => RobotsOf::Project(p.id),
        Place::System => RobotsOf::System,
    };
    let found = web.app.registry.meta().list_robots(of, window).await?;
    let names = match place {
        Place::Project(..) => Default::default(),
        Place::System => project_names(web, &found.items).await?,
    };
    let rows: Vec<RobotRow> = found
        .items
        .iter()
        .map(|r| RobotRow {
            id: r.id,
            name: r.name.clone(),
            description: r.description.clone(),
            grants: r
                .grants
                .iter()
                .map(|g| {
                    let project = g.project_id.map_or_else(
                        || "*".to_owned(),
                        |id| names.get(&id).cloned().unwrap_or_default(),
                    );
                    (project, g.actions.iter().map(|a| a.as_str()).collect())
                })
                .collect(),
            disabled: r.disabled,
            expires: r.expires_at.map(|t| viewer.locale.datetime(t)),
            expires_iso: r.expires_at.map(iso),
        })
        .collect();
    let (secret_name, secret) = outcome.secret.unzip();
    let values = context! {
        robots => rows, secret_name => secret_name, secret => secret,
        form_name => outcome.form_name, form_projects => outcome.form_projects,
        form_error => outcome.error, action => place.path(),
        page => page, pages => pages(found.total), page_query => "",
    };
    let place_values = match place {
        Place::Project(project, standing) => context! {
            project => context! { name => project.name, public => project.public },
            tab => "robots", may_read_members => standing.may(ProjectOp::ReadMembers),
            may_read_robots => true, may_manage => standing.may(ProjectOp::ManageRobots),
            may_read_logs => standing.may(ProjectOp::ReadLogs),
            may_update => standing.may(ProjectOp::Update),
        },
        Place::System => context! { admin_tab => "robots", may_manage => true },
    };
    Ok(render(
        web,
        viewer,
        outcome.status.unwrap_or(StatusCode::OK),
        "robots.html",
        context! { ..values, ..place_values },
    ))
}

#[derive(Deserialize)]
struct RobotForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    duration: Option<String>,
    /// System robots: the projects, by name, separated by spaces or commas; `*`: every one.
    #[serde(default)]
    projects: String,
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
        let f: RobotForm = checked_form(&viewer, &body)?;
        let place = Place::project(&web, &viewer, &name, &headers, ProjectOp::ManageRobots).await?;
        create_in(&web, &viewer, &place, f).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// `POST /admin/robots`: creates a system robot and shows its secret, once.
pub async fn system_create(State(web): State<Arc<Web>>, viewer: Viewer, body: Bytes) -> Response {
    let outcome = async {
        let f: RobotForm = checked_form(&viewer, &body)?;
        let place = Place::system(&viewer)?;
        create_in(&web, &viewer, &place, f).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// Creates the robot `f` asks for at `place` (the caller checked the token and the right).
async fn create_in(
    web: &Web,
    viewer: &Viewer,
    place: &Place,
    f: RobotForm,
) -> Result<Response, PageError> {
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
        form_projects: f.projects.clone(),
        error: Some(error),
        status: Some(StatusCode::BAD_REQUEST),
        ..Outcome::default()
    };
    let text = |key: &str| web.catalogues.text(viewer.locale, key, &[]);
    let duration = match f
        .duration
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => None,
        Some(d) => match d.parse::<i64>() {
            Ok(days) if web.app.registry.robot_expiry(Some(days)).is_ok() => Some(days),
            _ => {
                return page(
                    web,
                    viewer,
                    place,
                    None,
                    refused(text("robots-duration-invalid")),
                )
                .await;
            }
        },
    };
    if actions.contains(&Action::Push) && !actions.contains(&Action::Pull) {
        actions.insert(0, Action::Pull);
    }
    let namespaces: Vec<String> = match place {
        Place::Project(project, _) => vec![project.name.clone()],
        Place::System => f
            .projects
            .split([' ', ',', '\n', '\r', '\t'])
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    if namespaces.is_empty() {
        return page(
            web,
            viewer,
            place,
            None,
            refused(text("robots-projects-missing")),
        )
        .await;
    }
    let name = f.name.trim();
    if !berth_core::name::is_simple_name(name, berth_registry::robots::MAX_ROBOT_NAME_LEN) {
        return page(
            web,
            viewer,
            place,
            None,
            refused(text("robots-name-invalid")),
        )
        .await;
    }
    for namespace in namespaces.iter().filter(|n| *n != "*") {
        if web.app.registry.meta().project(namespace).await?.is_none() {
            let project = fluent_bundle::FluentValue::from(namespace.clone());
            let message = web.catalogues.text(
                viewer.locale,
                "robots-project-unknown",
                &[("project", project)],
            );
            return page(web, viewer, place, None, refused(message)).await;
        }
    }
    let request = RobotRequest {
        name: name.to_owned(),
        description: f.description.clone(),
        duration,
        disabled: false,
        permissions: namespaces
            .into_iter()
            .map(|namespace| Requested {
                namespace,
                actions: actions.clone(),
            })
            .collect(),
    };
    let scope = match place {
        Place::Project(project, _) => RobotScope::Project(project),
        Place::System => RobotScope::System,
    };
    let created = web
        .app
        .registry
        .create_robot(&viewer.initiator(), scope, request)
        .await;
    let shown = match created {
        Ok(robot) => Outcome {
            secret: Some((robot.name, robot.secret)),
            ..Outcome::default()
        },
        Err(berth_registry::Error::Conflict(_)) => refused(text("robots-exists")),
        // What the checks above leave: a project deleted meanwhile, a lifetime out of range.
        Err(berth_registry::Error::Invalid(m)) => refused(m),
        Err(e) => return Err(ApiError::from(e).into()),
    };
    page(web, viewer, place, None, shown).await
}

/// The robot `id` of `place`, or a 404.
async fn robot(web: &Web, place: &Place, id: &str) -> Result<Robot, PageError> {
    let not_found = || PageError::new(StatusCode::NOT_FOUND, "error-not-found");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let robot = web
        .app
        .registry
        .meta()
        .robot_by_id(id)
        .await?
        .ok_or_else(not_found)?;
    let owner = match place {
        Place::Project(project, _) => Some(project.id),
        Place::System => None,
    };
    if robot.project_id != owner {
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
        checked_form::<TokenOnly>(&viewer, &body)?;
        let place = Place::project(&web, &viewer, &name, &headers, ProjectOp::ManageRobots).await?;
        act_in(&web, &viewer, &place, &id, &action).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// `POST /admin/robots/{id}/{action}`: as for a project's, on a system robot.
pub async fn system_act(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let outcome = async {
        checked_form::<TokenOnly>(&viewer, &body)?;
        let place = Place::system(&viewer)?;
        act_in(&web, &viewer, &place, &id, &action).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// Does `action` to robot `id` of `place` (the caller checked the token and the right).
async fn act_in(
    web: &Web,
    viewer: &Viewer,
    place: &Place,
    id: &str,
    action: &str,
) -> Result<Response, PageError> {
    let robot = robot(web, place, id).await?;
    let registry = &web.app.registry;
    let initiator = viewer.initiator();
    let back = see_other(&place.path(), viewer.headers());
    match action {
        "refresh" => {
            let secret = registry
                .refresh_robot_secret(&initiator, &robot, None)
                .await
                .map_err(ApiError::from)?;
            let shown = Outcome {
                secret: Some((robot.name.clone(), secret)),
                ..Outcome::default()
            };
            page(web, viewer, place, None, shown).await
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
