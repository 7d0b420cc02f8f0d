//! A project's members: listed for those who may read them, added (a user by name, or an
//! LDAP group by DN), re-roled and removed by project admins. Controls a viewer may not use
//! are not shown, and every form is checked again on the server.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_api::management::{ApiError, project_for};
use berth_auth::{ProjectOp, Role};
use berth_meta::{Member, MemberEntity, Project};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Web;
use crate::pages::{
    ListQuery, PageError, error_page, form_or_refuse, page_of, pages, project_for_change, render,
    see_other, urlencode,
};
use crate::session::Viewer;

#[derive(Serialize)]
struct RoleOption {
    id: i64,
    key: String,
}

#[derive(Serialize)]
struct MemberRow {
    id: i64,
    name: String,
    group: bool,
    role_key: Option<String>,
}

fn role_options() -> Vec<RoleOption> {
    Role::ALL
        .into_iter()
        .map(|r| RoleOption {
            id: r.id(),
            key: format!("role-{}", r.as_str()),
        })
        .collect()
}

/// What the add form shows again after a refusal.
#[derive(Default)]
struct AddForm {
    member: String,
    error: Option<String>,
    status: Option<StatusCode>,
}

/// `GET /projects/{name}/members`.
pub async fn list(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    match page(&web, &viewer, &name, q.page, &headers, AddForm::default()).await {
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
    add: AddForm,
) -> Result<Response, PageError> {
    let (project, standing) = project_for(
        &web.app,
        &viewer.actor,
        headers,
        name,
        ProjectOp::ReadMembers,
    )
    .await?;
    let (page, window) = page_of(page_number);
    let found = web
        .app
        .registry
        .meta()
        .list_members(project.id, None, window)
        .await?;
    let rows: Vec<MemberRow> = found
        .items
        .iter()
        .map(|m| MemberRow {
            id: m.id,
            name: m.entity_name.clone(),
            group: matches!(m.entity, MemberEntity::Group(_)),
            role_key: m
                .role
                .parse::<Role>()
                .ok()
                .map(|r| format!("role-{}", r.as_str())),
        })
        .collect();
    Ok(render(
        web,
        viewer,
        add.status.unwrap_or(StatusCode::OK),
        "members.html",
        context! {
            project => context! { name => project.name, public => project.public },
            tab => "members", may_read_members => true,
            may_read_robots => standing.may(ProjectOp::ReadRobots),
            may_read_logs => standing.may(ProjectOp::ReadLogs),
            may_update => standing.may(ProjectOp::Update),
            may_manage => standing.may(ProjectOp::ManageMembers),
            members => rows, roles => role_options(), new_member => add.member,
            add_error => add.error, page => page, pages => pages(found.total), page_query => "",
        },
    ))
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    #[serde(default)]
    member: String,
    role: Option<i64>,
}

fn back(project: &str, viewer: &Viewer) -> Response {
    see_other(
        &format!("/projects/{}/members", urlencode(project)),
        viewer.headers(),
    )
}

/// `POST /projects/{name}/members`: `member` (a user name, or a group DN: anything with `=`)
/// and `role` (Harbor's role id).
pub async fn add(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = async {
        let f: MemberForm = form_or_refuse(&body)?;
        let project = project_for_change(
            &web,
            &viewer,
            &name,
            f.csrf.as_deref(),
            &headers,
            ProjectOp::ManageMembers,
        )
        .await?;
        let role = f
            .role
            .and_then(Role::from_id)
            .ok_or_else(|| PageError::new(StatusCode::BAD_REQUEST, "error-forbidden"))?;
        let member = f.member.trim().to_owned();
        let refused = |status, error: String| AddForm {
            member: member.clone(),
            error: Some(error),
            status: Some(status),
        };
        let text = |key: &str| {
            let name = fluent_bundle::FluentValue::from(member.clone());
            web.catalogues.text(viewer.locale, key, &[("name", name)])
        };
        let entity = if member.contains('=') {
            Ok(MemberEntity::Group(member.clone()))
        } else {
            match web.app.registry.meta().user(&member).await? {
                Some(u) => Ok(MemberEntity::User(u.id)),
                None => Err(refused(
                    StatusCode::BAD_REQUEST,
                    text("members-unknown-user"),
                )),
            }
        };
        let refusal = match entity {
            Err(r) => r,
            Ok(entity) => {
                let added = web
                    .app
                    .registry
                    .add_member(&viewer.initiator(), &project, &entity, &member, role)
                    .await;
                match added {
                    Ok(_) => return Ok(back(&project.name, &viewer)),
                    Err(berth_registry::Error::Conflict(_)) => {
                        refused(StatusCode::CONFLICT, text("members-exists"))
                    }
                    Err(berth_registry::Error::Invalid(m)) => refused(StatusCode::BAD_REQUEST, m),
                    Err(e) => return Err(ApiError::from(e).into()),
                }
            }
        };
        self::page(&web, &viewer, &project.name, None, &headers, refusal).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// The member `id` of `project`, or a 404.
async fn member(web: &Web, project: &Project, id: &str) -> Result<Member, PageError> {
    let id: i64 = id
        .parse()
        .map_err(|_| PageError::new(StatusCode::NOT_FOUND, "error-not-found"))?;
    web.app
        .registry
        .meta()
        .member(project.id, id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "error-not-found"))
}

/// `POST /projects/{name}/members/{id}/{action}`: `role` (with `role`, Harbor's role id)
/// or `remove`.
pub async fn act(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path((name, id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = async {
        let f: MemberForm = form_or_refuse(&body)?;
        let project = project_for_change(
            &web,
            &viewer,
            &name,
            f.csrf.as_deref(),
            &headers,
            ProjectOp::ManageMembers,
        )
        .await?;
        let member = member(&web, &project, &id).await?;
        let registry = &web.app.registry;
        let done = match action.as_str() {
            "role" => {
                let role = f
                    .role
                    .and_then(Role::from_id)
                    .ok_or_else(|| PageError::new(StatusCode::BAD_REQUEST, "error-forbidden"))?;
                registry
                    .set_member_role(&viewer.initiator(), &project, &member, role)
                    .await
            }
            "remove" => {
                registry
                    .remove_member(&viewer.initiator(), &project, &member)
                    .await
            }
            _ => return Err(PageError::new(StatusCode::NOT_FOUND, "error-not-found")),
        };
        done.map_err(ApiError::from)?;
        Ok(back(&project.name, &viewer))
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}
