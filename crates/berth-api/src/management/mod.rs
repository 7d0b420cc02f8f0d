//! The management API under `/api/v2.0`, shaped like Harbor's so that scripts written for
//! Harbor carry over: users, projects and their members, robot accounts, repositories,
//! artifacts and tags, system information and health.
//!
//! Conventions (Harbor's): HTTP Basic authentication (users and robot accounts) or a browser
//! session from `/c/login` (anonymous callers see public projects), JSON errors `{"errors":[{"code","message"}]}`, `page` and
//! `page_size` with `X-Total-Count` and `Link` headers, `q=key=value,key=~fragment` filters,
//! and repository names URL-encoded twice in paths. The OpenAPI document is
//! `crates/berth-api/openapi.json`, served at `/api/v2.0/openapi.json`.

mod artifacts;
mod audit;
mod caller;
mod configurations;
mod error;
mod jobs;
mod members;
mod projects;
mod query;
mod robots;
pub mod sessions;
mod system;
mod users;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};

pub use caller::{Actor, ClientAddress, ProjectRef, project_by_ref, project_for};
pub use error::ApiError;
use query::encode;
pub use query::{Filter, Paging, Query, created, id_param, json_body, time};

use crate::AppState;

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// The routes under `/api/v2.0`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ping", get(system::ping))
        .route("/health", get(system::health))
        .route("/systeminfo", get(system::systeminfo))
        .route("/openapi.json", get(system::openapi))
        .route(
            "/configurations",
            get(configurations::get).put(configurations::put),
        )
        .route("/ldap/ping", post(configurations::ldap_ping))
        .route("/users", get(users::list).post(users::create))
        .route("/users/current", get(users::current))
        .route("/users/search", get(users::search))
        .route(
            "/users/{user_id}",
            get(users::get_one).put(users::update).delete(users::delete),
        )
        .route(
            "/users/{user_id}/password",
            axum::routing::put(users::password),
        )
        .route(
            "/users/{user_id}/sysadmin",
            axum::routing::put(users::sysadmin),
        )
        .route(
            "/users/{user_id}/disabled",
            axum::routing::put(users::disabled),
        )
        .route(
            "/projects",
            get(projects::list)
                .post(projects::create)
                .head(projects::exists),
        )
        .route(
            "/projects/{project}",
            get(projects::get_one)
                .put(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/projects/{project}/members",
            get(members::list).post(members::create),
        )
        .route(
            "/projects/{project}/members/{member_id}",
            get(members::get_one)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/jobservice/pools", get(jobs::pools))
        .route("/jobservice/pools/{pool_id}/workers", get(jobs::workers))
        .route("/jobservice/queues", get(jobs::queues))
        .route(
            "/jobservice/queues/{job_type}",
            axum::routing::put(jobs::queue_action),
        )
        .route("/jobservice/jobs", get(jobs::list_jobs))
        .route(
            "/jobservice/jobs/{job_id}",
            get(jobs::get_job).put(jobs::job_action),
        )
        .route("/jobservice/jobs/{job_id}/log", get(jobs::job_log))
        .route("/jobservice/executions", get(jobs::executions))
        .route(
            "/jobservice/executions/{execution_id}",
            get(jobs::execution).put(jobs::execution_action),
        )
        .route(
            "/jobservice/executions/{execution_id}/tasks",
            get(jobs::tasks),
        )
        .route(
            "/jobservice/executions/{execution_id}/tasks/{task_id}/log",
            get(jobs::task_log),
        )
        .route("/jobservice/schedules", get(jobs::schedules))
        .route(
            "/system/purgeaudit",
            get(jobs::purge_history).post(jobs::purge_now),
        )
        .route(
            "/system/purgeaudit/{purge_id}",
            get(jobs::purge_get).put(jobs::purge_stop),
        )
        .route("/system/purgeaudit/{purge_id}/log", get(jobs::purge_log))
        .route("/audit-logs", get(audit::list))
        .route("/projects/{project}/logs", get(audit::project_logs))
        .route("/robots", get(robots::list).post(robots::create))
        .route(
            "/robots/{robot_id}",
            get(robots::get_one)
                .put(robots::update)
                .patch(robots::refresh)
                .delete(robots::delete),
        )
        .route("/repositories", get(artifacts::all_repositories))
        .route(
            "/projects/{project}/repositories",
            get(artifacts::repositories),
        )
        .route(
            "/projects/{project}/repositories/{repository}",
            get(artifacts::repository).delete(artifacts::delete_repository),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts",
            get(artifacts::list),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}",
            get(artifacts::get_one).delete(artifacts::delete),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags",
            get(artifacts::tags).post(artifacts::create_tag),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags/{tag}",
            axum::routing::delete(artifacts::delete_tag),
        )
        .fallback(unknown_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(error::harbor_errors))
}

async fn unknown_endpoint(uri: axum::extract::OriginalUri) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {}; /api/v2.0/openapi.json lists them",
        uri.path()
    ))
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here; /api/v2.0/openapi.json lists the operations"),
    )
}
