//! Berth's HTTP surface: the OCI Distribution API under `/v2`, the token service under
//! `/service`, the management API under `/api/v2.0`, and `/healthz` and `/readyz`.
//!
//! **Architecture invariant:** this is the only crate that knows HTTP. It parses requests into
//! typed values (see [`v2::Endpoint`]), authorizes, calls the registry service
//! (`berth_registry`), and renders its answers and errors in the format each client expects.

mod auth;
mod body;
mod error;
mod health;
pub mod management;
pub mod metrics;
pub mod v2;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use auth::{HttpAuth, client_address};
pub use error::RegistryError;

/// Everything a request handler needs, shared by all requests.
pub struct App {
    /// The registry service: every change goes through it (and into the audit log); reads
    /// without rules go through its `meta()` and `blobs()`.
    pub registry: Arc<berth_registry::Registry>,
    /// Tunables of the registry API.
    pub limits: Limits,
    /// Authentication; `None` serves everyone everything (no token service).
    pub auth: Option<HttpAuth>,
    /// Proxies (load balancers) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// What the management API reports about this registry, and its policies.
    pub system: SystemSettings,
    /// Why this node must not receive traffic, if it must not (e.g. key material that
    /// disagrees with the cluster's). `/readyz` reports it.
    pub not_ready: Option<String>,
    /// Request metrics; `None`: none kept, `/metrics` answers 404.
    pub metrics: Option<metrics::Metrics>,
    /// Serve `/metrics` on this router (the main listener); otherwise [`metrics_router`]
    /// serves it on a listener of its own.
    pub metrics_on_main_listener: bool,
}

impl App {
    /// Applies the registry's settings as they are now to the token service (the token
    /// lifetime, the directory). The binary calls it on every change it reads; a handler that
    /// changed the settings calls it at once, so that its caller's next request sees them.
    pub fn apply_settings(&self) {
        if let Some(auth) = &self.auth {
            let now = self.registry.settings();
            auth.service.apply(berth_auth::LiveAuth {
                token_lifetime: now.token_lifetime(),
                ldap: now.ldap(),
            });
        }
    }
}

/// `/metrics` alone, for a listener of its own (`metrics.listen`).
pub fn metrics_router(app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::serve))
        .with_state(app)
}

/// What the management API reports about this registry, and its policies.
#[derive(Debug, Clone, Default)]
pub struct SystemSettings {
    /// The URL clients reach the registry at.
    pub external_url: String,
    /// The host (and port) that image names start with.
    pub registry_host: String,
}

/// Tunables of the registry API.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// Page size of `/v2/_catalog` when the client gives no `n`, and the most it may ask for.
    pub catalog_page: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifest_bytes: 4 << 20,
            catalog_page: 1000,
        }
    }
}

/// Shared application state, cheap to clone into every request.
pub type AppState = Arc<App>;

/// The request id header, set on every request that lacks one and echoed on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Builds the complete HTTP service.
pub fn router(app: AppState) -> Router {
    router_with(app, Router::new())
}

/// Builds the complete HTTP service with more routes (the web UI's) merged in, under the same
/// request ids and tracing.
pub fn router_with(app: AppState, more: Router) -> Router {
    let request_id = axum::http::HeaderName::from_static(REQUEST_ID_HEADER);
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        })
        .on_request(())
        .on_response(
            |res: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                tracing::info!(status = res.status().as_u16(), latency_us = latency.as_micros() as u64, "served");
            },
        );
    let mut routes = Router::new();
    if app.metrics_on_main_listener {
        routes = routes.route("/metrics", get(metrics::serve));
    }
    let routes = routes
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/service/token", get(auth::token).post(auth::token_post))
        .route("/service/jwks", get(auth::jwks))
        .nest("/api/v2.0", management::router())
        .route("/c/login", axum::routing::post(management::sessions::login))
        .route(
            "/c/log_out",
            get(management::sessions::log_out).post(management::sessions::log_out),
        )
        .route("/v2", axum::routing::any(v2::handle))
        .route("/v2/", axum::routing::any(v2::handle))
        .route("/v2/{*rest}", axum::routing::any(v2::handle));
    let routes = routes.with_state(app.clone()).merge(more);
    // Request metrics, on matched routes (their templates are known there), the UI's too.
    let routes = match &app.metrics {
        Some(m) => routes.route_layer(metrics::TrackLayer::new(m)),
        None => routes,
    };
    routes
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
