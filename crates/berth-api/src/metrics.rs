//! `GET /metrics`: the node's metrics in the Prometheus/OpenMetrics text format
//! (prometheus-client).
//!
//! Requests are counted by route template (`/v2/{name}/manifests/{reference}`,
//! `/api/v2.0/projects/{project}`), never by raw path, so the label sets stay bounded; bytes
//! by route group. The rest is read when scraped: upload sessions, the database pool, the
//! lookup cache, the job system (cluster-wide, from the database) and the pull audit queue.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// Labels of a route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// The node's request metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    received: Family<RouteLabels, Counter>,
    sent: Family<RouteLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 16 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("berth");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let received = Family::<RouteLabels, Counter>::default();
        let sent = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route template",
            latency.clone(),
        );
        registry.register(
            "http_received_bytes",
            "Request body bytes, by route template (from Content-Length)",
            received.clone(),
        );
        registry.register(
            "http_sent_bytes",
            "Response body bytes, by route template (from Content-Length)",
            sent.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            received,
            sent,
        }
    }
}

/// A method as a label: the standard ones, else `other`.
fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The route template of a `/v2` path, from its suffix (names have any number of parts).
fn v2_route(path: &str) -> &'static str {
    let rest = path.strip_prefix("/v2").unwrap_or(path);
    if rest.is_empty() || rest == "/" {
        return "/v2/";
    }
    if rest == "/_catalog" {
        return "/v2/_catalog";
    }
    if rest.ends_with("/tags/list") {
        return "/v2/{name}/tags/list";
    }
    if rest.ends_with("/blobs/uploads/") || rest.ends_with("/blobs/uploads") {
        return "/v2/{name}/blobs/uploads/";
    }
    if rest.contains("/blobs/uploads/") {
        return "/v2/{name}/blobs/uploads/{id}";
    }
    if rest.contains("/blobs/") {
        return "/v2/{name}/blobs/{digest}";
    }
    if rest.contains("/manifests/") {
        return "/v2/{name}/manifests/{reference}";
    }
    if rest.contains("/referrers/") {
        return "/v2/{name}/referrers/{digest}";
    }
    "/v2/other"
}

/// Route templates seen, kept once each for the life of the process (they are the router's
/// own, a fixed set).
fn intern(template: &str) -> &'static str {
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(s) = seen.get(template) {
        return s;
    }
    let leaked: &'static str = Box::leak(template.to_owned().into_boxed_str());
    seen.insert(leaked);
    leaked
}

fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Middleware (on matched routes): counts the request by route template, method and status,
/// its time to the response head, and the body bytes each way as declared.
pub async fn track(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(metrics) = app.metrics.as_ref() else {
        return next.run(req).await;
    };
    let start = Instant::now();
    let route = match req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some(t) if t.starts_with("/v2") => v2_route(req.uri().path()),
        Some(t) => intern(t),
        None => "other",
    };
    let method = method_label(req.method());
    let received = content_length(req.headers());
    let response = next.run(req).await;
    let labels = RouteLabels { route };
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    if let Some(n) = received.filter(|n| *n > 0) {
        metrics.received.get_or_create(&labels).inc_by(n);
    }
    if let Some(n) = content_length(response.headers()).filter(|n| *n > 0) {
        metrics.sent.get_or_create(&labels).inc_by(n);
    }
    response
}

/// A gauge family with one label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// Jobs by kind and state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    state: &'static str,
}

/// Adds what is read at scrape time to a registry of its own.
async fn scraped(app: &AppState) -> Result<Registry, berth_meta::MetaError> {
    let mut r = Registry::with_prefix("berth");
    let meta = &app.meta;
    let gauge = |v: u64| {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        g
    };
    r.register(
        "upload_sessions",
        "Upload sessions in progress (cluster-wide)",
        gauge(meta.count_uploads().await?),
    );
    let (size, idle) = meta.pool_stats();
    r.register(
        "db_pool_connections",
        "Connections this node holds open to the metadata database",
        gauge(u64::from(size)),
    );
    r.register(
        "db_pool_idle_connections",
        "Open connections not in use",
        gauge(idle as u64),
    );
    let (hits, misses) = meta.lookup_stats();
    let hit = Counter::<u64>::default();
    hit.inc_by(hits);
    let miss = Counter::<u64>::default();
    miss.inc_by(misses);
    r.register("cache_hits", "Lookups the cache answered on this node", hit);
    r.register(
        "cache_misses",
        "Lookups the cache did not answer on this node",
        miss,
    );
    let now = app.registry.clock().unix_millis();
    let queued = Family::<KindLabels, Gauge>::default();
    let running = Family::<KindLabels, Gauge>::default();
    let latency = Family::<KindLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for q in meta.job_queues(&berth_registry::jobs::KINDS, now).await? {
        let l = KindLabels {
            kind: q.kind.clone(),
        };
        queued
            .get_or_create(&l)
            .set(i64::try_from(q.pending).unwrap_or(i64::MAX));
        running
            .get_or_create(&l)
            .set(i64::try_from(q.running).unwrap_or(i64::MAX));
        latency.get_or_create(&l).set(
            q.oldest_due
                .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0),
        );
    }
    r.register(
        "jobs_pending",
        "Jobs waiting, by kind (cluster-wide)",
        queued,
    );
    r.register(
        "jobs_running",
        "Jobs running, by kind (cluster-wide)",
        running,
    );
    r.register(
        "jobs_queue_latency_seconds",
        "How long the oldest due job of each kind has waited",
        latency,
    );
    let ended = Family::<JobLabels, Gauge>::default();
    let run_time = Family::<KindLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (kind, state, n, ms) in meta.job_totals().await? {
        ended
            .get_or_create(&JobLabels {
                kind: kind.clone(),
                state: state.as_str(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
        run_time
            .get_or_create(&KindLabels { kind })
            .inc_by(ms as f64 / 1000.0);
    }
    r.register(
        "jobs_ended",
        "Jobs that ended, by kind and state (succeeded, failed, stopped; cluster-wide)",
        ended,
    );
    r.register(
        "jobs_run_seconds",
        "Total run time of the jobs that ended, by kind (cluster-wide)",
        run_time,
    );
    let (backlog, oldest) = app.registry.pull_log().backlog();
    r.register(
        "audit_pull_queue",
        "Pull audit entries waiting for their batch on this node",
        gauge(backlog as u64),
    );
    let lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    lag.set(oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0));
    r.register(
        "audit_pull_lag_seconds",
        "Age of the oldest pull audit entry not yet written",
        lag,
    );
    let dropped = Counter::<u64>::default();
    dropped.inc_by(app.registry.pull_log().dropped());
    r.register(
        "audit_pulls_dropped",
        "Pulls not recorded because the queue was full",
        dropped,
    );
    Ok(r)
}

/// `GET /metrics`.
pub async fn serve(State(app): State<AppState>) -> Response {
    let Some(metrics) = app.metrics.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode_registry(&mut text, &metrics.registry)
    {
        tracing::warn!(error = %e, "cannot encode metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    match scraped(&app).await {
        Ok(r) => {
            if let Err(e) = prometheus_client::encoding::text::encode_registry(&mut text, &r) {
                tracing::warn!(error = %e, "cannot encode metrics");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the metadata database did not answer");
        }
    }
    let _ = prometheus_client::encoding::text::encode_eof(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        Body::from(text),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_routes_are_templates() {
        for (path, route) in [
            ("/v2/", "/v2/"),
            ("/v2", "/v2/"),
            ("/v2/_catalog", "/v2/_catalog"),
            ("/v2/a/b/c/manifests/v1", "/v2/{name}/manifests/{reference}"),
            ("/v2/a/blobs/sha256:ab", "/v2/{name}/blobs/{digest}"),
            ("/v2/a/blobs/uploads/", "/v2/{name}/blobs/uploads/"),
            ("/v2/a/blobs/uploads/123", "/v2/{name}/blobs/uploads/{id}"),
            ("/v2/a/tags/list", "/v2/{name}/tags/list"),
            ("/v2/a/referrers/sha256:ab", "/v2/{name}/referrers/{digest}"),
            ("/v2/a/nothing", "/v2/other"),
        ] {
            assert_eq!(v2_route(path), route, "{path}");
        }
        assert!(std::ptr::eq(intern("/api/x"), intern("/api/x")));
    }
}
