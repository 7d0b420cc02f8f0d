//! Audit logs: a project's (developers and up, as in the API) and the whole registry's
//! (system administrators), newest first, filtered by user, operation, resource and a range
//! of days, paged.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_api::management::project_for;
use berth_auth::ProjectOp;
use berth_meta::{AuditField, AuditQuery, AuditTerm, AuditValue};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Web;
use crate::i18n::{iso, parse_day};
use crate::pages::{PageError, error_page, page_of, pages, render, urlencode};
use crate::session::Viewer;

/// The operations the filter offers (the audit log's words).
const OPERATIONS: [&str; 6] = ["create", "update", "delete", "pull", "login", "logout"];

/// The filters of a log page, as the form sends them.
#[derive(Deserialize, Default, Serialize, Clone)]
pub struct LogFilters {
    #[serde(default)]
    user: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default, skip_serializing)]
    page: Option<u64>,
}

impl LogFilters {
    /// The query's terms, or the message key of the field that is wrong.
    fn terms(&self) -> Result<Vec<AuditTerm>, &'static str> {
        let mut terms = Vec::new();
        if !self.user.trim().is_empty() {
            terms.push(AuditTerm::Contains(
                AuditField::Username,
                self.user.trim().to_owned(),
            ));
        }
        if !self.operation.is_empty() {
            if !OPERATIONS.contains(&self.operation.as_str()) {
                return Err("logs-bad-operation");
            }
            terms.push(AuditTerm::Equals(
                AuditField::Operation,
                AuditValue::Text(self.operation.clone()),
            ));
        }
        if !self.resource.trim().is_empty() {
            terms.push(AuditTerm::Contains(
                AuditField::Resource,
                self.resource.trim().to_owned(),
            ));
        }
        let day = |s: &str| -> Result<Option<i64>, &'static str> {
            match s.trim() {
                "" => Ok(None),
                d => parse_day(d).map(Some).ok_or("logs-bad-date"),
            }
        };
        let from = day(&self.from)?.map(|s| AuditValue::Int(s * 1000));
        let to = day(&self.to)?.map(|s| AuditValue::Int((s + 86_400) * 1000 - 1));
        if from.is_some() || to.is_some() {
            terms.push(AuditTerm::Range(AuditField::OpTime, from, to));
        }
        Ok(terms)
    }

    /// The filters as a query string prefix for paging links (`user=…&`).
    fn page_query(&self) -> String {
        let mut out = String::new();
        for (k, v) in [
            ("user", &self.user),
            ("operation", &self.operation),
            ("resource", &self.resource),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                out.push_str(&format!("{k}={}&", urlencode(v)));
            }
        }
        out
    }
}

/// The project of a project's log, and the tabs its viewer sees.
struct ProjectTabs {
    id: i64,
    name: String,
    members: bool,
    robots: bool,
    update: bool,
}

#[derive(Serialize)]
struct LogRow {
    time: String,
    time_iso: String,
    user: String,
    operation: String,
    resource_type: String,
    resource: String,
    address: String,
    success: bool,
    detail: Option<String>,
}

async fn page(
    web: &Web,
    viewer: &Viewer,
    project: Option<ProjectTabs>,
    filters: LogFilters,
) -> Result<Response, PageError> {
    let (page, window) = page_of(filters.page);
    let (terms, error) = match filters.terms() {
        Ok(t) => (t, None),
        Err(key) => (
            Vec::new(),
            Some(web.catalogues.text(viewer.locale, key, &[])),
        ),
    };
    let query = AuditQuery {
        project_id: project.as_ref().map(|p| p.id),
        terms,
        sort: Vec::new(),
    };
    let found = if error.is_some() {
        None
    } else {
        Some(web.app.registry.meta().audit_log(&query, window).await?)
    };
    let (rows, total): (Vec<LogRow>, u64) = match found {
        None => (Vec::new(), 0),
        Some(f) => (
            f.items
                .iter()
                .map(|r| {
                    let e = &r.entry;
                    LogRow {
                        time: viewer.locale.datetime(e.op_time.div_euclid(1000)),
                        time_iso: iso(e.op_time.div_euclid(1000)),
                        user: e.username.clone(),
                        operation: e.operation.clone(),
                        resource_type: e.resource_type.clone(),
                        resource: e.resource.clone(),
                        address: e.client_address.clone(),
                        success: e.outcome == "success",
                        detail: e.detail.clone(),
                    }
                })
                .collect(),
            f.total,
        ),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        web,
        viewer,
        status,
        "logs.html",
        context! {
            project => project.as_ref().map(|p| context! { name => p.name.clone() }),
            may_read_members => project.as_ref().is_some_and(|p| p.members),
            may_read_robots => project.as_ref().is_some_and(|p| p.robots),
            may_read_logs => true, tab => "logs", admin_tab => "audit",
            may_update => project.as_ref().is_some_and(|p| p.update),
            entries => rows, total => total, error => error, operations => OPERATIONS,
            filters => filters.clone(), page => page, pages => pages(total),
            page_query => filters.page_query(),
        },
    ))
}

/// `GET /projects/{name}/logs`.
pub async fn project(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(filters): Query<LogFilters>,
    headers: HeaderMap,
) -> Response {
    let outcome = async {
        let (project, standing) = project_for(
            &web.app,
            &viewer.actor,
            &headers,
            &name,
            ProjectOp::ReadLogs,
        )
        .await?;
        let tabs = ProjectTabs {
            id: project.id,
            name: project.name,
            members: standing.may(ProjectOp::ReadMembers),
            robots: standing.may(ProjectOp::ReadRobots),
            update: standing.may(ProjectOp::Update),
        };
        page(&web, &viewer, Some(tabs), filters).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// `GET /admin/audit`: every entry (system administrators).
pub async fn all(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Query(filters): Query<LogFilters>,
) -> Response {
    let outcome = async {
        if let Err(e) = viewer.actor.require_admin() {
            return Err(e.into());
        }
        page(&web, &viewer, None, filters).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}
