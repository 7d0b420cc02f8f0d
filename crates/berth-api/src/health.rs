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

/// `GET /readyz`: the metadata database and the blob store both answer, and nothing makes this
/// node unfit (such as key material the cluster does not share). 503 otherwise, with what
/// failed, so that a load balancer drains the node and an operator sees why.
pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let (db, storage) = tokio::join!(app.meta.ping(), app.blobs.check());
    let status = if db.is_ok() && storage.is_ok() && app.not_ready.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let check = |r: Result<(), String>| match r {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e}),
    };
    let mut body = json!({
        "database": check(db.map_err(|e| e.to_string())),
        "storage": check(storage.map_err(|e| e.to_string())),
    });
    if let Some(reason) = &app.not_ready {
        body["node"] = check(Err(reason.clone()));
    }
    (status, axum::Json(body))
}
