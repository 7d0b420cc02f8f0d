//! Request counters kept in plain atomics, indexed by route, method and status: recording a
//! request takes no lock and no allocation (a few relaxed atomic adds). They are turned into
//! Prometheus families when scraped.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Methods with their own series; the rest count as `other`.
pub(super) const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];

/// Statuses with their own series; the rest count in the slot of their class (`2xx`, …).
pub(super) const STATUSES: [u16; 26] = [
    200, 201, 202, 204, 206, 301, 302, 304, 307, 400, 401, 403, 404, 405, 409, 412, 413, 415, 416,
    422, 429, 500, 501, 502, 503, 504,
];
const CLASSES: usize = 5;
const SLOTS: usize = STATUSES.len() + CLASSES;

/// Upper bounds of the latency buckets, in seconds: 0.25 ms doubling to about 16 s.
pub(super) const BUCKETS: [f64; 17] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
    2.048, 4.096, 8.192, 16.384,
];

/// The label of a status slot.
pub(super) fn status_label(slot: usize) -> String {
    match STATUSES.get(slot) {
        Some(s) => s.to_string(),
        None => format!("{}xx", slot - STATUSES.len() + 1),
    }
}

fn method_index(m: &axum::http::Method) -> usize {
    match m.as_str() {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        "PUT" => 3,
        "PATCH" => 4,
        "DELETE" => 5,
        "OPTIONS" => 6,
        _ => 7,
    }
}

fn status_slot(status: u16) -> usize {
    match STATUSES.iter().position(|s| *s == status) {
        Some(i) => i,
        None => STATUSES.len() + usize::from(status / 100).clamp(1, CLASSES) - 1,
    }
}

/// One route's counters.
pub(super) struct RouteStats {
    pub(super) route: &'static str,
    requests: Box<[AtomicU64]>,
    /// One per bound of [`BUCKETS`], and one past the last.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_nanos: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) sent: AtomicU64,
}

impl RouteStats {
    fn new(route: &'static str) -> Self {
        Self {
            route,
            requests: (0..METHODS.len() * SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_nanos: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// Counts one request.
    pub(super) fn record(
        &self,
        method: &axum::http::Method,
        status: u16,
        elapsed: std::time::Duration,
        received: u64,
        sent: u64,
    ) {
        let i = method_index(method) * SLOTS + status_slot(status);
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|upper| secs <= *upper)
            .unwrap_or(BUCKETS.len());
        self.buckets[b].fetch_add(1, Ordering::Relaxed);
        self.latency_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if received > 0 {
            self.received.fetch_add(received, Ordering::Relaxed);
        }
        if sent > 0 {
            self.sent.fetch_add(sent, Ordering::Relaxed);
        }
    }

    /// Non-zero request counts: (method, status label, count).
    pub(super) fn requests(&self) -> Vec<(&'static str, String, u64)> {
        let mut out = Vec::new();
        for (i, c) in self.requests.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                out.push((METHODS[i / SLOTS], status_label(i % SLOTS), n));
            }
        }
        out
    }

    /// The latency histogram: per-bucket counts (not cumulative; the last is past every
    /// bound), the sum in seconds, and the count (the buckets' total, so that the `+Inf`
    /// bucket always equals it).
    pub(super) fn latency(&self) -> (Vec<u64>, f64, u64) {
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count = buckets.iter().sum();
        (
            buckets,
            self.latency_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count,
        )
    }
}

/// The `/v2` route templates, which have fixed slots (no lookup on the hot path).
pub(super) const V2_ROUTES: [&str; 9] = [
    "/v2/",
    "/v2/_catalog",
    "/v2/{name}/tags/list",
    "/v2/{name}/blobs/uploads/",
    "/v2/{name}/blobs/uploads/{id}",
    "/v2/{name}/blobs/{digest}",
    "/v2/{name}/manifests/{reference}",
    "/v2/{name}/referrers/{digest}",
    "/v2/other",
];

/// Every route's counters: fixed ones for `/v2`, the others added as they are first seen
/// (the router's templates: a fixed set).
pub(super) struct Requests {
    v2: Vec<RouteStats>,
    others: RwLock<HashMap<String, &'static RouteStats>>,
}

impl Default for Requests {
    fn default() -> Self {
        Self {
            v2: V2_ROUTES.iter().map(|r| RouteStats::new(r)).collect(),
            others: RwLock::default(),
        }
    }
}

impl Requests {
    /// The counters of `/v2` route `i` (an index into [`V2_ROUTES`]).
    pub(super) fn v2(&self, i: usize) -> &RouteStats {
        &self.v2[i.min(self.v2.len() - 1)]
    }

    /// The counters of another route template.
    pub(super) fn other(&self, template: &str) -> &'static RouteStats {
        if let Some(s) = self
            .others
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(template)
        {
            return s;
        }
        let mut others = self.others.write().unwrap_or_else(|p| p.into_inner());
        others.entry(template.to_owned()).or_insert_with(|| {
            let route: &'static str = Box::leak(template.to_owned().into_boxed_str());
            Box::leak(Box::new(RouteStats::new(route)))
        })
    }

    /// Every route's counters.
    pub(super) fn all(&self) -> Vec<&RouteStats> {
        let others = self.others.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<&RouteStats> = self.v2.iter().collect();
        all.extend(others.values().copied());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_methods_have_slots() {
        assert_eq!(status_label(status_slot(200)), "200");
        assert_eq!(status_label(status_slot(418)), "4xx");
        assert_eq!(status_label(status_slot(599)), "5xx");
        assert_eq!(status_label(status_slot(100)), "1xx");
        let r = RouteStats::new("/x");
        r.record(
            &axum::http::Method::GET,
            404,
            std::time::Duration::from_millis(3),
            0,
            10,
        );
        r.record(
            &axum::http::Method::from_bytes(b"BREW").unwrap(),
            418,
            std::time::Duration::from_secs(100),
            5,
            0,
        );
        assert_eq!(
            r.requests(),
            [("GET", "404".to_owned(), 1), ("other", "4xx".to_owned(), 1)]
        );
        let (buckets, sum, count) = r.latency();
        assert_eq!(count, 2);
        assert_eq!(buckets[4], 1, "3 ms is in the 4 ms bucket");
        assert_eq!(buckets[BUCKETS.len()], 1, "100 s is past every bound");
        assert!((sum - 100.003).abs() < 1e-6);
    }
}
