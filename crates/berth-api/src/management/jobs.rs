//! The job service, for system administrators, in Harbor's shapes: `/jobservice/pools`
//! (nodes), `/jobservice/pools/{pool}/workers` (the jobs a node runs), `/jobservice/queues`
//! (pending jobs per kind; stop, pause, resume a kind), `/jobservice/jobs/{id}` (stop) and its
//! log; and, in the execution/task/log pattern Harbor uses for replication and GC, Berth's
//! `/jobservice/executions[/{id}[/tasks[/{task}/log]]]`, `/jobservice/schedules`, and
//! Harbor's audit log purge under `/system/purgeaudit`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_meta::{Execution, Job, JobFilter, JobState, Page};
use berth_registry::JobsError;
use berth_registry::jobs::{AUDIT_PURGE, AuditPurgeParams, KINDS};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Actor, ApiError, ClientAddress, Paging, Query, id_param, json_body};
use crate::AppState;

/// Milliseconds as RFC 3339.
fn at(ms: i64) -> String {
    super::time(ms.div_euclid(1000))
}

fn opt_at(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| Value::String(at(m)))
}

impl From<JobsError> for ApiError {
    fn from(e: JobsError) -> Self {
        match e {
            JobsError::Invalid(m) => ApiError::bad_request(m),
            JobsError::NotFound(m) => ApiError::not_found(format!("{m} not found")),
            JobsError::Meta(m) => m.into(),
        }
    }
}

fn job_json(j: &Job) -> Value {
    json!({
        "id": j.id,
        "execution_id": j.execution_id,
        "kind": j.kind,
        "parameters": serde_json::from_str::<Value>(&j.params).unwrap_or(Value::Null),
        "status": j.state.as_str(),
        "attempts": j.attempts,
        "max_attempts": j.max_attempts,
        "run_at": at(j.run_at),
        "node": j.holder,
        "checkpoint": j.checkpoint.as_deref().and_then(|c| serde_json::from_str::<Value>(c).ok()),
        "stop_requested": j.stop_requested,
        "result": j.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
        "error": j.error,
        "creation_time": at(j.created_at),
        "start_time": opt_at(j.started_at),
        "end_time": opt_at(j.finished_at),
        "update_time": at(j.updated_at),
    })
}

fn execution_json(e: &Execution) -> Value {
    let [total, pending, running, succeeded, failed, stopped] = e.jobs;
    json!({
        "id": e.id,
        "vendor_type": e.kind,
        "trigger": e.trigger,
        "schedule": e.schedule,
        "created_by": e.created_by,
        "status": e.status(),
        "metrics": {
            "task_count": total,
            "pending_task_count": pending,
            "running_task_count": running,
            "success_task_count": succeeded,
            "error_task_count": failed,
            "stopped_task_count": stopped,
        },
        "start_time": at(e.created_at),
        "end_time": opt_at(e.finished_at),
    })
}

/// `GET /jobservice/pools`: the nodes running workers (a pool per node).
pub async fn pools(State(app): State<AppState>, actor: Actor) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let now = app.registry.clock().unix_millis();
    // A node that has not reported for five minutes is gone.
    let nodes = app.registry.meta().job_nodes(now - 300_000).await?;
    let items: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "worker_pool_id": n.node,
                "pid": 0,
                "host": n.host,
                "concurrency": n.workers,
                "start_at": at(n.started_at),
                "heartbeat_at": at(n.heartbeat_at),
            })
        })
        .collect();
    Ok(axum::Json(items).into_response())
}

/// `GET /jobservice/pools/{pool}/workers`: the jobs a node runs now.
pub async fn workers(
    State(app): State<AppState>,
    actor: Actor,
    Path(pool): Path<String>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let running = app
        .registry
        .meta()
        .list_jobs(
            &JobFilter {
                states: vec![JobState::Running],
                ..JobFilter::default()
            },
            Page {
                offset: 0,
                limit: 1000,
            },
        )
        .await?;
    let items: Vec<Value> = running
        .items
        .iter()
        .filter(|j| pool == "all" || j.holder.as_deref() == Some(pool.as_str()))
        .map(|j| {
            json!({
                "id": j.id.to_string(),
                "pool_id": j.holder,
                "job_name": j.kind,
                "job_id": j.id.to_string(),
                "start_at": opt_at(j.started_at),
                "check_in": "",
                "checkin_at": at(j.updated_at),
            })
        })
        .collect();
    Ok(axum::Json(items).into_response())
}

/// `GET /jobservice/queues`: pending jobs per kind, the latency of the oldest due one (in
/// seconds), and whether the kind is paused.
pub async fn queues(State(app): State<AppState>, actor: Actor) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let now = app.registry.clock().unix_millis();
    let queues = app.registry.meta().job_queues(&KINDS, now).await?;
    let items: Vec<Value> = queues
        .iter()
        .map(|q| {
            json!({
                "job_type": q.kind,
                "count": q.pending,
                "running": q.running,
                "latency": q.oldest_due.map_or(0, |t| (now - t).max(0) / 1000),
                "paused": q.paused,
            })
        })
        .collect();
    Ok(axum::Json(items).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    action: String,
}

/// Checks the body of a stop: `{"action": "stop"}`, or empty (Harbor's clients send none).
fn stop_request(body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    let request: ActionRequest = json_body(body)?;
    if request.action == "stop" {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "action {:?} is not stop",
            request.action
        )))
    }
}

/// `PUT /jobservice/queues/{job_type}`: `stop` (every pending and running job of the kind),
/// `pause` or `resume`; `all` for every kind.
pub async fn queue_action(
    State(app): State<AppState>,
    actor: Actor,
    Path(kind): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let request: ActionRequest = json_body(&body)?;
    let kinds: Vec<&str> = if kind == "all" {
        KINDS.to_vec()
    } else {
        vec![kind.as_str()]
    };
    for kind in kinds {
        match request.action.as_str() {
            "stop" => {
                app.registry.stop_kind(kind).await?;
            }
            "pause" => app.registry.pause_kind(kind, true).await?,
            "resume" => app.registry.pause_kind(kind, false).await?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "action {other:?} is not stop, pause or resume"
                )));
            }
        }
    }
    Ok(StatusCode::OK.into_response())
}

/// A filter value on a column of ASCII names: anything else cannot match, and is a mistake.
fn ascii_param(value: String, key: &str) -> Result<String, ApiError> {
    if value.is_ascii() {
        Ok(value)
    } else {
        Err(ApiError::bad_request(format!(
            "q: {key} takes ASCII values, not {value:?}"
        )))
    }
}

/// `GET /jobservice/jobs`: jobs, newest first (a Berth extension; `q=status=…,kind=…`).
pub async fn list_jobs(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let mut filter = JobFilter::default();
    for f in query.filters(&["status", "kind", "execution_id"])? {
        match f.key.as_str() {
            "status" => filter.states.push(JobState::parse(&f.value).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status {:?} is not pending, running, succeeded, failed or stopped",
                    f.value
                ))
            })?),
            "kind" => filter.kind = Some(ascii_param(f.value, "kind")?),
            _ => filter.execution_id = Some(id_param(&f.value, "execution_id")?),
        }
    }
    let page = app
        .registry
        .meta()
        .list_jobs(&filter, paging.page())
        .await?;
    let items: Vec<Value> = page.items.iter().map(job_json).collect();
    Ok(paging.respond(&uri, page.total, items))
}

/// `GET /jobservice/jobs/{id}` (a Berth extension).
pub async fn get_job(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let id = id_param(&id, "job_id")?;
    let job = app
        .registry
        .meta()
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")))?;
    Ok(axum::Json(job_json(&job)).into_response())
}

/// `PUT /jobservice/jobs/{id}` with `{"action": "stop"}`: stops a job (a pending one at once,
/// a running one within a heartbeat); `all` stops every unfinished job.
pub async fn job_action(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    stop_request(&body)?;
    if id == "all" {
        for kind in KINDS {
            app.registry.stop_kind(kind).await?;
        }
        return Ok(StatusCode::OK.into_response());
    }
    let id = id_param(&id, "job_id")?;
    app.registry.stop_job(id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /jobservice/jobs/{id}/log`: the job's log as text (the newest lines kept).
pub async fn job_log(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let id = id_param(&id, "job_id")?;
    log_text(&app, id).await
}

async fn log_text(app: &AppState, id: i64) -> Result<Response, ApiError> {
    if app.registry.meta().job(id).await?.is_none() {
        return Err(ApiError::not_found(format!("job {id} not found")));
    }
    let lines = app
        .registry
        .meta()
        .job_log(
            id,
            Page {
                offset: 0,
                limit: berth_meta::MAX_LOG_LINES,
            },
        )
        .await?;
    let mut text = String::new();
    for l in &lines.items {
        text.push_str(&format!(
            "{} [{}] {}\n",
            at(l.at),
            l.level.to_uppercase(),
            l.message
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET /jobservice/executions`: executions, newest first (`q=vendor_type=…`).
pub async fn executions(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let query = Query::of(&uri);
    let paging = Paging::from_query(&query)?;
    let kind = query
        .filters(&["vendor_type"])?
        .into_iter()
        .next()
        .map(|f| ascii_param(f.value, "vendor_type"))
        .transpose()?;
    execution_page(&app, &uri, paging, kind.as_deref(), execution_json).await
}

async fn execution_page(
    app: &AppState,
    uri: &axum::http::Uri,
    paging: Paging,
    kind: Option<&str>,
    render: fn(&Execution) -> Value,
) -> Result<Response, ApiError> {
    let page = app
        .registry
        .meta()
        .list_executions(kind, paging.page())
        .await?;
    let items: Vec<Value> = page.items.iter().map(render).collect();
    Ok(paging.respond(uri, page.total, items))
}

async fn execution_of(app: &AppState, id: &str, kind: Option<&str>) -> Result<Execution, ApiError> {
    let id = id_param(id, "execution_id")?;
    app.registry
        .meta()
        .execution(id)
        .await?
        .filter(|e| kind.is_none_or(|k| e.kind == k))
        .ok_or_else(|| ApiError::not_found(format!("execution {id} not found")))
}

/// `GET /jobservice/executions/{id}`.
pub async fn execution(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let e = execution_of(&app, &id, None).await?;
    Ok(axum::Json(execution_json(&e)).into_response())
}

/// `PUT /jobservice/executions/{id}` with `{"action": "stop"}` (or nothing): stops its
/// unfinished jobs.
pub async fn execution_action(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    stop_request(&body)?;
    let e = execution_of(&app, &id, None).await?;
    app.registry.stop_execution(e.id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /jobservice/executions/{id}/tasks`: its jobs.
pub async fn tasks(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let e = execution_of(&app, &id, None).await?;
    let paging = Paging::from_query(&Query::of(&uri))?;
    let filter = JobFilter {
        execution_id: Some(e.id),
        ..JobFilter::default()
    };
    let page = app
        .registry
        .meta()
        .list_jobs(&filter, paging.page())
        .await?;
    let items: Vec<Value> = page.items.iter().map(job_json).collect();
    Ok(paging.respond(&uri, page.total, items))
}

/// `GET /jobservice/executions/{id}/tasks/{task}/log`.
pub async fn task_log(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let e = execution_of(&app, &id, None).await?;
    let task = id_param(&task, "task_id")?;
    match app.registry.meta().job(task).await? {
        Some(j) if j.execution_id == e.id => log_text(&app, task).await,
        _ => Err(ApiError::not_found(format!(
            "task {task} not found in execution {}",
            e.id
        ))),
    }
}

/// `GET /jobservice/schedules`.
pub async fn schedules(State(app): State<AppState>, actor: Actor) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let items: Vec<Value> = app
        .registry
        .meta()
        .schedules()
        .await?
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "vendor_type": s.kind,
                "parameters": serde_json::from_str::<Value>(&s.params).unwrap_or(Value::Null),
                "cron": s.cron,
                "next_time": at(s.next_at),
                "last_time": opt_at(s.last_at),
                "paused": s.paused,
            })
        })
        .collect();
    Ok(axum::Json(items).into_response())
}

// ---- the audit log purge, as Harbor's /system/purgeaudit ------------------------------------

fn purge_json(e: &Execution, params: Option<&str>) -> Value {
    json!({
        "id": e.id,
        "job_name": "PURGE_AUDIT_LOG",
        "job_kind": if e.trigger == "schedule" { "SCHEDULE" } else { "MANUAL" },
        "job_parameters": params.unwrap_or("{}"),
        "schedule": e.schedule,
        "job_status": e.status(),
        "deleted": false,
        "creation_time": at(e.created_at),
        "update_time": opt_at(e.finished_at),
    })
}

#[derive(Deserialize)]
struct PurgeRequest {
    #[serde(default)]
    parameters: Option<PurgeParameters>,
}

/// Harbor's parameters: `audit_retention_hour`, `include_event_types` (comma-separated
/// operations), `dry_run`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeParameters {
    audit_retention_hour: u64,
    #[serde(default)]
    include_event_types: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /system/purgeaudit`: purges now. Returns `Location` of the execution.
pub async fn purge_now(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let request: PurgeRequest = json_body(&body)?;
    let p = request
        .parameters
        .ok_or_else(|| ApiError::bad_request("parameters.audit_retention_hour is required"))?;
    let params = AuditPurgeParams {
        retention_hours: p.audit_retention_hour,
        operations: p
            .include_event_types
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        dry_run: p.dry_run,
    };
    let value =
        serde_json::to_value(&params).map_err(|e| ApiError::internal("purge parameters", &e))?;
    let id = app
        .registry
        .start_job(&actor.initiator(address), AUDIT_PURGE, &value)
        .await?;
    Ok(super::created(&format!("system/purgeaudit/{id}")))
}

/// `GET /system/purgeaudit`: purge executions, newest first.
pub async fn purge_history(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let paging = Paging::from_query(&Query::of(&uri))?;
    execution_page(&app, &uri, paging, Some(AUDIT_PURGE), |e| {
        purge_json(e, None)
    })
    .await
}

/// The first job of an execution (a purge has one).
async fn first_job(app: &AppState, execution: i64) -> Result<Option<Job>, ApiError> {
    let jobs = app
        .registry
        .meta()
        .list_jobs(
            &JobFilter {
                execution_id: Some(execution),
                ..JobFilter::default()
            },
            Page {
                offset: 0,
                limit: 1,
            },
        )
        .await?;
    Ok(jobs.items.into_iter().next())
}

/// `GET /system/purgeaudit/{id}`.
pub async fn purge_get(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let e = execution_of(&app, &id, Some(AUDIT_PURGE)).await?;
    let job = first_job(&app, e.id).await?;
    let mut body = purge_json(&e, job.as_ref().map(|j| j.params.as_str()));
    if let Some(j) = job {
        body["result"] = j
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
    }
    Ok(axum::Json(body).into_response())
}

/// `GET /system/purgeaudit/{id}/log`.
pub async fn purge_log(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let e = execution_of(&app, &id, Some(AUDIT_PURGE)).await?;
    match first_job(&app, e.id).await? {
        Some(j) => log_text(&app, j.id).await,
        None => Err(ApiError::not_found(format!(
            "execution {} has no job",
            e.id
        ))),
    }
}

/// `PUT /system/purgeaudit/{id}`: stops a purge.
pub async fn purge_stop(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let e = execution_of(&app, &id, Some(AUDIT_PURGE)).await?;
    app.registry.stop_execution(e.id).await?;
    Ok(StatusCode::OK.into_response())
}
