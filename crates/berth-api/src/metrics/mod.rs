//! `GET /metrics`: the node's metrics in the Prometheus/OpenMetrics text format
//! (prometheus-client).
//!
//! Requests are counted by route template (`/v2/{name}/manifests/{reference}`,
//! `/api/v2.0/projects/{project}`), never by raw path, so the label sets stay bounded; bytes
//! by route group. The rest is read when scraped: upload sessions, the database pool, the
//! lookup cache, the job system (cluster-wide, from the database) and the pull audit queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::AppState;

mod requests;

#[cfg(test)]
use requests::V2_ROUTES;
use requests::{BUCKETS, Requests};

/// The node's request metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Arc<Requests>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Encodes the request counters when scraped.
struct RequestCollector(Arc<Requests>);

impl std::fmt::Debug for RequestCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestCollector")
    }
}

impl Collector for RequestCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let routes = self.0.all();
        let mut m = encoder.encode_descriptor(
            "http_requests",
            "HTTP requests by route template, method and status",
            None,
            MetricType::Counter,
        )?;
        for r in &routes {
            for (method, status, n) in r.requests() {
                let labels = [
                    ("route", r.route),
                    ("method", method),
                    ("status", status.as_str()),
                ];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }
        let mut m = encoder.encode_descriptor(
            "http_request_duration_seconds",
            "Time to the response head, by route template",
            None,
            MetricType::Histogram,
        )?;
        for r in &routes {
            let (per_bucket, sum, count) = r.latency();
            if count == 0 {
                continue;
            }
            let buckets: Vec<(f64, u64)> = BUCKETS
                .iter()
                .copied()
                .chain(std::iter::once(f64::MAX))
                .zip(per_bucket)
                .collect();
            m.encode_family(&[("route", r.route)])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        for (name, help, read) in [
            (
                "http_received_bytes",
                "Request body bytes, by route template (from Content-Length)",
                (|r: &requests::RouteStats| r.received.load(Ordering::Relaxed))
                    as fn(&requests::RouteStats) -> u64,
            ),
            (
                "http_sent_bytes",
                "Response body bytes, by route template (from Content-Length)",
                |r: &requests::RouteStats| r.sent.load(Ordering::Relaxed),
            ),
        ] {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for r in &routes {
                let n = read(r);
                if n > 0 {
                    ConstCounter::new(n).encode(m.encode_family(&[("route", r.route)])?)?;
                }
            }
        }
        Ok(())
    }
}

/// The index in [`V2_ROUTES`] of a `/v2` path's route template, from its suffix (names have
/// any number of parts).
fn v2_route(path: &str) -> usize {
    let rest = path.strip_prefix("/v2").unwrap_or(path);
    if rest.is_empty() || rest == "/" {
        0
    } else if rest == "/_catalog" {
        1
    } else if rest.ends_with("/tags/list") {
        2
    } else if rest.ends_with("/blobs/uploads/") || rest.ends_with("/blobs/uploads") {
        3
    } else if rest.contains("/blobs/uploads/") {
        4
    } else if rest.contains("/blobs/") {
        5
    } else if rest.contains("/manifests/") {
        6
    } else if rest.contains("/referrers/") {
        7
    } else {
        8
    }
}

fn content_length(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The counters a request goes to.
#[derive(Clone)]
enum Target {
    V2(Arc<Requests>, usize),
    Other(&'static requests::RouteStats),
}

impl Target {
    fn stats(&self) -> &requests::RouteStats {
        match self {
            Self::V2(r, i) => r.v2(*i),
            Self::Other(s) => s,
        }
    }
}

/// The layer (on matched routes) that counts each request by route template, method and
/// status, its time to the response head, and the body bytes each way as declared. A plain
/// tower service: no boxed future, no lock and no allocation for `/v2`.
#[derive(Clone)]
pub struct TrackLayer {
    requests: Arc<Requests>,
}

impl TrackLayer {
    /// The layer counting into `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            requests: metrics.requests.clone(),
        }
    }
}

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            requests: self.requests.clone(),
        }
    }
}

/// See [`TrackLayer`].
#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    requests: Arc<Requests>,
}

impl<S, B> tower::Service<Request<B>> for Track<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let target = match req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
        {
            Some(t) if t.starts_with("/v2") => {
                Target::V2(self.requests.clone(), v2_route(req.uri().path()))
            }
            Some(t) => Target::Other(self.requests.other(t)),
            None => Target::Other(self.requests.other("other")),
        };
        let method = req.method().clone();
        let received = content_length(req.headers());
        TrackFuture {
            inner: self.inner.call(req),
            target,
            method,
            received,
            start: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Track`].
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        target: Target,
        method: axum::http::Method,
        received: u64,
        start: Instant,
    }
}

impl<F, E> std::future::Future for TrackFuture<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &out {
            this.target.stats().record(
                this.method,
                response.status().as_u16(),
                this.start.elapsed(),
                *this.received,
                content_length(response.headers()),
            );
        }
        std::task::Poll::Ready(out)
    }
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
    let meta = app.registry.meta();
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
    let mut registry = Registry::with_prefix("berth");
    registry.register_collector(Box::new(RequestCollector(metrics.requests.clone())));
    if let Err(e) = prometheus_client::encoding::text::encode_registry(&mut text, &registry) {
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
            assert_eq!(V2_ROUTES[v2_route(path)], route, "{path}");
        }
    }
}
