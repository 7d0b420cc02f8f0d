//! Liveness and readiness for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::AppState;

/// `GET /healthz`: the process is up and serving HTTP.
pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// One dependency's state.
pub(crate) struct Check {
    pub name: &'static str,
    pub result: Result<(), String>,
    /// Whether the node is unfit without it. Redis is not: pushes and pulls go on without it.
    pub required: bool,
}

/// The node's dependencies, each with its error if it fails: the metadata database, the blob
/// store and this node's own fitness (such as key material the cluster does not share) are
/// required; Redis, when configured, is reported but not required.
pub(crate) async fn checks(app: &AppState) -> Vec<Check> {
    let (db, storage) = tokio::join!(app.registry.meta().ping(), app.registry.blobs().check());
    let mut checks = vec![
        Check {
            name: "database",
            result: db.map_err(|e| e.to_string()),
            required: true,
        },
        Check {
            name: "storage",
            result: storage.map_err(|e| e.to_string()),
            required: true,
        },
    ];
    if let Some(reason) = &app.not_ready {
        checks.push(Check {
            name: "node",
            result: Err(reason.clone()),
            required: true,
        });
    }
    if let Some(auth) = &app.auth
        && let Some(result) = auth.service.shared_limits_status().await
    {
        checks.push(Check {
            name: "redis",
            result,
            required: false,
        });
    }
    checks
}

/// `GET /readyz`: every required one of [`checks`] passes. 503 otherwise, with what failed, so that a
/// load balancer drains the node and an operator sees why.
pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let checks = checks(&app).await;
    let status = if checks.iter().all(|c| c.result.is_ok() || !c.required) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|c| {
            let mut value = match c.result {
                Ok(()) => json!({"ok": true}),
                Err(e) => json!({"ok": false, "error": e}),
            };
            if !c.required {
                value["required"] = json!(false);
            }
            (c.name.to_owned(), value)
        })
        .collect();
    (status, axum::Json(body))
}
