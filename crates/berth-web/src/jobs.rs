//! The job system, for system administrators: the queues (pending and running jobs per kind;
//! pause, resume, stop a kind), the nodes running workers, the schedules, the executions
//! (newest first), and an execution's jobs with their logs (stop the execution or one job).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_api::management::ApiError;
use berth_meta::{Execution, JobFilter, Page};
use berth_registry::JobsError;
use berth_registry::jobs::KINDS;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Web;
use crate::i18n::iso;
use crate::pages::{
    ListQuery, PageError, TokenOnly, checked_form, error_page, page_of, pages, render, see_other,
};
use crate::session::Viewer;

/// Most jobs of an execution shown, and most log lines of a job (its latest).
const SHOWN: u64 = 500;

impl From<JobsError> for PageError {
    fn from(e: JobsError) -> Self {
        match e {
            JobsError::NotFound(_) => PageError::new(StatusCode::NOT_FOUND, "error-not-found"),
            JobsError::Invalid(m) => ApiError::bad_request(m).into(),
            JobsError::Meta(m) => m.into(),
        }
    }
}

/// A time in milliseconds, for the page: (text, ISO 8601).
fn when(viewer: &Viewer, ms: i64) -> (String, String) {
    let secs = ms.div_euclid(1000);
    (viewer.locale.datetime(secs), iso(secs))
}

#[derive(Serialize)]
struct ExecutionRow {
    id: i64,
    kind: String,
    trigger: String,
    created_by: String,
    status: &'static str,
    jobs: [u64; 6],
    started: (String, String),
    ended: Option<(String, String)>,
}

fn execution_row(viewer: &Viewer, e: &Execution) -> ExecutionRow {
    ExecutionRow {
        id: e.id,
        kind: e.kind.clone(),
        // The catalogue knows these; anything else came from an event.
        trigger: match e.trigger.as_str() {
            t @ ("manual" | "schedule") => t.to_owned(),
            _ => "event".to_owned(),
        },
        created_by: e.created_by.clone(),
        status: e.status(),
        jobs: e.jobs,
        started: when(viewer, e.created_at),
        ended: e.finished_at.map(|t| when(viewer, t)),
    }
}

/// `GET /admin/jobs`.
pub async fn overview(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let outcome = async {
        viewer.actor.require_admin()?;
        let meta = web.app.registry.meta();
        let now = web.app.registry.clock().unix_millis();
        let queues: Vec<_> = meta
            .job_queues(&KINDS, now)
            .await?
            .into_iter()
            .map(|q| {
                context! {
                    kind => q.kind, pending => q.pending, running => q.running,
                    paused => q.paused,
                    waiting => q.oldest_due.map(|t| (now - t).max(0) / 1000),
                }
            })
            .collect();
        // A node that has not reported for five minutes is gone (as in the API).
        let nodes: Vec<_> = meta
            .job_nodes(now - 300_000)
            .await?
            .into_iter()
            .map(|n| {
                context! {
                    node => n.node, host => n.host, workers => n.workers,
                    heartbeat => when(&viewer, n.heartbeat_at),
                }
            })
            .collect();
        let schedules: Vec<_> = meta
            .schedules()
            .await?
            .into_iter()
            .map(|s| {
                context! {
                    name => s.name, kind => s.kind, cron => s.cron, paused => s.paused,
                    next => when(&viewer, s.next_at),
                    last => s.last_at.map(|t| when(&viewer, t)),
                }
            })
            .collect();
        let (page, window) = page_of(q.page);
        let found = meta.list_executions(None, window).await?;
        let executions: Vec<ExecutionRow> = found
            .items
            .iter()
            .map(|e| execution_row(&viewer, e))
            .collect();
        Ok(render(
            &web,
            &viewer,
            StatusCode::OK,
            "jobs.html",
            context! {
                admin_tab => "jobs", queues => queues, nodes => nodes, schedules => schedules,
                executions => executions, page => page, pages => pages(found.total),
                page_query => "",
            },
        ))
    }
    .await;
    outcome.unwrap_or_else(|e: PageError| error_page(&web, &viewer, e))
}

#[derive(Deserialize, Default)]
pub struct ExecutionQuery {
    /// The job whose log is shown.
    job: Option<i64>,
}

/// `GET /admin/jobs/executions/{id}`: its jobs, and the log of one (`?job=`).
pub async fn execution(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<ExecutionQuery>,
) -> Response {
    let outcome = async {
        viewer.actor.require_admin()?;
        let not_found = || PageError::new(StatusCode::NOT_FOUND, "error-not-found");
        let id: i64 = id.parse().map_err(|_| not_found())?;
        let meta = web.app.registry.meta();
        let execution = meta.execution(id).await?.ok_or_else(not_found)?;
        let filter = JobFilter {
            execution_id: Some(id),
            ..JobFilter::default()
        };
        let window = Page {
            offset: 0,
            limit: SHOWN,
        };
        let jobs = meta.list_jobs(&filter, window).await?;
        let shown_job = q
            .job
            .or_else(|| (jobs.items.len() == 1).then(|| jobs.items[0].id));
        let mut log = None;
        if let Some(job) = shown_job {
            if !jobs.items.iter().any(|j| j.id == job) {
                return Err(not_found());
            }
            // The latest lines: a long job's end matters most.
            let mut lines = meta.job_log(job, window).await?;
            if lines.total > SHOWN {
                let latest = Page {
                    offset: lines.total - SHOWN,
                    limit: SHOWN,
                };
                lines = meta.job_log(job, latest).await?;
            }
            let lines: Vec<_> = lines
                .items
                .into_iter()
                .map(|l| {
                    context! { at => when(&viewer, l.at), level => l.level, message => l.message }
                })
                .collect();
            log = Some(context! { job => job, lines => lines });
        }
        let rows: Vec<_> = jobs
            .items
            .iter()
            .map(|j| {
                context! {
                    id => j.id, kind => j.kind, state => j.state.as_str(),
                    attempts => j.attempts, max_attempts => j.max_attempts,
                    node => j.holder, error => j.error, params => j.params,
                    stop_requested => j.stop_requested,
                    final_state => j.state.is_final(),
                    started => j.started_at.map(|t| when(&viewer, t)),
                    ended => j.finished_at.map(|t| when(&viewer, t)),
                }
            })
            .collect();
        Ok(render(
            &web,
            &viewer,
            StatusCode::OK,
            "execution.html",
            context! {
                admin_tab => "jobs", execution => execution_row(&viewer, &execution),
                jobs => rows, total_jobs => jobs.total, log => log,
            },
        ))
    }
    .await;
    outcome.unwrap_or_else(|e: PageError| error_page(&web, &viewer, e))
}

/// `POST /admin/jobs/{what}/{id}/{action}`: `queues/{kind}/pause|resume|stop`,
/// `executions/{id}/stop`, `jobs/{id}/stop`; back to where it was asked.
pub async fn act(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path((what, id, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let outcome = async {
        checked_form::<TokenOnly>(&viewer, &body)?;
        viewer.actor.require_admin()?;
        let registry = &web.app.registry;
        let not_found = || PageError::new(StatusCode::NOT_FOUND, "error-not-found");
        let number = || id.parse::<i64>().map_err(|_| not_found());
        let back = match (what.as_str(), action.as_str()) {
            ("queues", "pause" | "resume") => {
                registry.pause_kind(&id, action == "pause").await?;
                "/admin/jobs".to_owned()
            }
            ("queues", "stop") => {
                registry.stop_kind(&id).await?;
                "/admin/jobs".to_owned()
            }
            ("executions", "stop") => {
                let id = number()?;
                registry.stop_execution(id).await?;
                format!("/admin/jobs/executions/{id}")
            }
            ("jobs", "stop") => {
                let id = number()?;
                let job = registry.meta().job(id).await?.ok_or_else(not_found)?;
                registry.stop_job(id).await?;
                format!("/admin/jobs/executions/{}?job={id}", job.execution_id)
            }
            _ => return Err(not_found()),
        };
        Ok(see_other(&back, viewer.headers()))
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}
