//! `/ping`, `/health`, `/systeminfo` and the OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Actor;
use crate::AppState;

/// `GET /ping`: `Pong`.
pub async fn ping() -> &'static str {
    "Pong"
}

/// `GET /health`: the state of each component (Harbor's shape; always 200, `/readyz` is the
/// probe for load balancers).
pub async fn health(State(app): State<AppState>) -> Response {
    let checks = crate::health::checks(&app).await;
    let healthy = checks.iter().all(|c| c.result.is_ok() || !c.required);
    let components: Vec<_> = checks
        .into_iter()
        .map(|c| match c.result {
            Ok(()) => json!({"name": c.name, "status": "healthy"}),
            Err(e) => json!({"name": c.name, "status": "unhealthy", "error": e}),
        })
        .collect();
    axum::Json(json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "components": components,
    }))
    .into_response()
}

/// `GET /systeminfo`: what clients and scripts need to know about this registry. Anonymous
/// callers get the public part.
pub async fn systeminfo(State(app): State<AppState>, actor: Actor) -> Response {
    let auth_mode = match &app.auth {
        None => "none".to_owned(),
        Some(_) => app.registry.settings().auth_mode().to_owned(),
    };
    let mut body = json!({
        "auth_mode": auth_mode,
        "registry_url": app.system.registry_host,
        "external_url": app.system.external_url,
        "project_creation_restriction": app.registry.settings().project_creation().as_str(),
        "self_registration": false,
        "has_ca_root": false,
        "read_only": false,
        "with_chartmuseum": false,
        "primary_auth_mode": true,
    });
    if !matches!(actor, Actor::As(berth_auth::Principal::Anonymous)) {
        body["harbor_version"] = json!(format!("berth-{}", env!("CARGO_PKG_VERSION")));
        body["berth_version"] = json!(env!("CARGO_PKG_VERSION"));
    }
    axum::Json(body).into_response()
}

/// `GET /openapi.json`: this API's OpenAPI document.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::OPENAPI).into_response()
}
