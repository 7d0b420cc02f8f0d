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

/// What readiness depends on, each with its error if it fails: the metadata database, the blob
/// store, and this node's own fitness (such as key material the cluster does not share).
pub(crate) async fn checks(app: &AppState) -> Vec<(&'static str, Result<(), String>)> {
    let (db, storage) = tokio::join!(app.meta.ping(), app.blobs.check());
    let mut checks = vec![
        ("database", db.map_err(|e| e.to_string())),
        ("storage", storage.map_err(|e| e.to_string())),
    ];
    if let Some(reason) = &app.not_ready {
        checks.push(("node", Err(reason.clone())));
    }
    checks
}

/// `GET /readyz`: every one of [`checks`] passes. 503 otherwise, with what failed, so that a
/// load balancer drains the node and an operator sees why.
pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let checks = checks(&app).await;
    let status = if checks.iter().all(|(_, r)| r.is_ok()) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|(name, r)| {
            let value = match r {
                Ok(()) => json!({"ok": true}),
                Err(e) => json!({"ok": false, "error": e}),
            };
            (name.to_owned(), value)
        })
        .collect();
    (status, axum::Json(body))
}
